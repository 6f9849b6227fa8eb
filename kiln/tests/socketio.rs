//! Socket.IO through `App::socketio`, driven by the official `socket.io-client`
//! (kiln/tests/socketio-client, run with `node`) against Kiln servers on real
//! ports: connect, emits, acks both ways, rooms, disconnect, and two servers
//! sharing Redis. Raw engine.io frames check that bad input closes only the
//! connection that sent it.
//!
//! Needs `node` with the package's node_modules (`npm ci` in
//! kiln/tests/socketio-client; scripts/test does it) and, for the cross-node
//! test, Redis at `KILN_TEST_REDIS_URL` (default 127.0.0.1:6379). Without
//! them a test prints `SKIPPED:` and passes, unless `KILN_REQUIRE_BACKENDS=1`.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kiln::prelude::*;
use kiln::realtime::socketio::{
    AckSender, Data, DisconnectReason, SocketIo, SocketIoSetup, SocketRef, TryData,
};
use kiln::test::{LiveServer, TestClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Events = mpsc::UnboundedSender<String>;

#[derive(Deserialize)]
struct Say {
    room: String,
    text: String,
}

/// The test app's namespace `/`: every event the node script uses.
fn chat(io: &mut SocketIoSetup, events: Events) {
    io.ns("/", async move |socket: SocketRef, site: Site| {
        let _ = socket.emit("welcome", &json!({ "sid": socket.id, "site": site.name() }));
        // Server -> client ack: ask, then tell the client what came back.
        let asker = socket.clone();
        tokio::spawn(async move {
            if let Ok(ack) = asker.emit_with_ack::<_, i64>("question", &20) {
                let answer = ack.await.map_or(-1, |answer| answer);
                let _ = asker.emit("answered", &answer);
            }
        });
        socket.on("echo", async |Data::<Value>(data), ack: AckSender| {
            let _ = ack.send(&json!({ "echo": data }));
        });
        socket.on("shout", async |socket: SocketRef, Data::<String>(text)| {
            let _ = socket.emit("shouted", &text.to_uppercase());
        });
        socket.on("typed", async |TryData::<i64>(number), ack: AckSender| {
            let _ = match number {
                Ok(number) => ack.send(&json!({ "ok": number + 1 })),
                Err(_) => ack.send(&json!({ "error": "bad data" })),
            };
        });
        socket.on(
            "join",
            async |socket: SocketRef, Data::<String>(room), ack: AckSender| {
                socket.join(room);
                let _ = ack.send("joined");
            },
        );
        socket.on(
            "leave",
            async |socket: SocketRef, Data::<String>(room), ack: AckSender| {
                socket.leave(room);
                let _ = ack.send("left");
            },
        );
        socket.on(
            "say",
            async |socket: SocketRef, io: SocketIo, Data::<Say>(say)| {
                let _ = socket.to(say.room).emit("said", &say.text).await;
                let _ = io.emit("announce", &format!("after {}", say.text)).await;
            },
        );
        socket.on_disconnect(async move |reason: DisconnectReason| {
            let _ = events.send(format!("disconnect {reason:?}"));
        });
    });
}

/// A Kiln consumer beside the Socket.IO endpoint: both count against
/// `realtime_max_connections`.
struct Native;

impl kiln::realtime::Consumer for Native {
    type Message = Value;

    async fn connect(_request: &kiln::realtime::ConnectRequest) -> Result<Self, kiln::Error> {
        Ok(Self)
    }

    async fn receive(&mut self, _socket: &kiln::realtime::Socket, message: Value) -> Value {
        message
    }
}

/// A Kiln server on a real port serving the chat namespace at `/socket.io/`
/// (and a Kiln consumer at `/ws/`).
async fn start(name: &str, extra: &str) -> (LiveServer, mpsc::UnboundedReceiver<String>) {
    let (events, received) = mpsc::unbounded_channel();
    let app = App::new("chat")
        .socketio("/socket.io/", "socketio", move |io| chat(io, events))
        .route("/ws/", "native", kiln::realtime::websocket::<Native>());
    let settings = Settings::from_toml(&format!("debug = true\n{extra}")).unwrap();
    let project = Project::new(name)
        .mount("/", app)
        .connect_channel_layer(&settings)
        .await
        .unwrap();
    let server = TestClient::with_settings(project, settings).serve().await;
    (server, received)
}

fn skip_or_fail(message: &str) {
    assert!(
        std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "{message}; KILN_REQUIRE_BACKENDS=1 requires it"
    );
    eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
}

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio-client")
}

/// Whether `node` and the client package are there (or a loud skip).
fn node_ready() -> bool {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        skip_or_fail("the socket.io-client tests: `node` is not installed");
        return false;
    }
    if !client_dir().join("node_modules/socket.io-client").is_dir() {
        skip_or_fail(
            "the socket.io-client tests: run `npm ci` in kiln/tests/socketio-client (scripts/test does)",
        );
        return false;
    }
    true
}

