//! Realtime over real sockets: a Kiln server on a real port and
//! tokio-tungstenite clients speaking the wire protocol of
//! `docs/topics/realtime.md`.
//!
//! No assertion depends on timing: waits are bounded by [`GUARD`] only so
//! that a broken feature fails instead of hanging.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[path = "support/ws.rs"]
pub mod ws;

use futures_util::{SinkExt, StreamExt};
use kiln::prelude::*;
use kiln::realtime::{
    ChannelLayer, Channels, ConnectRequest, Consumer, InProcessLayer, Presence, SendError, Socket,
};
use kiln::test::{LiveServer, TestClient};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use ws::{Client, GUARD, wait_until};

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatIn {
    Echo {
        text: String,
    },
    /// To the room; with `others`, to all but the sender.
    Say {
        room: String,
        text: String,
        #[serde(default)]
        others: bool,
    },
    Direct {
        to: String,
        text: String,
    },
    Ask {
        text: String,
        timeout_ms: u64,
    },
    Whoami,
}

/// The test app's consumer: a user named by a signed token; rooms whose name
/// starts with `private` are for `admin` only.
struct Chat {
    user: String,
}

impl Consumer for Chat {
    type Message = ChatIn;

    async fn connect(request: &ConnectRequest) -> Result<Self, kiln::Error> {
        let user = request
            .token(Duration::from_secs(60))
            .ok_or_else(|| kiln::Error::forbidden("a valid token is required"))?;
        Ok(Chat { user })
    }

    async fn receive(&mut self, socket: &Socket, message: ChatIn) -> Value {
        match message {
            ChatIn::Echo { text } => {
                socket.send("echo", &json!({ "text": text })).unwrap();
                json!({ "echoed": text })
            }
            ChatIn::Say { room, text, others } => {
                let said = json!({ "user": self.user, "text": text });
                let id = if others {
                    socket.broadcast_others(&room, "said", &said).await
                } else {
                    socket.broadcast(&room, "said", &said).await
                };
                json!({ "id": id.unwrap() })
            }
            ChatIn::Direct { to, text } => {
                let sent = socket
                    .channels()
                    .send_to(&to, "direct", &json!({ "from": self.user, "text": text }))
                    .await;
                json!({ "ok": sent.is_ok() })
            }
            ChatIn::Ask { text, timeout_ms } => {
                let answer = socket
                    .emit_with_ack(
                        "question",
                        &json!({ "text": text }),
                        Duration::from_millis(timeout_ms),
                    )
                    .await;
                match answer {
                    Ok(answer) => json!({ "answer": answer }),
                    Err(SendError::AckTimeout(_)) => json!({ "error": "timeout" }),
                    Err(error) => json!({ "error": error.to_string() }),
                }
            }
            ChatIn::Whoami => json!({ "id": socket.id(), "user": self.user }),
        }
    }

    async fn receive_binary(&mut self, socket: &Socket, data: bytes::Bytes) {
        socket.send("binary", &data.len()).unwrap();
    }

    async fn can_join(&mut self, _socket: &Socket, room: &str) -> bool {
        !room.starts_with("private") || self.user == "admin"
    }

    fn presence(&self, _room: &str) -> Option<Presence> {
        Some(Presence::new(&self.user).meta(json!({ "status": "here" })))
    }
}

#[derive(Deserialize)]
struct Post {
    room: String,
    text: String,
}

/// A normal view that broadcasts what it is given.
async fn post_message(channels: Channels, Json(post): Json<Post>) -> Result<String, kiln::Error> {
    let id = channels
        .broadcast(&post.room, "chat", &json!({ "text": post.text }))
        .await?;
    Ok(id.to_string())
}

struct Server {
    addr: SocketAddr,
    channels: Channels,
    _live: Option<LiveServer>,
}

async fn start(extra: &str) -> Server {
    start_on(extra, InProcessLayer::new()).await
}

