//! kiln.js, the JavaScript client (`kiln/static/kiln/kiln.js`), against a
//! real Kiln server: this file starts the server on a port with a test
//! consumer, then runs the client's tests in Node
//! (`node --experimental-websocket --test kiln/tests/js/*.test.mjs`, Node's
//! own test runner, no npm package) with the server's address in
//! `KILN_TEST_URL`, and fails with Node's output unless every test passed.
//!
//! A second server, on a port of its own, restarts on `POST /restart/`
//! (`KILN_RESTART_URL`, for `restart.test.mjs`): it shuts down gracefully,
//! as on SIGTERM, and a new one starts on the same port.
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
use std::sync::Arc;
use std::time::Duration;

use kiln::prelude::*;
use kiln::realtime::{
    ChannelLayer, Channels, ConnectRequest, Consumer, InProcessLayer, Presence, SendError, Socket,
};
use kiln::test::{LiveServer, TestClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;

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

/// The test project: the consumer and the views the Node tests call.
fn project() -> Project {
    Project::new("js")
        .route("/ws/", "chat", kiln::realtime::websocket::<TestChat>())
        .route("/token/", "token", get(token))
        .route("/post/", "post", post(post_message).csrf_exempt())
}

fn settings() -> Settings {
    // A short history, so that the resync test can outrun it; a small
    // message limit, so that the 1009 test need not send much; one secret
    // key, so that a restarted server accepts the tokens of the one before.
    Settings::from_toml(
        "debug = true\nrealtime_history = 5\nrealtime_max_message_size = \"16 KiB\"\n\
         secret_key = \"the js_client tests' key, the same across restarts\"\n",
    )
    .unwrap()
}

/// The server the Node tests talk to, on a real port.
async fn start() -> LiveServer {
    TestClient::with_settings(project(), settings())
        .serve()
        .await
}

#[derive(Deserialize)]
struct RestartQuery {
    /// The new server shares the old one's channel layer, as a Redis or
    /// NATS layer outlives the processes that use it; otherwise it gets a
    /// fresh in-process layer, as a restarted process on embedded defaults.
    #[serde(default)]
    keep_layer: bool,
}

/// A server that restarts on `POST /restart/`: the old one stops
/// gracefully ([`LiveServer::stop`]: WebSockets get 1001), then a new one
/// serves on the same port. `GET /incarnation/` says which one answers
/// (1, 2, ...), so that a test knows when the new one is up.
async fn start_restartable() -> std::net::SocketAddr {
    fn incarnation(
        number: u64,
        layer: Arc<dyn ChannelLayer>,
        restarts: mpsc::UnboundedSender<bool>,
    ) -> TestClient {
        let restart = move |Query(query): Query<RestartQuery>| {
            let sent = restarts.send(query.keep_layer).is_ok();
            async move { if sent { "restarting" } else { "not restarting" } }
        };
        let project = project()
            .channel_layer(layer)
            .route(
                "/incarnation/",
                "incarnation",
                get(move || async move { number.to_string() }),
            )
            .route("/restart/", "restart", post(restart).csrf_exempt());
        TestClient::with_settings(project, settings())
    }

    let (restarts, mut requested) = mpsc::unbounded_channel();
    let layer: Arc<dyn ChannelLayer> = InProcessLayer::new();
    let client = incarnation(1, Arc::clone(&layer), restarts.clone());
    let server = client.serve().await;
    let addr = server.addr();
    tokio::spawn(async move {
        // Each client is kept with its server: it holds the site's
        // temporary database.
        let mut running = (client, server);
        let mut number = 1;
        while let Some(keep_layer) = requested.recv().await {
            let (_client, server) = running;
            server.stop().await;
            number += 1;
            let layer = if keep_layer {
                Arc::clone(&layer)
            } else {
                InProcessLayer::new()
            };
            let client = incarnation(number, layer, restarts.clone());
            let server = client.serve_at(addr).await;
            running = (client, server);
        }
    });
    addr
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
    let restartable = start_restartable().await;
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = test_files(&manifest_dir.join("tests/js"));
    assert!(!files.is_empty(), "no kiln/tests/js/*.test.mjs found");
    let run = tokio::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg("--test")
        .args(&files)
        .current_dir(manifest_dir)
        .env("KILN_TEST_URL", &url)
        .env("KILN_RESTART_URL", format!("http://{restartable}"))
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
