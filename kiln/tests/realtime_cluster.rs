//! Realtime across nodes: two Kiln server **processes** (this test binary
//! run again as a child, see [`cluster_node`]) on their own ports, sharing a
//! Redis or NATS channel layer, and tokio-tungstenite clients on both.
//!
//! What the tests prove: a room is one room whichever node a member is on
//! (messages in id order, presence, direct sends), a client may reconnect to
//! any node and recover what it missed (no sticky sessions), and a node that
//! is killed with SIGKILL has its members leave the other nodes' presence
//! once their entries expire, while the other nodes keep serving.
//!
//! No assertion depends on timing: waits are bounded by [`GUARD`] only so
//! that a broken feature fails instead of hanging. An absent Redis or NATS
//! is skipped with a `SKIPPED:` line, or fails under
//! `KILN_REQUIRE_BACKENDS=1`.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

#[path = "support/layers.rs"]
pub mod layers;
#[path = "support/ws.rs"]
pub mod ws;

use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Presence, Socket};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use ws::{Client, GUARD};

/// The child's environment variable: the layer URL the node connects to.
const NODE_LAYER: &str = "KILN_TEST_CLUSTER_LAYER";

/// How many messages the burst test sends at once: fewer than the 1,024 a
/// node's room subscription may hold, and the NATS client's buffer too.
/// Past that, a node starved of CPU skips (and logs) what it could not take
/// in time, as docs/topics/realtime.md says ("When a message can be
/// dropped"), so a bigger burst would test how busy the machine is.
const BURST: u64 = 1000;

/// Presence entries of a dead node are gone this long after its last
/// refresh (the nodes' `realtime_presence_ttl`).
const PRESENCE_TTL: &str = "1s";

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum MemberIn {
    /// Broadcast to a room through this node; the reply is the message id.
    Say { room: String, text: String },
    /// Send to one connection, whichever node holds it.
    Direct { to: String, text: String },
    /// This connection's id and its node's.
    Whoami,
    /// Who is in a room, as this node's `Channels::presence` sees it.
    Who { room: String },
    /// Sends `count` messages numbered from 0 to a room as fast as the API
    /// allows: `broadcast_queued` one after the other (`queued`), or every
    /// `broadcast` at once (`concurrent`). The reply comes once all are
    /// queued, or published.
    Burst {
        room: String,
        count: u64,
        mode: String,
    },
}

/// A member named by the `user` query parameter, present in every room.
struct Member {
    user: String,
}

impl Consumer for Member {
    type Message = MemberIn;

    async fn connect(request: &ConnectRequest) -> Result<Self, kiln::Error> {
        let user = request
            .query("user")
            .ok_or_else(|| kiln::Error::forbidden("?user= is required"))?;
        Ok(Self { user })
    }

    async fn receive(&mut self, socket: &Socket, message: MemberIn) -> Value {
        let channels = socket.channels();
        match message {
            MemberIn::Say { room, text } => {
                let said = json!({ "user": self.user, "text": text });
                json!({ "id": socket.broadcast(&room, "said", &said).await.unwrap() })
            }
            MemberIn::Direct { to, text } => {
                let sent = channels
                    .send_to(&to, "direct", &json!({ "from": self.user, "text": text }))
                    .await;
                json!({ "ok": sent.is_ok() })
            }
            MemberIn::Whoami => {
                json!({ "id": socket.id(), "node": channels.node_id(), "user": self.user })
            }
            MemberIn::Who { room } => json!(channels.presence(&room).await.unwrap()),
            MemberIn::Burst { room, count, mode } => {
                if mode == "queued" {
                    for n in 0..count {
                        socket
                            .broadcast_queued(&room, "burst", &json!({ "n": n }))
                            .await
                            .unwrap();
                    }
                } else {
                    let sends = (0..count).map(|n| {
                        let channels = channels.clone();
                        let room = room.clone();
                        async move { channels.broadcast(&room, "burst", &json!({ "n": n })).await }
                    });
                    for sent in futures_util::future::join_all(sends).await {
                        sent.unwrap();
                    }
                }
                json!({ "sent": count })
            }
        }
    }