fn chat_project(layer: Arc<dyn ChannelLayer>) -> Project {
    Project::new("rt")
        .channel_layer(layer)
        .route("/ws/", "chat", kiln::realtime::websocket::<Chat>())
        .route("/post/", "post", post(post_message).csrf_exempt())
}

async fn start_on(extra: &str, layer: Arc<dyn ChannelLayer>) -> Server {
    let project = chat_project(layer);
    let settings = Settings::from_toml(&format!("debug = true\n{extra}")).unwrap();
    let client = TestClient::with_settings(project, settings);
    let live = client.serve().await;
    Server {
        addr: live.addr(),
        channels: client.site().channels().clone(),
        _live: Some(live),
    }
}

impl Server {
    /// Fails unless a message broadcast to `room` now reaches `member`.
    async fn assert_room_reaches(&self, room: &str, member: &mut Client) {
        let id = self.channels.broadcast(room, "check", &1).await.unwrap();
        assert_eq!(member.room_msg(room).await["id"], id);
    }

    fn url(&self, user: &str) -> String {
        let token = self.channels.sign_token(user);
        let token: String = percent_encode(&token);
        format!("ws://{}/ws/?token={token}", self.addr)
    }

    async fn connect(&self, user: &str) -> Client {
        Client::connect(&self.url(user)).await
    }
}