/// Runs the node script's `scenario`; fails the test with its output unless
/// it printed `ok <scenario>`.
async fn run_client(scenario: &str, args: &[String]) {
    let run = tokio::process::Command::new("node")
        .arg("client.mjs")
        .arg(scenario)
        .args(args)
        .current_dir(client_dir())
        .kill_on_drop(true)
        .output();
    // A hang guard: the script has its own 15 s guard.
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the node client hung")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(&format!("ok {scenario}")),
        "node client.mjs {scenario} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the server reported no event")
        .expect("the event channel is open")
}

#[tokio::test]
async fn socket_io_client_connects_emits_acks_and_disconnects() {
    if !node_ready() {
        return;
    }
    let (server, mut events) = start("sio", "").await;
    let addr = server.addr();
    // Long-polling first (through Kiln's stack, CSRF-exempt), then upgraded.
    run_client("basic", &[format!("http://{addr}")]).await;
    assert_eq!(
        next_event(&mut events).await,
        "disconnect ClientNSDisconnect"
    );
    // Straight to a WebSocket.
    run_client("basic", &[format!("http://{addr}"), "websocket".to_owned()]).await;
    assert_eq!(
        next_event(&mut events).await,
        "disconnect ClientNSDisconnect"
    );
}

#[tokio::test]
async fn rooms_and_broadcasts_reach_exactly_their_members() {
    if !node_ready() {
        return;
    }
    let (server, _events) = start("sio", "").await;
    let addr = server.addr();
    run_client("rooms", &[format!("http://{addr}")]).await;
}

#[tokio::test]
async fn broadcast_reaches_a_client_on_the_other_node_through_redis() {
    if !node_ready() {
        return;
    }
    let redis =
        std::env::var("KILN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = redis
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next();
    let reached = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(address.unwrap_or_default()),
    )
    .await;
    if !matches!(reached, Ok(Ok(_))) {
        skip_or_fail(&format!(
            "the Socket.IO Redis test: Redis at {redis} unreachable"
        ));
        return;
    }
    // A fresh prefix keeps this run's channels apart from any other's.
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let layer = format!("channel_layer = \"{redis}/?prefix=t{}:\"", &prefix[..10]);
    let (a, _) = start("sio-a", &layer).await;
    let (b, _) = start("sio-b", &layer).await;
    run_client("cross", &[a.url(""), b.url("")]).await;
}

#[tokio::test]
async fn a_connection_over_realtime_max_connections_gets_a_connect_error() {
    if !node_ready() {
        return;
    }
    let (server, _events) = start("sio", "realtime_max_connections = 2").await;
    run_client("limit", &[format!("http://{}", server.addr())]).await;
}

#[tokio::test]
async fn socket_io_and_kiln_websockets_share_realtime_max_connections() {
    let (server, _events) = start("sio", "realtime_max_connections = 1").await;
    let addr = server.addr();
    // A Socket.IO connection takes the only place...
    let mut first = raw_socket(addr).await;
    // ...so a second one's connect is refused with a connect_error packet
    // that names the limit, on a transport that stays usable.
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut second, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = next_text(&mut second)
        .await
        .expect("the engine.io open packet");
    assert!(open.starts_with("0{"), "{open}");
    second.send(Message::text("40")).await.unwrap();
    let refused = next_text(&mut second)
        .await
        .expect("the connect_error packet");
    assert!(refused.starts_with("44{"), "{refused}");
    assert!(
        refused.contains("realtime_max_connections = 1"),
        "{refused}"
    );
    // The first is still served.
    first
        .send(Message::text("42[\"shout\",\"still here\"]"))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut first).await.as_deref(),
        Some("42[\"shouted\",\"STILL HERE\"]")
    );
    // And Kiln's own WebSocket endpoint counts it too: its upgrade gets 503.
    let native = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/")).await;
    match native {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("the native WebSocket was not refused: {other:?}"),
    }
    // Once the Socket.IO connection is gone, its place is free again.
    first.close(None).await.unwrap();
    drop(first);
    let mut upgraded = None;
    for _ in 0..200 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/")).await {
            upgraded = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upgraded.is_some(), "the place was never given back");
}

#[tokio::test]
async fn a_client_flooding_events_is_cut_off_alone() {
    if !node_ready() {
        return;
    }
    let (server, mut events) =
        start("sio", "realtime_rate_limit = 5\nrealtime_rate_burst = 5").await;
    let url = format!("http://{}", server.addr());
    for transport in ["websocket", "polling"] {
        run_client("flood", &[url.clone(), transport.to_owned()]).await;
        // The server saw the flooder go (and the calm client leave after it).
        assert!(
            next_event(&mut events).await.starts_with("disconnect "),
            "{transport}"
        );
    }
}

