//! The showcase's pages in a real browser: the showcase serves on a free
//! port (a temporary SQLite database and media folder, `support/server.rs`)
//! and `tests/browser/showcase.mjs` drives headless Chromium through it with
//! playwright-core: polls (vote through the CSRF-protected form), chat (two
//! users, presence, typing, a late comer's history), the live dashboard
//! (the chart follows the event stream), tic-tac-toe (two players and a
//! spectator see a win) and videos (upload, metadata and seeking over
//! `Range` requests), with no console error on any page.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`, or the path in
//! `KILN_TEST_CHROMIUM`), `node`, and the script's npm packages (`npm ci` in
//! examples/showcase/tests/browser; scripts/test does it). Without them the
//! test prints a `SKIPPED:` line and passes, unless `KILN_REQUIRE_BACKENDS=1`
//! (as .ci/run sets), which makes it fail.

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

#[path = "support/server.rs"]
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A hang guard for the whole run (each wait in the script has its own,
/// shorter, guard).
const NODE_GUARD: Duration = Duration::from_secs(300);

/// The Chromium to drive: `KILN_TEST_CHROMIUM`, or Debian's; `Err` with
/// the path when nothing is there.
fn chromium() -> Result<PathBuf, PathBuf> {
    let path = PathBuf::from(
        std::env::var("KILN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    if path.is_file() { Ok(path) } else { Err(path) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_showcase_works_in_headless_chromium() {
    let chromium = match chromium() {
        Ok(path) => path,
        Err(path) => {
            server::skip(&format!(
                "the browser tests: Chromium is not installed at {} \
                 (apt-get install -y chromium, or set KILN_TEST_CHROMIUM to its path)",
                path.display()
            ));
            return;
        }
    };
    if !server::node_available("the pages in a browser are") {
        return;
    }
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !folder.join("node_modules/playwright-core").is_dir() {
        server::skip(
            "the browser tests: run `npm ci` in examples/showcase/tests/browser (scripts/test does)",
        );
        return;
    }
    let server = server::Server::start().await;
    for user in ["alice", "bob", "carol"] {
        server.user(user).await;
    }
    let mut node = Command::new("node");
    node.arg("showcase.mjs")
        .current_dir(&folder)
        .env("BASE", server.http(""))
        .env("PASSWORD", server::PASSWORD)
        .env("CHROMIUM", chromium);
    let stdout = server::run_node(node, NODE_GUARD).await;
    for part in [
        "polls",
        "chat",
        "dashboard",
        "tictactoe",
        "videos",
        "console",
    ] {
        assert!(
            stdout
                .lines()
                .any(|line| line.split(" (").next() == Some(&format!("ok {part}"))),
            "no `ok {part}` in:\n{stdout}"
        );
    }
    // Shown with --nocapture: what ran.
    println!("{stdout}");
}