fn percent_encode(value: &str) -> String {
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
async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[tokio::test]
async fn connect_without_a_valid_token_is_refused_before_the_upgrade() {
    let server = start("").await;
    let no_token = format!("ws://{}/ws/", server.addr);
    assert_eq!(refused_status(&no_token).await, 403);
    let forged = format!("ws://{}/ws/?token=alice:xyz:abc", server.addr);
    assert_eq!(refused_status(&forged).await, 403);
    // A plain GET (no upgrade) is refused by the upgrade extractor.
    let plain = reqwest::get(format!("http://{}/ws/", server.addr))
        .await
        .unwrap();
    assert!(plain.status().is_client_error());
    let mut client = server.connect("alice").await;
    client.assert_alive("alice").await;
}

#[tokio::test]
async fn typed_message_is_echoed_and_acknowledged() {
    let server = start("").await;
    let mut client = server.connect("alice").await;
    client
        .send(json!({ "t": "msg", "data": { "type": "echo", "text": "hi" }, "ack": 1 }))
        .await;
    // What the consumer sent while handling the message, then the ack.
    let echo = client.recv().await;
    assert_eq!(
        (&echo["event"], &echo["data"]["text"]),
        (&json!("echo"), &json!("hi"))
    );
    let reply = client.recv().await;
    assert_eq!(
        reply,
        json!({ "t": "ack", "ack": 1, "data": { "echoed": "hi" } })
    );
    // A message without an ack id gets no ack frame, but is handled.
    client
        .send(json!({ "t": "msg", "data": { "type": "echo", "text": "quiet" } }))
        .await;
    let echo = client.recv().await;
    assert_eq!(echo["data"]["text"], "quiet");
    // Binary frames reach the consumer too.
    client
        .ws
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(client.until(|f| f["event"] == "binary").await["data"], 3);
}

#[tokio::test]
async fn room_broadcast_reaches_every_member_once() {
    let server = start("").await;
    let mut clients = Vec::new();
    for name in ["a", "b", "c"] {
        let mut client = server.connect(name).await;
        assert_eq!(client.join("lobby", None).await["t"], "joined");
        clients.push(client);
    }
    let mut outsider = server.connect("d").await;
    let id = clients[0]
        .request(json!({ "type": "say", "room": "lobby", "text": "hello" }))
        .await["id"]
        .clone();
    for client in &mut clients {
        let msg = client.room_msg("lobby").await;
        assert_eq!(msg["id"], id);
        assert_eq!(msg["event"], "said");
        assert_eq!(msg["data"], json!({ "user": "a", "text": "hello" }));
    }
    // The outsider got nothing: its next frame is the answer to its own request.
    outsider.assert_alive("d").await;
}

/// A room's member list is rebuilt by the first fan-out after joins and
/// leaves, not by each of them: bursts before and after a rebuild must
/// all be seen by the next broadcast.
#[tokio::test]
async fn broadcasts_reach_exactly_the_members_after_bursts_of_joins_and_leaves() {
    let server = start("").await;
    let mut members = Vec::new();
    for n in 0..6 {
        let mut client = server.connect(&format!("first{n}")).await;
        assert_eq!(client.join("lobby", None).await["t"], "joined");
        members.push(client);
    }
    let id = server.channels.broadcast("lobby", "e", &1).await.unwrap();
    for member in &mut members {
        assert_eq!(member.room_msg("lobby").await["id"], id);
    }

    let mut leavers = members.split_off(3);
    for n in 0..6 {
        let mut client = server.connect(&format!("second{n}")).await;
        assert_eq!(client.join("lobby", None).await["t"], "joined");
        members.push(client);
    }
    for leaver in &mut leavers {
        leaver.send(json!({ "t": "leave", "room": "lobby" })).await;
        leaver.until(|f| f["t"] == "left").await;
    }
    let id = server.channels.broadcast("lobby", "e", &2).await.unwrap();
    // The room's task fans messages out one after the other: once every
    // member has `last`, the fan-out of `id` is over.
    let last = server.channels.broadcast("lobby", "e", &3).await.unwrap();
    for member in &mut members {
        assert_eq!(member.room_msg("lobby").await["id"], id);
        assert_eq!(member.room_msg("lobby").await["id"], last);
    }
    for leaver in &mut leavers {
        // Presence frames may come; a room message must not.
        leaver
            .send(json!({ "t": "msg", "data": { "type": "whoami" }, "ack": 1000 }))
            .await;
        let frame = leaver.until(|f| f["ack"] == 1000 || f["t"] == "msg").await;
        assert_eq!(frame["t"], "ack", "a member that left got {frame}");
    }
}

#[tokio::test]
async fn broadcast_to_others_skips_the_sender() {
    let server = start("").await;
    let mut alice = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    alice.join("lobby", None).await;
    bob.join("lobby", None).await;
    let first = alice
        .request(json!({ "type": "say", "room": "lobby", "text": "one", "others": true }))
        .await["id"]
        .clone();
    assert_eq!(bob.room_msg("lobby").await["id"], first);
    let second = alice
        .request(json!({ "type": "say", "room": "lobby", "text": "two" }))
        .await["id"]
        .clone();
    // Alice's first room message is the second one: she never got "one".
    let got = alice.room_msg("lobby").await;
    assert_eq!(got["id"], second);
    assert_eq!(bob.room_msg("lobby").await["id"], second);
}

#[tokio::test]
async fn direct_send_reaches_one_connection() {
    let server = start("").await;
    let mut alice = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    let mut carol = server.connect("carol").await;
    let alice_id = alice.whoami().await;
    let sent = bob
        .request(json!({ "type": "direct", "to": alice_id, "text": "psst" }))
        .await;
    assert_eq!(sent["ok"], true);
    let direct = alice.until(|f| f["event"] == "direct").await;
    assert_eq!(direct["data"], json!({ "from": "bob", "text": "psst" }));
    assert!(direct.get("room").is_none());
    // Carol's next frame is her own reply: the direct message was not hers.
    carol.assert_alive("carol").await;
    // A connection of this node that does not exist: the sender is told.
    let gone = format!("{}/999999", server.channels.node_id());
    let sent = bob
        .request(json!({ "type": "direct", "to": gone, "text": "?" }))
        .await;
    assert_eq!(sent["ok"], false);
}

#[tokio::test]
async fn room_data_reaches_clients_as_the_sender_serialized_it() {
    // Fields out of alphabetical order: a node that parsed the data into a
    // `serde_json::Value` on the way would hand them out sorted.
    #[derive(Serialize)]
    struct Reading {
        zebra: u32,
        apple: f64,
    }
    let server = start("").await;
    let mut alice = server.connect("alice").await;
    alice.join("room", None).await;
    let reading = Reading {
        zebra: 1,
        apple: 2.5,
    };
    let id = server
        .channels
        .broadcast("room", "reading", &reading)
        .await
        .unwrap();
    let text = tokio::time::timeout(GUARD, async {
        loop {
            if let Some(Ok(Message::Text(text))) = alice.ws.next().await
                && text.contains(r#""t":"msg""#)
            {
                return text;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        text.as_str(),
        format!(
            r#"{{"t":"msg","room":"room","id":{id},"event":"reading","data":{{"zebra":1,"apple":2.5}}}}"#
        )
    );
}

#[tokio::test]
async fn a_view_broadcasts_to_a_room() {
    let server = start("").await;
    let mut client = server.connect("alice").await;
    client.join("news", None).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/post/", server.addr))
        .json(&json!({ "room": "news", "text": "saved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id: u64 = response.text().await.unwrap().parse().unwrap();
    let msg = client.room_msg("news").await;
    assert_eq!(msg["id"], id);
    assert_eq!(msg["event"], "chat");
    assert_eq!(msg["data"]["text"], "saved");
}

fn has_entry(list: &Value, user: &str) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|entry| entry["user"] == user)
        .and_then(|entry| entry["key"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn presence_diffs_follow_two_connections_of_one_user() {
    let server = start("").await;
    let mut bob = server.connect("bob").await;
    bob.join("room", None).await;
    let mut alice1 = server.connect("alice").await;
    alice1.join("room", None).await;
    let first = bob
        .until(|f| f["t"] == "presence" && has_entry(&f["joins"], "alice").is_some())
        .await;
    let key1 = has_entry(&first["joins"], "alice").unwrap();
    let entry = first["joins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"] == key1.as_str())
        .unwrap();
    assert_eq!(entry["meta"]["status"], "here");
    let mut alice2 = server.connect("alice").await;
    alice2.join("room", None).await;
    // The second connection's state lists both of alice's and bob's entries.
    let state = alice2.until(|f| f["t"] == "presence_state").await;
    let users: Vec<&str> = state["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["user"].as_str().unwrap())
        .collect();
    assert_eq!(users.iter().filter(|u| **u == "alice").count(), 2);
    assert!(users.contains(&"bob"));
    let second = bob
        .until(|f| f["t"] == "presence" && has_entry(&f["joins"], "alice").is_some())
        .await;
    let key2 = has_entry(&second["joins"], "alice").unwrap();
    assert_ne!(key1, key2);

    alice1.ws.close(None).await.unwrap();
    let leave = bob
        .until(|f| f["t"] == "presence" && has_entry(&f["leaves"], "alice").is_some())
        .await;
    assert_eq!(has_entry(&leave["leaves"], "alice").unwrap(), key1);
    // Alice is still present through her second connection.
    let now = server.channels.presence("room").await.unwrap();
    let keys: Vec<&str> = now.iter().map(|entry| entry.key.as_str()).collect();
    assert!(keys.contains(&key2.as_str()) && !keys.contains(&key1.as_str()));
}

#[tokio::test]
async fn members_of_a_node_that_stopped_refreshing_expire_with_a_leave_diff() {
    let layer = InProcessLayer::new();
    let server = start_on("realtime_presence_ttl = \"300ms\"", layer.clone()).await;
    let mut bob = server.connect("bob").await;
    bob.join("room", None).await;
    // Another node's entry, which that node (dead) never refreshes.
    let ghost = serde_json::to_vec(&Presence::new("ghost")).unwrap();
    layer
        .presence_set(
            "room",
            "deadnode/1",
            ghost.into(),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    let joined = bob
        .until(|f| f["t"] == "presence" && has_entry(&f["joins"], "ghost").is_some())
        .await;
    assert_eq!(has_entry(&joined["joins"], "ghost").unwrap(), "deadnode/1");
    let left = bob
        .until(|f| f["t"] == "presence" && has_entry(&f["leaves"], "ghost").is_some())
        .await;
    assert_eq!(has_entry(&left["leaves"], "ghost").unwrap(), "deadnode/1");
    // Bob's own entry is refreshed by his node, so it outlives the TTL.
    let present = server.channels.presence("room").await.unwrap();
    assert!(present.iter().any(|entry| entry.user == "bob"));
}

#[tokio::test]
async fn server_emit_waits_for_the_client_ack() {
    let server = start("").await;
    let mut client = server.connect("alice").await;
    client
        .send(json!({ "t": "msg", "data": { "type": "ask", "text": "6x7?", "timeout_ms": 20000 }, "ack": 1 }))
        .await;
    let question = client.until(|f| f["event"] == "question").await;
    assert_eq!(question["data"]["text"], "6x7?");
    let ack = question["ack"].as_u64().unwrap();
    client
        .send(json!({ "t": "ack", "ack": ack, "data": 42 }))
        .await;
    let reply = client.until(|f| f["t"] == "ack" && f["ack"] == 1).await;
    assert_eq!(reply["data"], json!({ "answer": 42 }));
}

#[tokio::test]
async fn server_emit_without_an_ack_reports_a_timeout() {
    let server = start("").await;
    let mut client = server.connect("alice").await;
    client
        .send(json!({ "t": "msg", "data": { "type": "ask", "text": "hello?", "timeout_ms": 200 }, "ack": 1 }))
        .await;
    client.until(|f| f["event"] == "question").await;
    // No answer: the consumer's wait ends with a timeout, reported back.
    let reply = client.until(|f| f["t"] == "ack" && f["ack"] == 1).await;
    assert_eq!(reply["data"], json!({ "error": "timeout" }));
    // A late ack for a request nobody waits for any more is ignored.
    client
        .send(json!({ "t": "ack", "ack": 1, "data": 1 }))
        .await;
    assert_eq!(client.whoami().await.split('/').count(), 2);
}

#[tokio::test]
async fn reconnecting_client_recovers_missed_messages_in_order() {
    let server = start("realtime_history = 10").await;
    let mut alice = server.connect("alice").await;
    alice.join("room", None).await;
    let first = server.channels.broadcast("room", "n", &1).await.unwrap();
    assert_eq!(alice.room_msg("room").await["id"], first);
    drop(alice);
    let mut missed = Vec::new();
    for n in 2..=4 {
        missed.push(server.channels.broadcast("room", "n", &n).await.unwrap());
    }
    let mut alice = server.connect("alice").await;
    assert_eq!(alice.join("room", Some(first)).await["t"], "joined");
    for id in &missed {
        let msg = alice.room_msg("room").await;
        assert_eq!(msg["id"], *id);
    }
    // Then live delivery continues, without duplicates.
    let live = server.channels.broadcast("room", "n", &5).await.unwrap();
    let msg = alice.room_msg("room").await;
    assert_eq!(msg["id"], live);
    assert_eq!(msg["data"], 5);
}

#[tokio::test]
async fn reconnecting_beyond_the_history_window_is_told_to_resync() {
    let server = start("realtime_history = 2").await;
    let first = server.channels.broadcast("room", "n", &1).await.unwrap();
    for n in 2..=5 {
        server.channels.broadcast("room", "n", &n).await.unwrap();
    }
    let mut alice = server.connect("alice").await;
    alice.join("room", Some(first)).await;
    let frame = alice.until(|f| f["t"] == "resync" || f["t"] == "msg").await;
    assert_eq!(frame, json!({ "t": "resync", "room": "room" }));
    let live = server.channels.broadcast("room", "n", &6).await.unwrap();
    assert_eq!(alice.room_msg("room").await["id"], live);
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_stays() {
    let server = start("").await;
    let mut client = server.connect("alice").await;
    client
        .ws
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(client.recv().await["code"], "bad_json");
    client.send(json!({ "t": "dance" })).await;
    let error = client.recv().await;
    assert_eq!(error["code"], "unknown_type");
    client.send(json!({ "t": "join" })).await;
    assert_eq!(client.recv().await["code"], "bad_json");
    client
        .send(json!({ "t": "msg", "data": { "type": "nope" }, "ack": 9 }))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (error["code"].as_str(), error["ack"].as_u64()),
        (Some("bad_message"), Some(9))
    );
    client
        .send(json!({ "t": "join", "room": "__node.x" }))
        .await;
    assert_eq!(client.recv().await["code"], "bad_room");
    client.assert_alive("alice").await;
}

#[tokio::test]
async fn joining_a_room_without_permission_is_an_error_frame() {
    let server = start("").await;
    let mut alice = server.connect("alice").await;
    let refused = alice.join("private-board", None).await;
    assert_eq!(refused["t"], "error");
    assert_eq!(refused["code"], "forbidden");
    assert_eq!(refused["room"], "private-board");
    let mut admin = server.connect("admin").await;
    assert_eq!(admin.join("private-board", None).await["t"], "joined");
    // Alice is not a member: a message to the room does not reach her, and
    // her connection still works.
    server
        .assert_room_reaches("private-board", &mut admin)
        .await;
    alice.assert_alive("alice").await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = start("realtime_max_message_size = \"1 KiB\"").await;
    let mut big = server.connect("alice").await;
    let mut other = server.connect("bob").await;
    let text = "x".repeat(4096);
    big.send(json!({ "t": "msg", "data": { "type": "echo", "text": text } }))
        .await;
    assert_eq!(big.close_code().await, Some(1009));
    other.assert_alive("bob").await;
}

#[tokio::test]
async fn a_flooding_client_is_closed_and_others_keep_receiving() {
    let server = start("realtime_rate_limit = 1\nrealtime_rate_burst = 20").await;
    let mut flooder = server.connect("mallory").await;
    let mut alice = server.connect("alice").await;
    alice.join("lobby", None).await;
    for _ in 0..500 {
        let frame = json!({ "t": "msg", "data": { "type": "whoami" } }).to_string();
        if flooder.ws.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
    assert_eq!(flooder.close_code().await, Some(1008));
    server.assert_room_reaches("lobby", &mut alice).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_from_its_rooms_and_others_lose_nothing() {
    // No idle timeout to speak of: the only reason left to drop the slow
    // client is its full send queue.
    let server = start("realtime_send_queue = 8\nrealtime_idle_timeout = \"1h\"").await;
    // A client with a small receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(server.url("slow"), stream)
        .await
        .unwrap();
    slow.send(Message::Text(
        json!({ "t": "join", "room": "feed" }).to_string().into(),
    ))
    .await
    .unwrap();
    let mut fast = server.connect("fast").await;
    fast.join("feed", None).await;
    // Wait until the slow client is in the room (its presence entry shows it).
    wait_until(async || {
        let present = server.channels.presence("feed").await.unwrap();
        present.iter().any(|entry| entry.user == "slow")
    })
    .await;
    let payload = "y".repeat(8 * 1024);
    let mut sent = 0u32;
    // The fast client reads every message (and the presence diffs between
    // them) before the next is sent, so only the slow one can fall behind,
    // until the server drops it from the room: the leave diff says so. The
    // bound only keeps a broken test finite.
    let mut slow_left = false;
    while !slow_left {
        assert!(sent < 20_000, "the slow client was never dropped");
        let id = server
            .channels
            .broadcast("feed", "tick", &json!({ "n": sent, "pad": payload }))
            .await
            .unwrap();
        let msg = fast
            .until(|f| {
                if f["t"] == "presence" && has_entry(&f["leaves"], "slow").is_some() {
                    slow_left = true;
                }
                f["t"] == "msg" && f["room"] == "feed"
            })
            .await;
        assert_eq!(msg["id"], id);
        assert_eq!(msg["data"]["n"], sent);
        sent += 1;
    }
    // The node reports it gone: not present (removed before the leave was
    // announced), and its connection ends.
    let present = server.channels.presence("feed").await.unwrap();
    assert!(
        present.iter().all(|entry| entry.user != "slow"),
        "{present:?}"
    );
    wait_until(async || server.channels.connections() == 1).await;
    server.assert_room_reaches("feed", &mut fast).await;
    // The slow client, reading at last, finds its connection ended. The
    // server gave up writing to it, so a close frame (4001) may not have
    // got through; when one did, it names the reason.
    let ended = tokio::time::timeout(GUARD, async {
        while let Some(Ok(message)) = slow.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| f.code);
            }
        }
        None
    })
    .await
    .unwrap();
    if let Some(code) = ended {
        assert_eq!(code, CloseCode::from(4001));
    }
}

/// The chat project served by `kiln::server::serve` itself, for the tests
/// that shut it down: the sender starts the shutdown, the task is `serve`.
async fn start_stoppable(
    extra: &str,
) -> (
    Server,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let settings = Settings::from_toml(&format!("debug = true\n{extra}")).unwrap();
    let (site, service) = chat_project(InProcessLayer::new()).build(settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server {
        addr: listener.local_addr().unwrap(),
        channels: site.channels().clone(),
        _live: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(kiln::server::serve(listener, site, service, async {
        let _ = stopped.await;
    }));
    (server, stop, task)
}

/// hyper is done with a connection once it is upgraded; the WebSocket must
/// still hold its place under `max_connections` until it closes.
#[tokio::test]
async fn open_websockets_count_against_max_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start("max_connections = 2").await;
    let mut one = server.connect("a").await;
    let mut two = server.connect("b").await;
    assert!(one.whoami().await.contains('/'));
    assert!(two.whoami().await.contains('/'));

    let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET /post/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // A negative check: a client served wrongly is answered within milliseconds.
    let early =
        tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut answer)).await;
    assert!(
        early.is_err() && answer.is_empty(),
        "a third connection was served beside two WebSockets: {:?}",
        String::from_utf8_lossy(&answer)
    );

    one.ws.close(None).await.unwrap();
    tokio::time::timeout(GUARD, async { while one.ws.next().await.is_some() {} })
        .await
        .expect("the closed WebSocket did not end");
    tokio::time::timeout(GUARD, third.read_to_end(&mut answer))
        .await
        .expect("the waiting connection was not served after a WebSocket closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(two.whoami().await.contains('/'));
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_waits_for_them() {
    // A return by timeout would take a minute, past the test's guard.
    let (server, stop, task) = start_stoppable("shutdown_timeout = \"60s\"").await;
    let mut client = server.connect("a").await;
    assert!(client.whoami().await.contains('/'));
    stop.send(()).unwrap();
    assert_eq!(client.close_code().await, Some(1001));
    // The close handshake completes: the socket ends cleanly, not with a reset.
    match tokio::time::timeout(GUARD, client.ws.next()).await.unwrap() {
        None | Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {}
        other => panic!("the socket did not end cleanly after the close frame: {other:?}"),
    }
    tokio::time::timeout(GUARD, task)
        .await
        .expect("serve did not return once the WebSocket closed")
        .unwrap()
        .unwrap();
    assert_eq!(server.channels.connections(), 0);
}

#[tokio::test]
async fn connections_past_the_limit_get_503_before_the_upgrade() {
    let server = start("realtime_max_connections = 2").await;
    let mut one = server.connect("a").await;
    let _two = server.connect("b").await;
    assert_eq!(refused_status(&server.url("c")).await, 503);
    assert_eq!(one.whoami().await.split('/').count(), 2);
}

/// A handshake request for `url` sent from a page of `origin`, as a browser sends it.
fn from_page_of(
    url: &str,
    origin: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    request
}

/// Cross-site WebSocket hijacking: a browser opens a socket to any site,
/// with that site's cookies, from any page. A handshake whose `Origin` is
/// another site is refused before the consumer runs; the site's own pages,
/// trusted origins and clients that send no `Origin` (not browsers) connect.
#[tokio::test]
async fn a_handshake_from_another_sites_page_is_refused() {
    let server = start("csrf_trusted_origins = [\"https://app.example\"]").await;
    let url = server.url("mallory");
    let refused = tokio_tungstenite::connect_async(from_page_of(&url, "http://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("csrf_trusted_origins"), "{body}");
        }
        other => panic!("expected a 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    // A look-alike that only starts with the site's host is another site.
    let own = format!("http://{}", server.addr);
    let look_alike = format!("{own}.evil.example");
    assert!(
        tokio_tungstenite::connect_async(from_page_of(&url, &look_alike))
            .await
            .is_err()
    );
    assert_eq!(server.channels.connections(), 0, "nothing was accepted");

    for origin in [own.as_str(), "https://app.example"] {
        let (ws, _) = tokio_tungstenite::connect_async(from_page_of(&url, origin))
            .await
            .unwrap_or_else(|error| panic!("{origin} refused: {error}"));
        let mut client = Client::new(ws);
        assert!(client.whoami().await.contains('/'), "{origin}");
    }
    let mut no_origin = server.connect("tool").await;
    assert!(no_origin.whoami().await.contains('/'));
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_for_idleness() {
    let server =
        start("realtime_ping_interval = \"100ms\"\nrealtime_idle_timeout = \"300ms\"").await;
    // A raw client that never writes after its handshake, so it answers no
    // ping. (tungstenite's client answers every ping it reads, and that
    // pong, written into a socket the server has closed meanwhile, fails
    // the read before the close frame behind it is seen.)
    let frames = never_answering(&server, "idle").await;
    let pings = frames.iter().filter(|(opcode, _)| *opcode == 0x9).count();
    assert!(pings >= 1, "no ping before the close: {frames:?}");
    let (opcode, payload) = frames.last().expect("no frame at all");
    assert_eq!(*opcode, 0x8, "the last frame is not a close: {frames:?}");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 4000);
    assert_eq!(server.channels.connections(), 0);
}

/// Opens a WebSocket as `user` by hand, never writes another byte, and
/// returns the frames (opcode, payload) the server sent until it closed the
/// socket.
async fn never_answering(server: &Server, user: &str) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = server.url(user);
    let path = &url[url.find("/ws/").unwrap()..];
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(GUARD, tcp.read_to_end(&mut bytes))
        .await
        .expect("the server did not close the socket")
        .unwrap();
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        bytes.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let mut frames = Vec::new();
    let mut rest = &bytes[head_end..];
    // Server frames are unmasked; these are all short (under 126 bytes).
    while let [first, len, tail @ ..] = rest {
        let len = usize::from(*len);
        assert!(len < 126, "unexpected long frame");
        frames.push((first & 0x0f, tail[..len].to_vec()));
        rest = &tail[len..];
    }
    frames
}

#[tokio::test]
async fn two_nodes_sharing_a_layer_reach_each_others_members() {
    let layer = InProcessLayer::new();
    let one = start_on("", layer.clone()).await;
    let two = start_on("", layer).await;
    assert_ne!(one.channels.node_id(), two.channels.node_id());
    let mut alice = one.connect("alice").await;
    let mut bob = two.connect("bob").await;
    alice.join("lobby", None).await;
    bob.join("lobby", None).await;
    // Presence crosses nodes: alice sees bob's join.
    alice
        .until(|f| f["t"] == "presence" && has_entry(&f["joins"], "bob").is_some())
        .await;
    // A room message sent on node one reaches node two's member.
    let id = alice
        .request(json!({ "type": "say", "room": "lobby", "text": "hi" }))
        .await["id"]
        .clone();
    assert_eq!(bob.room_msg("lobby").await["id"], id);
    // A direct send to a connection of the other node goes through its node room.
    let alice_id = alice.whoami().await;
    let sent = bob
        .request(json!({ "type": "direct", "to": alice_id, "text": "psst" }))
        .await;
    assert_eq!(sent["ok"], true);
    let direct = alice.until(|f| f["event"] == "direct").await;
    assert_eq!(direct["data"]["from"], "bob");
}
