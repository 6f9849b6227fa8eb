//! The showcase's page scripts (`src/<app>/static/**/*.js`) parse: Node
//! checks their syntax (`node --check`), so a typo cannot ship a page whose
//! script never runs. What they do is up to a browser; the consumers and
//! streams they talk to are tested over real sockets in `chat.rs`,
//! `dashboard.rs` and `tictactoe.rs`.
//!
//! Without `node` on the PATH the test is skipped with a `SKIPPED:` line,
//! unless `KILN_REQUIRE_BACKENDS=1` (as in CI), which makes it fail.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts(folder: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            scripts(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "js") {
            found.push(path);
        }
    }
}

#[test]
fn page_scripts_parse() {
    let version = Command::new("node").arg("--version").output();
    if !version.is_ok_and(|output| output.status.success()) {
        let message = "`node` is not on the PATH; the page scripts' syntax is not checked";
        assert!(
            std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
            "{message}, and KILN_REQUIRE_BACKENDS=1 requires it"
        );
        eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
        return;
    }
    let mut found = Vec::new();
    scripts(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    for app in ["chat", "dashboard", "games"] {
        assert!(
            found
                .iter()
                .any(|path| path.to_string_lossy().contains(&format!("/{app}/static/"))),
            "no script of {app} in {found:?}"
        );
    }
    for script in &found {
        let output = Command::new("node")
            .arg("--check")
            .arg(script)
            .output()
            .expect("node runs");
        assert!(
            output.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
