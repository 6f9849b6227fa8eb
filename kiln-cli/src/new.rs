//! `kiln new NAME`: a project folder that runs with `cargo run`, from the
//! files under `template/project/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::files::{self, NewFile};
use crate::names::{self, Kind};

/// The project template: where each file goes and its text.
const TEMPLATE: &[(&str, &str)] = &[
    // Not named `Cargo.toml` in the template folder, so that no tool takes
    // the template for a crate of this workspace.
    (
        "Cargo.toml",
        include_str!("../template/project/Cargo.toml.tmpl"),
    ),
    ("kiln.toml", include_str!("../template/project/kiln.toml")),
    ("README.md", include_str!("../template/project/README.md")),
    // Without the dot, so that it does not apply to the template folder itself.
    (".gitignore", include_str!("../template/project/gitignore")),
    (
        "src/main.rs",
        include_str!("../template/project/src/main.rs"),
    ),
    (
        "src/pages.rs",
        include_str!("../template/project/src/pages.rs"),
    ),
    (
        "src/pages/urls.rs",
        include_str!("../template/project/src/pages/urls.rs"),
    ),
    (
        "src/pages/views.rs",
        include_str!("../template/project/src/pages/views.rs"),
    ),
    (
        "src/pages/tests.rs",
        include_str!("../template/project/src/pages/tests.rs"),
    ),
];

/// The Kiln checkout this binary was built from: the default `--kiln-path`.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Creates project `name` in `path` (default `./name`), depending on the Kiln
/// checkout at `kiln_path`.
pub(crate) fn run(
    name: &str,
    path: Option<PathBuf>,
    kiln_path: Option<PathBuf>,
) -> Result<(), String> {
    names::check(name, Kind::Project)?;
    let target = path.unwrap_or_else(|| PathBuf::from(name));
    check_target(&target)?;
    let checkout = kiln_checkout(kiln_path)?;
    let kiln_dir = checkout.join("kiln");
    let (Some(kiln_dir), Some(checkout_str)) = (kiln_dir.to_str(), checkout.to_str()) else {
        return Err(format!(
            "the Kiln checkout path {} is not valid UTF-8, so it cannot go in Cargo.toml\n  fix: move the checkout and pass --kiln-path",
            checkout.display()
        ));
    };
    let version = env!("CARGO_PKG_VERSION");
    let dependency = format!("kiln = {{ path = {} }}", toml_string(kiln_dir));
    let values = [
        ("project_name", name),
        ("version", version),
        ("kiln_dependency", dependency.as_str()),
        ("kiln_path", checkout_str),
    ];
    let mut new_files: Vec<NewFile> = TEMPLATE
        .iter()
        .map(|(file, template)| NewFile {
            path: target.join(file),
            contents: files::render(template, &values),
        })
        .collect();
    // Kiln is tested with the versions in its own lock file. Starting from a
    // copy, the project's first build uses the same versions (cargo drops the
    // entries it does not need) and can even run `--offline`, instead of
    // resolving the newest versions of everything on the day.
    let lock = checkout.join("Cargo.lock");
    if lock.is_file() {
        let contents = fs::read_to_string(&lock)
            .map_err(|e| format!("cannot read {}: {e}", lock.display()))?;
        new_files.push(NewFile {
            path: target.join("Cargo.lock"),
            contents,
        });
    }
    files::write_all(&new_files, None)?;

    println!("Created project `{name}` in {}:", target.display());
    for file in &new_files {
        println!("  {}", file.path.display());
    }
    println!("It depends on the Kiln checkout at {checkout_str}.");
    println!(
        "Next: cd {} && cargo run, then open http://127.0.0.1:8000/",
        target.display()
    );
    Ok(())
}

/// The project folder may be new or empty, never anything else: nothing is overwritten.
fn check_target(target: &Path) -> Result<(), String> {
    if !target.exists() {
        return Ok(());
    }
    let empty = fs::read_dir(target)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if empty {
        Ok(())
    } else {
        Err(format!(
            "{} already exists and is not an empty folder; nothing was written\n  fix: choose another name or --path DIR, or move that folder away",
            target.display()
        ))
    }
}

/// The Kiln checkout, absolute: `--kiln-path` or the one this binary was built from.
fn kiln_checkout(kiln_path: Option<PathBuf>) -> Result<PathBuf, String> {
    let given = kiln_path.is_some();
    let dir = kiln_path.unwrap_or_else(|| PathBuf::from(BUILT_FROM));
    let found = dir
        .canonicalize()
        .ok()
        .filter(|dir| dir.join("kiln/Cargo.toml").is_file());
    match found {
        Some(dir) => Ok(dir),
        None if given => Err(format!(
            "{} is not a Kiln checkout (no kiln/Cargo.toml in it)\n  fix: pass --kiln-path with the folder that holds kiln/, kiln-cli/ and Cargo.lock",
            dir.display()
        )),
        None => Err(format!(
            "the Kiln checkout this binary was built from ({}) is gone\n  fix: pass --kiln-path with the path of a Kiln checkout",
            dir.display()
        )),
    }
}

/// `text` as a TOML basic string, quoted and escaped.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::toml_string;

    #[test]
    fn toml_string_escapes_quotes_backslashes_and_controls() {
        assert_eq!(toml_string("/a/b"), "\"/a/b\"");
        assert_eq!(toml_string("C:\\x\"y\t"), "\"C:\\\\x\\\"y\\u0009\"");
    }
}
