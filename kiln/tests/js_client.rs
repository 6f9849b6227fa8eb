//! kiln.js, the JavaScript client (`kiln/static/kiln/kiln.js`), against a
//! real Kiln server: this file starts the server on a port with a test
//! consumer, then runs the client's tests in Node
//! (`node --experimental-websocket --test kiln/tests/js/*.test.mjs`, Node's
//! own test runner, no npm package) with the server's address in
//! `KILN_TEST_URL`, and fails with Node's output unless every test passed.
//!
//! Without a `node` that has a WebSocket (Node 20 with
//! `--experimental-websocket`, or newer) the test skips with a `SKIPPED:`
//! line, unless `KILN_REQUIRE_BACKENDS=1`, which makes it fail.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kiln::prelude::*;
use kiln::realtime::{Channels, ConnectRequest, Consumer, Presence, SendError, Socket};
use kiln::test::{LiveServer, TestClient};
use serde_json::{Value, json};

/// How long the whole Node run may take before it is killed: a hang guard
/// only (each Node test has its own, shorter, guard).
const NODE_GUARD: Duration = Duration::from_secs(120);

/// What the JavaScript tests send, in the `data` of their `msg` frames.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TestIn {
    Echo {
        text: String,
    },
    Say {
        room: String,
        text: String,
    },
    /// Asks the client (`emit_with_ack("question")`) and answers with its
    /// ack. Tests that leave it unanswered wait less, because the server
    /// answers a client's close frame only once the consumer is done with
    /// the message it is handling, and Node waits for that answer before
    /// its test process can end.
    Ask {
        text: String,
        #[serde(default = "default_ask_ms")]
        wait_ms: u64,
    },
    /// The server ends the connection with `code`.
    Kick {
        code: u16,
    },
}

fn default_ask_ms() -> u64 {
    20_000
}

/// A user named by a signed token; rooms starting with `private` are for
/// `admin` only.
struct TestChat {
    user: String,
}

impl Consumer for TestChat {
    type Message = TestIn;

    async fn connect(request: &ConnectRequest) -> Result<Self, kiln::Error> {
        let user = request
            .token(Duration::from_secs(60))
            .ok_or_else(|| kiln::Error::forbidden("a valid token is required"))?;
        Ok(TestChat { user })
    }

    async fn connected(&mut self, socket: &Socket) {
        socket.send("hello", &json!({ "user": self.user })).unwrap();
    }

    async fn receive(&mut self, socket: &Socket, message: TestIn) -> Value {
        match message {
            TestIn::Echo { text } => json!({ "echoed": text }),
            TestIn::Say { room, text } => {
                let said = json!({ "user": self.user, "text": text });
                json!({ "id": socket.broadcast(&room, "said", &said).await.unwrap() })
            }
            TestIn::Ask { text, wait_ms } => {
                let question = json!({ "text": text });
                match socket
                    .emit_with_ack("question", &question, Duration::from_millis(wait_ms))
                    .await
                {
                    Ok(answer) => json!({ "answer": answer }),
                    Err(SendError::AckTimeout(_)) => json!({ "error": "timeout" }),
                    Err(error) => json!({ "error": error.to_string() }),
                }
            }
            TestIn::Kick { code } => {
                socket.close(code, "kicked");
                Value::Null
            }
        }
    }

    async fn can_join(&mut self, _socket: &Socket, room: &str) -> bool {
        !room.starts_with("private") || self.user == "admin"
    }

    fn presence(&self, _room: &str) -> Option<Presence> {
        Some(Presence::new(&self.user).meta(json!({ "status": "here" })))
    }
}

#[derive(Deserialize)]
struct TokenFor {
    user: String,
}

/// A token for `?user=`: how the Node tests log in (a real project signs it
/// in a view that checks the session).
async fn token(channels: Channels, Query(query): Query<TokenFor>) -> String {
    channels.sign_token(&query.user)
}

#[derive(Deserialize)]
struct Post {
    room: String,
    event: String,
    data: Value,
}

/// Broadcasts from outside any connection, as a normal view does.
async fn post_message(channels: Channels, Json(post): Json<Post>) -> Result<String, kiln::Error> {
    let id = channels
        .broadcast(&post.room, &post.event, &post.data)
        .await?;
    Ok(id.to_string())
}

/// The server the Node tests talk to, on a real port.
async fn start() -> LiveServer {
    let project = Project::new("js")
        .route("/ws/", "chat", kiln::realtime::websocket::<TestChat>())
        .route("/token/", "token", get(token))
        .route("/post/", "post", post(post_message).csrf_exempt());
    // A short history, so that the resync test can outrun it; a small
    // message limit, so that the 1009 test need not send much.
    let settings = Settings::from_toml(
        "debug = true\nrealtime_history = 5\nrealtime_max_message_size = \"16 KiB\"\n",
    )
    .unwrap();
    TestClient::with_settings(project, settings).serve().await
}

/// Whether `node` runs and has a WebSocket with `--experimental-websocket`;
/// `None` (after a `SKIPPED:` line) when it does not and backends are not
/// required.
async fn node_available() -> Option<()> {
    let probe = tokio::process::Command::new("node")
        .args([
            "--experimental-websocket",
            "-e",
            "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if probe.is_ok_and(|status| status.success()) {
        return Some(());
    }
    let message = "node with a WebSocket (Node 20.10+ and --experimental-websocket) is not on PATH, \
                   so kiln.js is not tested";
    if std::env::var("KILN_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("{message}; KILN_REQUIRE_BACKENDS=1 requires it");
    }
    eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
    None
}

/// The test files, `kiln/tests/js/*.test.mjs` (Node 20 takes no glob).
fn test_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_js_passes_its_tests_against_a_real_server() {
    if node_available().await.is_none() {
        return;
    }
    let server = start().await;
    let url = server.url("");
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = test_files(&manifest_dir.join("tests/js"));
    assert!(!files.is_empty(), "no kiln/tests/js/*.test.mjs found");
    let run = tokio::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg("--test")
        .args(&files)
        .current_dir(manifest_dir)
        .env("KILN_TEST_URL", &url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_GUARD, run)
        .await
        .expect("the Node tests did not finish in time")
        .expect("node could not be started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the kiln.js tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // A run that found no test would also exit 0.
    assert!(
        stdout.lines().any(|line| line.starts_with("# pass ")) && !stdout.contains("# pass 0"),
        "Node ran no test:\n{stdout}"
    );
    // Shown with --nocapture: what ran.
    println!("{stdout}");
}
