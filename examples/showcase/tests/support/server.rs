//! The showcase on a real port, for tests that need sockets (WebSockets,
//! Server-Sent Events), with a WebSocket client speaking Kiln's wire
//! protocol (`docs/topics/realtime.md`).
//!
//! A test file includes it with `#[path = "support/server.rs"] pub mod server;`
//! (`pub` keeps the items a file does not use from warning).
//! No assertion depends on timing: waits are bounded by [`GUARD`] only, so
//! that a broken feature fails instead of hanging.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kiln::db::DatabaseConnection;
use kiln::prelude::*;
use kiln::test::{LiveServer, TestClient};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single wait may take before the test fails.
pub const GUARD: Duration = Duration::from_secs(20);

/// The password of every user made by [`Server::user`].
pub const PASSWORD: &str = "a long passphrase";

/// The showcase serving on `addr`, and an in-process client on the same
/// (migrated, temporary) database for pages that need a session and for
/// checking rows.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub site: Site,
    pub client: TestClient,
    pub db: DatabaseConnection,
    _live: LiveServer,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Uploads go to the same throwaway folder as the database.
        let toml = format!(
            "debug = true\ndatabase_url = \"sqlite://{0}/db.sqlite3\"\nmedia_root = {1:?}",
            dir.path().display(),
            dir.path().join("media").display().to_string()
        );
        let client =
            TestClient::with_settings(showcase::project(), Settings::from_toml(&toml).unwrap());
        // The same site, database and channel layer, on a real port.
        let live = client.serve().await;
        let db = client.db().await;
        Self {
            addr: live.addr(),
            site: client.site().clone(),
            client,
            db,
            _live: live,
            _dir: dir,
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a user; returns its id.
    pub async fn user(&self, username: &str) -> i64 {
        kiln::auth::create_user(&self.db, username, "", Some(PASSWORD))
            .await
            .unwrap()
            .id
    }

    /// Logs the in-process client in as `username` (made by [`Self::user`]).
    pub async fn log_in(&self, username: &str) {
        let response = self
            .client
            .post("/accounts/login/")
            .form(&[("username", username), ("password", PASSWORD)])
            .send()
            .await;
        assert_eq!(response.status(), 302, "{}", response.text());
    }

    /// The URL of the socket at `path` with a token naming `user`, as the
    /// pages render it.
    pub fn ws_url(&self, path: &str, user: Option<&str>) -> String {
        match user {
            Some(user) => {
                let token = self.site.channels().sign_token(user);
                format!("ws://{}{path}?token={}", self.addr, percent_encode(&token))
            }
            None => format!("ws://{}{path}", self.addr),
        }
    }

    pub async fn connect(&self, path: &str, user: Option<&str>) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(path, user))
            .await
            .unwrap();
        Client::from(ws)
    }
}

/// Skips a test that lacks a tool (false, after a loud `SKIPPED:` line), or
/// fails it when `KILN_REQUIRE_BACKENDS=1` (as .ci/run sets).
pub fn skip(message: &str) -> bool {
    assert!(
        std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "{message}, and KILN_REQUIRE_BACKENDS=1 requires it"
    );
    eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
    false
}

/// Whether `node` runs; otherwise [`skip`]s, saying what is not `tested`.
pub fn node_available(tested: &str) -> bool {
    let version = std::process::Command::new("node").arg("--version").output();
    version.is_ok_and(|output| output.status.success())
        || skip(&format!("`node` is not on the PATH; {tested} not tested"))
}

/// Runs `node` (on a thread of its own, while the test's runtime serves it)
/// and fails the test with its output unless it exits with 0 within `guard`;
/// returns what it printed.
pub async fn run_node(mut node: std::process::Command, guard: Duration) -> String {
    let output = tokio::time::timeout(guard, tokio::task::spawn_blocking(move || node.output()))
        .await
        .expect("node finished in time")
        .expect("the node thread ended")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "node failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The HTTP status of a refused upgrade.
pub async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[derive(Debug)]
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    /// Frames that came before a request's ack, read again by `recv`: the
    /// room messages a request broadcasts may overtake its ack.
    early: VecDeque<Value>,
}

impl From<WebSocketStream<MaybeTlsStream<TcpStream>>> for Client {
    fn from(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            next_ack: 0,
            early: VecDeque::new(),
        }
    }
}

impl Client {
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame (control frames are skipped).
    pub async fn recv(&mut self) -> Value {
        if let Some(frame) = self.early.pop_front() {
            return frame;
        }
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("connection ended")
                .unwrap();
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Frames until one that `wanted` accepts, which is returned.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.recv().await;
            if wanted(&frame) {
                return frame;
            }
        }
    }

    /// Sends a message asking for an ack; returns the answer (an `ack` or
    /// an `error` frame) and every frame that came before it.
    pub async fn exchange(&mut self, data: Value) -> (Value, Vec<Value>) {
        self.next_ack += 1;
        let ack = self.next_ack;
        self.send(json!({ "t": "msg", "data": data, "ack": ack }))
            .await;
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["ack"] == ack && (frame["t"] == "ack" || frame["t"] == "error") {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// The consumer's reply (the ack's data) to `data`.
    pub async fn request(&mut self, data: Value) -> Value {
        let (reply, before) = self.exchange(data).await;
        self.early.extend(before);
        assert_eq!(reply["t"], "ack", "{reply}");
        reply["data"].clone()
    }

    /// Joins `room`; returns the server's answer (`joined` or `error`).
    pub async fn join(&mut self, room: &str) -> Value {
        self.next_ack += 1;
        let ack = self.next_ack;
        self.send(json!({ "t": "join", "room": room, "ack": ack }))
            .await;
        self.until(|f| f["ack"] == ack).await
    }

    /// The next presence diff of `room` in which `user` `joins` or `leaves`.
    pub async fn presence_change(&mut self, room: &str, change: &str, user: &str) -> Value {
        self.until(|f| {
            f["t"] == "presence" && f["room"] == room && users(&f[change]).iter().any(|u| u == user)
        })
        .await
    }

    /// The next room message of `room` with `event`.
    pub async fn room_event(&mut self, room: &str, event: &str) -> Value {
        self.until(|f| f["t"] == "msg" && f["room"] == room && f["event"] == event)
            .await
    }
}

/// The users of a presence entry list.
pub fn users(entries: &Value) -> Vec<String> {
    let mut users: Vec<String> = entries
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| entry["user"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    users.sort();
    users
}