    fn presence(&self, _room: &str) -> Option<Presence> {
        Some(Presence::new(&self.user))
    }
}

/// Not a test on its own: one node of the cluster, run as a child process
/// of this test binary. Without its variable it returns at once.
#[tokio::test]
async fn cluster_node() {
    let Ok(url) = std::env::var(NODE_LAYER) else {
        return;
    };
    let layer = kiln::realtime::connect(&url).await.unwrap();
    let project = Project::new("cluster").channel_layer(layer).route(
        "/ws/",
        "member",
        kiln::realtime::websocket::<Member>(),
    );
    // The send queue holds a whole burst (see
    // `a_burst_from_one_node_reaches_a_member_on_the_other_whole_and_in_order`):
    // what is tested is the path between the nodes, not how fast the test
    // client reads.
    let settings = Settings::from_toml(&format!(
        "debug = true\nrealtime_history = 50\nrealtime_presence_ttl = \"{PRESENCE_TTL}\"\n\
         realtime_send_queue = {}",
        2 * BURST
    ))
    .unwrap();
    let (site, service) = project.build(settings).unwrap();
    let node = site.channels().node_id().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("NODE {} {node}", listener.local_addr().unwrap());
    kiln::server::serve(listener, site, service, std::future::pending())
        .await
        .unwrap();
}

/// A node process: killed when dropped (`kill_on_drop`).
struct Node {
    process: tokio::process::Child,
    addr: String,
    id: String,
}

impl Node {
    async fn start(layer_url: &str) -> Self {
        let mut process = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["cluster_node", "--exact", "--nocapture"])
            .env(NODE_LAYER, layer_url)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the node process starts");
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        loop {
            let line = tokio::time::timeout(GUARD, lines.next_line())
                .await
                .expect("the node did not start in time")
                .unwrap()
                .expect("the node exited before it served");
            if let Some(rest) = line.strip_prefix("NODE ") {
                let (addr, id) = rest.split_once(' ').unwrap();
                return Self {
                    process,
                    addr: addr.to_owned(),
                    id: id.to_owned(),
                };
            }
        }
    }

    async fn connect(&self, user: &str) -> Client {
        Client::connect(&format!("ws://{}/ws/?user={user}", self.addr)).await
    }

    /// SIGKILL: the node says nothing to anyone.
    async fn kill(&mut self) {
        self.process.kill().await.unwrap();
    }
}

/// Two nodes sharing each layer server that answers; `test` runs once per
/// server and the server's keys are removed afterwards.
async fn on_each_layer(test: impl AsyncFn(&str, [Node; 2])) {
    for server in layers::servers().await {
        let url = server.url();
        let nodes = [Node::start(&url).await, Node::start(&url).await];
        assert_ne!(nodes[0].id, nodes[1].id);
        test(server.name, nodes).await;
        server.finish().await;
    }
}

/// The key of `user`'s entry in a list of presence entries.
fn key_of(list: &Value, user: &str) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|entry| entry["user"] == user)
        .and_then(|entry| entry["key"].as_str().map(str::to_owned))
}

/// Waits for the presence diff telling `member` (on node B) that `user`
/// joined. From then on node B's view of the room holds `user`, so it also
/// reports the leave. `user` must join after `member` did, so that the diff
/// comes after `member`'s `joined` answer (which `join` reads up to).
/// Returns `user`'s key.
async fn joined_on_b(member: &mut Client, user: &str) -> String {
    let joined = member
        .until(|f| f["t"] == "presence" && key_of(&f["joins"], user).is_some())
        .await;
    key_of(&joined["joins"], user).unwrap()
}

