//! The chat and tic-tac-toe consumers through Kiln's JavaScript client
//! (`kiln/static/kiln/kiln.js`), run by Node against the showcase on a real
//! port: the calls the pages make (`tests/js/realtime_apps.cjs`), with their
//! replies, refusals and events.
//!
//! Without `node` on the PATH, or without the client's file (it comes with
//! Kiln's built-in static files), the test is skipped with a `SKIPPED:`
//! line, unless `KILN_REQUIRE_BACKENDS=1` (as in CI), which makes it fail.

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

#[path = "support/server.rs"]
pub mod server;

use std::path::Path;
use std::process::Command;

#[tokio::test]
async fn the_pages_calls_work_through_the_javascript_client() {
    if !server::node_available("the JavaScript client is") {
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let client = manifest.join("../../kiln/static/kiln/kiln.js");
    if !client.is_file() {
        server::skip(&format!("{} is missing", client.display()));
        return;
    }
    let script = manifest.join("tests/js/realtime_apps.cjs");
    let server = server::Server::start().await;
    server.user("alice").await;
    server.user("bob").await;
    let channels = server.site.channels();
    let mut node = Command::new("node");
    node.arg("--experimental-websocket")
        .arg(script)
        .env("KILN_JS", client)
        .env("BASE", format!("ws://{}", server.addr))
        .env("ALICE", channels.sign_token("alice"))
        .env("BOB", channels.sign_token("bob"));
    server::run_node(node, server::GUARD).await;
}
