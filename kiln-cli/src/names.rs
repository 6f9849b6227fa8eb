//! Checks on project and app names, with a suggested fix when one is refused.
//!
//! A project name becomes a crate and binary name; an app name becomes a Rust
//! module (`mod polls;`) and the app's label (`polls:index`), so it may not
//! contain `-`.

/// Rust's keywords, strict and reserved: none can name a crate or a module.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names that compile but clash: `kiln` with the dependency (or the built-in
/// app's label), `test` with Rust's test crate, the others with the standard
/// library crates, which `use std::...` would then find ambiguous.
const TAKEN: &[&str] = &["kiln", "test", "std", "core", "alloc", "proc_macro"];

/// What a name is for: it decides whether `-` is allowed and the wording.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Project,
    App,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::App => "app",
        }
    }
}

/// Checks `name`; the error says why it is refused and suggests a name that is not.
pub(crate) fn check(name: &str, kind: Kind) -> Result<(), String> {
    let noun = kind.noun();
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase letter".to_owned())
    } else if let Some(bad) = name.chars().find(|&c| !allowed(c, kind)) {
        let allowed = match kind {
            Kind::Project => "lowercase letters, digits, `_` and `-`",
            Kind::App => "lowercase letters, digits and `_` (it becomes a Rust module)",
        };
        Some(format!("contains `{bad}`; use only {allowed}"))
    } else if KEYWORDS.contains(&name) {
        Some("is a Rust keyword".to_owned())
    } else if TAKEN.contains(&name) {
        Some("is taken by a crate every Kiln project uses".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(format!(
            "{noun} name `{name}` {problem}\n  fix: choose another name, such as `{}`",
            suggest(name, kind)
        )),
    }
}

fn allowed(c: char, kind: Kind) -> bool {
    c.is_ascii_lowercase()
        || c.is_ascii_digit()
        || c == '_'
        || (c == '-' && matches!(kind, Kind::Project))
}

/// A valid name close to `name`: lowercased, other characters turned into `_`,
/// and a prefix or suffix when it would still be refused.
fn suggest(name: &str, kind: Kind) -> String {
    let mut fixed: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if allowed(c, kind) { c } else { '_' })
        .collect();
    if !fixed.starts_with(|c: char| c.is_ascii_lowercase()) {
        fixed = format!("my_{}", fixed.trim_start_matches(['_', '-']));
    }
    if KEYWORDS.contains(&fixed.as_str()) || TAKEN.contains(&fixed.as_str()) {
        fixed.push_str(match kind {
            Kind::Project => "_site",
            Kind::App => "_app",
        });
    }
    fixed.trim_end_matches(['_', '-']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::{Kind, check, suggest};

    #[test]
    fn accepts_crate_like_names() {
        for name in ["demo", "my_site", "my-site", "site2"] {
            assert_eq!(check(name, Kind::Project), Ok(()), "{name}");
        }
        assert_eq!(check("chat_rooms", Kind::App), Ok(()));
    }

    #[test]
    fn refuses_bad_names_with_a_valid_suggestion() {
        for (name, kind) in [
            ("1abc", Kind::Project),
            ("fn", Kind::Project),
            ("kiln", Kind::App),
            ("My Site", Kind::Project),
            ("", Kind::Project),
            ("chat-rooms", Kind::App),
            ("_x", Kind::App),
            ("test", Kind::Project),
        ] {
            let error = check(name, kind).expect_err(name);
            assert!(error.contains("fix:"), "{error}");
            let suggestion = suggest(name, kind);
            assert_eq!(check(&suggestion, kind), Ok(()), "{name} -> {suggestion}");
        }
        assert_eq!(suggest("1abc", Kind::Project), "my_1abc");
        assert_eq!(suggest("fn", Kind::Project), "fn_site");
        assert_eq!(suggest("chat-rooms", Kind::App), "chat_rooms");
    }
}
