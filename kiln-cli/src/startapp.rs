//! `kiln startapp NAME`: an app in a project made by `kiln new`, from the
//! files under `template/app/`, registered in the project's `src/main.rs`.
//!
//! `main.rs` is edited at two marker lines rather than parsed: the markers
//! are easy to keep and to move by hand, and a project that removed them gets
//! told what to add instead of a guess.

use std::fs;
use std::path::{Path, PathBuf};

use crate::files::{self, NewFile};
use crate::names::{self, Kind};

/// `mod NAME;` lines go right after this line of `src/main.rs`.
const APPS_MARKER: &str = "// kiln:apps";
/// `.mount("/NAME", NAME::app())` lines go right after this line of `src/main.rs`.
const MOUNT_MARKER: &str = "// kiln:mount";

/// The app template: where each file goes (each `app` folder, and `app.rs`,
/// named after the app) and its text.
const TEMPLATE: &[(&str, &str)] = &[
    ("app.rs", include_str!("../template/app/app.rs")),
    ("app/urls.rs", include_str!("../template/app/app/urls.rs")),
    ("app/views.rs", include_str!("../template/app/app/views.rs")),
    (
        "app/templates/app/index.html",
        include_str!("../template/app/app/templates/app/index.html"),
    ),
    ("app/tests.rs", include_str!("../template/app/app/tests.rs")),
    (
        "app/models.rs",
        include_str!("../template/app/app/models.rs"),
    ),
    (
        "app/migrations.rs",
        include_str!("../template/app/app/migrations.rs"),
    ),
];

/// Adds app `name` to the project in `project` (default: the current directory).
pub(crate) fn run(name: &str, project: Option<PathBuf>) -> Result<(), String> {
    names::check(name, Kind::App)?;
    let root = project.unwrap_or_else(|| PathBuf::from("."));
    let main_rs = root.join("src/main.rs");
    if !root.join("Cargo.toml").is_file() || !main_rs.is_file() {
        return Err(format!(
            "{} is not a Kiln project: it has no Cargo.toml and src/main.rs\n  fix: cd into a project made by `kiln new`, or pass --project DIR",
            std::path::absolute(&root).unwrap_or(root).display()
        ));
    }
    for existing in [format!("src/{name}.rs"), format!("src/{name}")] {
        if root.join(&existing).exists() {
            return Err(format!(
                "app `{name}` already exists: {} is there; nothing was written\n  fix: choose another name",
                root.join(existing).display()
            ));
        }
    }
    let main = fs::read_to_string(&main_rs)
        .map_err(|e| format!("cannot read {}: {e}", main_rs.display()))?;
    if main
        .lines()
        .any(|line| line.trim().trim_start_matches("pub ") == format!("mod {name};"))
    {
        return Err(format!(
            "{} already has `mod {name};` but src/{name}.rs is missing; nothing was written\n  fix: remove that line (and the app's `.mount`), or choose another name",
            main_rs.display()
        ));
    }
    let registered =
        register(&main, name).map_err(|missing| markers_missing(&main_rs, name, &missing))?;

    let version = env!("CARGO_PKG_VERSION");
    let values = [("app_name", name), ("version", version)];
    let new_files: Vec<NewFile> = TEMPLATE
        .iter()
        .map(|(file, template)| NewFile {
            path: root.join("src").join(app_path(file, name)),
            contents: files::render(template, &values),
        })
        .collect();
    files::write_all(
        &new_files,
        Some(&NewFile {
            path: main_rs.clone(),
            contents: registered,
        }),
    )?;

    println!("Created app `{name}`:");
    for file in &new_files {
        println!("  {}", file.path.display());
    }
    println!(
        "Registered it in {}: `mod {name};` and `.mount(\"/{name}\", {name}::app())`.",
        main_rs.display()
    );
    println!("Next: cargo run -- routes (it lists `{name}:index` at /{name}/), then cargo test");
    Ok(())
}

/// `file` of the app template with each `app` folder and `app.rs` named after `name`.
fn app_path(file: &str, name: &str) -> String {
    file.split('/')
        .map(|part| match part {
            "app" => name.to_owned(),
            "app.rs" => format!("{name}.rs"),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `main` with the app's `mod` and `.mount` lines added after the markers,
/// or the markers that are missing.
fn register(main: &str, name: &str) -> Result<String, Vec<&'static str>> {
    let missing: Vec<&'static str> = [APPS_MARKER, MOUNT_MARKER]
        .into_iter()
        .filter(|marker| !main.lines().any(|line| line.trim() == *marker))
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let main = insert_after(main, APPS_MARKER, &format!("mod {name};"));
    Ok(insert_after(
        &main,
        MOUNT_MARKER,
        &format!(".mount(\"/{name}\", {name}::app())"),
    ))
}

/// `text` with `line` inserted after the first line that is `marker`, with the
/// marker's indentation and line ending.
fn insert_after(text: &str, marker: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 8);
    let mut inserted = false;
    for current in text.split_inclusive('\n') {
        out.push_str(current);
        if !inserted && current.trim() == marker {
            if !current.ends_with('\n') {
                out.push('\n');
            }
            let indent = &current[..current.len() - current.trim_start().len()];
            let newline = if current.ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            out.push_str(indent);
            out.push_str(line);
            out.push_str(newline);
            inserted = true;
        }
    }
    out
}

/// What to add by hand when `kiln startapp` cannot find its marker lines.
fn markers_missing(main_rs: &Path, name: &str, missing: &[&str]) -> String {
    let missing_list = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    format!(
        "{} has no {missing_list} line, so the app cannot be registered; nothing was written\n  \
         fix: add the missing line(s) to {}, each on a line of its own, then run `kiln startapp {name}` again:\n    \
         {APPS_MARKER}      where the `mod` lines of the apps are\n    \
         {MOUNT_MARKER}     inside the project's `.mount(...)` chain\n  \
         `kiln startapp {name}` will then add `mod {name};` after the first and \
         `.mount(\"/{name}\", {name}::app())` after the second.",
        main_rs.display(),
        main_rs.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::{app_path, insert_after, register};

    #[test]
    fn template_paths_are_named_after_the_app() {
        assert_eq!(app_path("app.rs", "blog"), "blog.rs");
        assert_eq!(
            app_path("app/templates/app/index.html", "blog"),
            "blog/templates/blog/index.html"
        );
    }

    const MAIN: &str = "// kiln:apps\nmod pages;\n\nfn project() -> Project {\n    kiln::project!()\n        // kiln:mount\n        .mount(\"/\", pages::app())\n}\n";

    #[test]
    fn registers_after_the_markers_with_their_indentation() {
        let text = register(MAIN, "blog").unwrap();
        assert!(
            text.contains("// kiln:apps\nmod blog;\nmod pages;\n"),
            "{text}"
        );
        assert!(
            text.contains("        // kiln:mount\n        .mount(\"/blog\", blog::app())\n        .mount(\"/\""),
            "{text}"
        );
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let text = insert_after("a\r\n  // kiln:apps\r\nb\r\n", "// kiln:apps", "mod x;");
        assert_eq!(text, "a\r\n  // kiln:apps\r\n  mod x;\r\nb\r\n");
    }

    #[test]
    fn reports_each_missing_marker() {
        assert_eq!(
            register("fn main() {}\n", "blog"),
            Err(vec!["// kiln:apps", "// kiln:mount"])
        );
        let without_mount = MAIN.replace("// kiln:mount", "");
        assert_eq!(register(&without_mount, "blog"), Err(vec!["// kiln:mount"]));
    }
}