#[tokio::test]
async fn a_room_message_from_one_node_reaches_the_others_members_in_id_order() {
    on_each_layer(async |name, [a, b]| {
        let mut alice = a.connect("alice").await;
        let mut bob = b.connect("bob").await;
        let mut carol = b.connect("carol").await;
        for client in [&mut alice, &mut bob, &mut carol] {
            assert_eq!(client.join("lobby", None).await["t"], "joined", "{name}");
        }
        let mut ids = Vec::new();
        for n in 0..20 {
            let said = alice
                .request(json!({ "type": "say", "room": "lobby", "text": n.to_string() }))
                .await;
            ids.push(said["id"].as_u64().unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}: {ids:?}");
        // (Alice's own copies were read past while she waited for her acks.)
        for member in [&mut bob, &mut carol] {
            for (n, id) in ids.iter().enumerate() {
                let msg = member.room_msg("lobby").await;
                assert_eq!(msg["id"], *id, "{name}");
                assert_eq!(
                    msg["data"],
                    json!({ "user": "alice", "text": n.to_string() }),
                    "{name}"
                );
            }
        }
    })
    .await;
}

/// Issue 6's "messages silently dropped on group sends": a burst sent on
/// node A as fast as Kiln takes it must reach a member on node B whole, in
/// the order it was sent, with increasing ids, however the node batches it
/// on the way (one round trip to the layer carries many messages).
#[tokio::test]
async fn a_burst_from_one_node_reaches_a_member_on_the_other_whole_and_in_order() {
    on_each_layer(async |name, [a, b]| {
        let mut sender = a.connect("sender").await;
        let mut bob = b.connect("bob").await;
        assert_eq!(bob.join("burst", None).await["t"], "joined", "{name}");
        for mode in ["queued", "concurrent"] {
            let reply = sender
                .request(json!({ "type": "burst", "room": "burst", "count": BURST, "mode": mode }))
                .await;
            assert_eq!(reply["sent"], BURST, "{name} {mode}");
            let mut last_id = 0;
            for n in 0..BURST {
                let msg = bob.room_msg("burst").await;
                assert_eq!(
                    msg["data"]["n"], n,
                    "{name} {mode}: message {n} is missing or out of order"
                );
                let id = msg["id"].as_u64().unwrap();
                assert!(id > last_id, "{name} {mode}: id {id} after {last_id}");
                last_id = id;
            }
        }
        // Nothing more came: the member got each message once.
        bob.assert_alive("bob").await;
    })
    .await;
}

#[tokio::test]
async fn presence_shows_members_of_other_nodes_and_their_leave() {
    on_each_layer(async |name, [a, b]| {
        let mut bob = b.connect("bob").await;
        bob.join("room", None).await;
        let mut alice = a.connect("alice").await;
        alice.join("room", None).await;
        let alice_id = alice.request(json!({ "type": "whoami" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(alice_id.starts_with(&format!("{}/", a.id)), "{name}");
        // Node B's member is told of the member who joined on node A...
        assert_eq!(joined_on_b(&mut bob, "alice").await, alice_id, "{name}");
        // ...a member joining on node B later finds her there...
        let mut carol = b.connect("carol").await;
        carol.join("room", None).await;
        let state = carol.until(|f| f["t"] == "presence_state").await;
        assert_eq!(key_of(&state["entries"], "alice"), Some(alice_id.clone()));
        // ...and so does node B's own presence list.
        let who = bob.request(json!({ "type": "who", "room": "room" })).await;
        assert_eq!(key_of(&who, "alice"), Some(alice_id.clone()), "{name}");
        // Alice's client goes away: node B's member gets the leave diff.
        alice.ws.close(None).await.unwrap();
        let left = bob
            .until(|f| f["t"] == "presence" && key_of(&f["leaves"], "alice").is_some())
            .await;
        assert_eq!(key_of(&left["leaves"], "alice"), Some(alice_id), "{name}");
        let who = bob.request(json!({ "type": "who", "room": "room" })).await;
        assert_eq!(key_of(&who, "alice"), None, "{name}: {who}");
        assert!(key_of(&who, "bob").is_some(), "{name}: {who}");
    })
    .await;
}

#[tokio::test]
async fn send_to_reaches_a_connection_on_another_node() {
    on_each_layer(async |name, [a, b]| {
        let mut alice = a.connect("alice").await;
        let mut bob = b.connect("bob").await;
        let me = bob.request(json!({ "type": "whoami" })).await;
        let bob_id = me["id"].as_str().unwrap().to_owned();
        assert_eq!(me["node"], b.id.as_str(), "{name}");
        let sent = alice
            .request(json!({ "type": "direct", "to": bob_id, "text": "psst" }))
            .await;
        assert_eq!(sent["ok"], true, "{name}");
        let direct = bob.until(|f| f["event"] == "direct").await;
        assert_eq!(
            direct["data"],
            json!({ "from": "alice", "text": "psst" }),
            "{name}"
        );
        // Only bob: another connection on node B gets nothing.
        let mut carol = b.connect("carol").await;
        alice
            .request(json!({ "type": "direct", "to": bob_id, "text": "again" }))
            .await;
        let again = bob.until(|f| f["event"] == "direct").await;
        assert_eq!(again["data"]["text"], "again", "{name}");
        carol.assert_alive("carol").await;
    })
    .await;
}

#[tokio::test]
async fn a_client_reconnecting_to_the_other_node_gets_exactly_what_it_missed() {
    on_each_layer(async |name, [a, b]| {
        let mut writer = a.connect("writer").await;
        let mut reader = a.connect("reader").await;
        reader.join("feed", None).await;
        let say = async |client: &mut Client, text: &str| {
            client
                .request(json!({ "type": "say", "room": "feed", "text": text }))
                .await["id"]
                .as_u64()
                .unwrap()
        };
        let seen = say(&mut writer, "seen").await;
        assert_eq!(reader.room_msg("feed").await["id"], seen, "{name}");
        reader.ws.close(None).await.unwrap();
        drop(reader);
        let mut missed = Vec::new();
        for text in ["one", "two", "three"] {
            missed.push((say(&mut writer, text).await, text));
        }
        // Back on the other node (no sticky sessions), from the last id seen.
        let mut reader = b.connect("reader").await;
        assert_eq!(
            reader.join("feed", Some(seen)).await["t"],
            "joined",
            "{name}"
        );
        for (id, text) in &missed {
            let msg = reader.room_msg("feed").await;
            assert_eq!(
                (&msg["id"], &msg["data"]["text"]),
                (&json!(id), &json!(text)),
                "{name}"
            );
        }
        // Exactly those: the next message is the next live one.
        let live = say(&mut writer, "live").await;
        let msg = reader.room_msg("feed").await;
        assert_eq!(
            (&msg["id"], &msg["data"]["text"]),
            (&json!(live), &json!("live")),
            "{name}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_killed_nodes_members_expire_and_the_other_node_keeps_serving() {
    on_each_layer(async |name, [mut a, b]| {
        let mut bob = b.connect("bob").await;
        bob.join("room", None).await;
        let mut alice = a.connect("alice").await;
        alice.join("room", None).await;
        let alice_id = joined_on_b(&mut bob, "alice").await;
        a.kill().await;
        // Node A never says alice left: her entry expires after the
        // presence TTL, and node B turns that into a leave diff.
        let left = bob
            .until(|f| f["t"] == "presence" && key_of(&f["leaves"], "alice").is_some())
            .await;
        assert_eq!(key_of(&left["leaves"], "alice"), Some(alice_id), "{name}");
        let who = bob.request(json!({ "type": "who", "room": "room" })).await;
        assert_eq!(key_of(&who, "alice"), None, "{name}: {who}");
        // Node B keeps serving: a new member joins and both get its message.
        let mut dave = b.connect("dave").await;
        dave.join("room", None).await;
        let id = dave
            .request(json!({ "type": "say", "room": "room", "text": "still here" }))
            .await["id"]
            .clone();
        assert_eq!(bob.room_msg("room").await["id"], id, "{name}");
        assert_eq!(dave.room_msg("room").await["id"], id, "{name}");
        // Alice's client finds its connection ended.
        let ended = tokio::time::timeout(GUARD, async {
            while let Some(Ok(_)) = futures_util::StreamExt::next(&mut alice.ws).await {}
        })
        .await;
        assert!(
            ended.is_ok(),
            "{name}: the dead node's client was not cut off"
        );
    })
    .await;
}