/// A raw engine.io WebSocket past the Socket.IO connect: what a broken or
/// hostile client would hold.
async fn raw_socket(
    addr: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = next_text(&mut ws).await.expect("the engine.io open packet");
    assert!(open.starts_with("0{"), "{open}");
    ws.send(Message::text("40")).await.unwrap();
    let connected = next_text(&mut ws)
        .await
        .expect("the Socket.IO connect packet");
    assert!(connected.starts_with("40{"), "{connected}");
    let welcome = next_text(&mut ws).await.expect("the welcome event");
    assert!(welcome.starts_with("42[\"welcome\""), "{welcome}");
    ws
}

/// The next text frame, or `None` once the server closed the connection.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server neither answered nor closed");
        match frame {
            // The server's question (with an ack id) is not what the tests read.
            // Nor are engine.io's pings ("2") and close packets ("1"): after
            // a close packet the connection must end.
            Some(Ok(Message::Text(text)))
                if !text.contains("[\"question\",") && text != "2" && text != "1" =>
            {
                return Some(text.to_string());
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Sends `frame` on one raw connection of a server started with `extra`
/// settings: that connection must end, the server's disconnect handler
/// must run, and another connection must still be served.
async fn assert_frame_closes_only_its_connection(extra: &str, frame: String) {
    let (server, mut events) = start("sio", extra).await;
    let addr = server.addr();
    let mut bad = raw_socket(addr).await;
    let mut good = raw_socket(addr).await;
    bad.send(Message::text(frame)).await.unwrap();
    assert_eq!(next_text(&mut bad).await, None, "the connection stays open");
    assert!(
        next_event(&mut events).await.starts_with("disconnect "),
        "the server did not drop the socket"
    );
    good.send(Message::text("42[\"shout\",\"still here\"]"))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut good).await.as_deref(),
        Some("42[\"shouted\",\"STILL HERE\"]")
    );
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() {
    assert_frame_closes_only_its_connection("", "42[\"unterminated".to_owned()).await;
}

#[tokio::test]
async fn payload_over_realtime_max_message_size_closes_the_connection() {
    let big = format!("42[\"shout\",\"{}\"]", "x".repeat(4096));
    assert_frame_closes_only_its_connection("realtime_max_message_size = \"1 KiB\"", big).await;
}

#[tokio::test]
async fn ping_interval_not_shorter_than_request_timeout_is_refused_at_boot() {
    let app = App::new("chat").socketio("/socket.io/", "socketio", |_io| {});
    let settings = Settings::from_toml(
        "request_timeout = \"20s\"\nrealtime_ping_interval = \"20s\"\nrealtime_idle_timeout = \"60s\"",
    )
    .unwrap();
    let error = Project::new("sio")
        .mount("/", app)
        .build(settings)
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(error.contains("realtime_ping_interval"), "{error}");
    assert!(error.contains("request_timeout"), "{error}");
}

#[tokio::test]
async fn the_socketio_route_is_named_and_reversible() {
    let app = App::new("chat").socketio("/socket.io/", "socketio", |_io| {});
    let settings = Settings::from_toml("").unwrap();
    let (site, _service) = Project::new("sio")
        .mount("/live", app)
        .build(settings)
        .unwrap();
    assert_eq!(
        site.urls().reverse("chat:socketio", ()).unwrap(),
        "/live/socket.io/"
    );
}

#[tokio::test]
async fn bad_polling_requests_are_client_errors() {
    let (server, _events) = start("sio", "realtime_max_message_size = \"1 KiB\"").await;
    let addr = server.addr();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/socket.io/");
    // No engine.io parameters, an unknown protocol version, an unknown session.
    for query in [
        "",
        "?EIO=9&transport=polling",
        "?EIO=4&transport=polling&sid=nope",
    ] {
        let status = http
            .get(format!("{base}{query}"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{query}: {status}");
    }
    // A polling body over realtime_max_message_size ends that session.
    let open = http
        .get(format!("{base}?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handshake: Value = serde_json::from_str(open.trim_start_matches('0')).unwrap();
    let sid = handshake["sid"].as_str().unwrap().to_owned();
    let session = format!("{base}?EIO=4&transport=polling&sid={sid}");
    let ok = http.post(&session).body("40").send().await.unwrap();
    assert_eq!(ok.status(), 200, "a small post");
    let big = format!("42[\"shout\",\"{}\"]", "x".repeat(4096));
    let refused = http.post(&session).body(big).send().await.unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let after = http.get(&session).send().await.unwrap();
    assert!(
        after.status().is_client_error(),
        "the session survived: {}",
        after.status()
    );
}

#[tokio::test]
async fn shutdown_sends_socket_io_clients_the_close_packet() {
    let (server, _events) = start("sio", "").await;
    let mut ws = raw_socket(server.addr()).await;
    // Dropping the live server shuts it down.
    drop(server);
    let mut close_packet = false;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server neither closed the socket nor sent anything");
        match frame {
            Some(Ok(Message::Text(text))) if text == "1" => close_packet = true,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    // socketioxide 0.18 forgets its namespaces before it closes their
    // transports, so the `on_disconnect` handlers do not run: not asserted.
    assert!(
        close_packet,
        "no engine.io close packet before the socket ended"
    );
}
