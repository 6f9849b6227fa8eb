//! One conformance suite for every channel layer: in-process, Redis
//! (127.0.0.1:6379 or `KILN_TEST_REDIS_URL`) and NATS with JetStream
//! (127.0.0.1:4222 or `KILN_TEST_NATS_URL`). Each test runs against every
//! backend that answers; an absent server skips its backend with a
//! `SKIPPED:` line, or fails the test under `KILN_REQUIRE_BACKENDS=1`.
//!
//! Two layer instances on the same server stand for two nodes. Each test
//! uses a fresh key prefix and removes what it created on the server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kiln::realtime::{ChannelLayer, Envelope, History, InProcessLayer, connect};

const WAIT: Duration = Duration::from_secs(10);

#[path = "support/layers.rs"]
pub mod layers;

struct Backend {
    name: &'static str,
    nodes: [Arc<dyn ChannelLayer>; 2],
    /// The Redis or NATS server, cleaned up by [`Backend::finish`].
    server: Option<layers::Server>,
}

async fn backends() -> Vec<Backend> {
    let memory: Arc<dyn ChannelLayer> = InProcessLayer::new();
    let mut all = vec![Backend {
        name: "memory",
        nodes: [Arc::clone(&memory), memory],
        server: None,
    }];
    for server in layers::servers().await {
        let url = server.url();
        all.push(Backend {
            name: server.name,
            nodes: [node(&url).await, node(&url).await],
            server: Some(server),
        });
    }
    all
}

async fn node(url: &str) -> Arc<dyn ChannelLayer> {
    connect(url)
        .await
        .unwrap_or_else(|error| panic!("{url}: {error}"))
}

impl Backend {
    /// Removes the keys, streams and bucket this backend's test created.
    async fn finish(self) {
        if let Some(server) = self.server {
            server.finish().await;
        }
    }
}

async fn next(name: &str, stream: &mut BoxStream<'static, Envelope>) -> Envelope {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("{name}: no message within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{name}: the subscription ended"))
}

fn payload(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn ids(history: &History) -> Option<Vec<u64>> {
    match history {
        History::Messages(messages) => Some(messages.iter().map(|message| message.id).collect()),
        History::Gone => None,
    }
}

#[tokio::test]
async fn published_messages_reach_subscribers_with_increasing_ids() {
    for backend in backends().await {
        let name = backend.name;
        let layer = &backend.nodes[0];
        let mut first = layer.subscribe("lobby").await.expect("subscribe");
        let mut second = layer.subscribe("lobby").await.expect("subscribe");
        let mut other_room = layer.subscribe("other").await.expect("subscribe");
        let mut ids = Vec::new();
        for text in ["one", "two", "three"] {
            ids.push(
                layer
                    .publish("lobby", payload(text), 10)
                    .await
                    .expect("publish"),
            );
        }
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "{name}: {ids:?}"
        );
        assert!(ids[0] > 0, "{name}: id 0 is never used");
        for subscriber in [&mut first, &mut second] {
            for (id, text) in ids.iter().zip(["one", "two", "three"]) {
                let message = next(name, subscriber).await;
                assert_eq!(
                    (message.id, &message.payload[..]),
                    (*id, text.as_bytes()),
                    "{name}"
                );
                assert_eq!(message.room, "lobby", "{name}");
            }
        }
        let id = layer
            .publish("other", payload("x"), 10)
            .await
            .expect("publish");
        assert_eq!(
            next(name, &mut other_room).await.id,
            id,
            "{name}: only its own room"
        );
        backend.finish().await;
    }
}

#[tokio::test]
async fn room_names_with_dots_wildcards_and_spaces_stay_apart() {
    for backend in backends().await {
        let name = backend.name;
        let layer = &backend.nodes[0];
        let rooms = ["a.b", "a.*", "a.>", "a b", "a_2Eb", "", "é/ü"];
        let mut subscriptions = Vec::new();
        for room in rooms {
            subscriptions.push(layer.subscribe(room).await.expect("subscribe"));
        }
        for room in rooms {
            layer
                .publish(room, payload(room), 10)
                .await
                .expect("publish");
        }
        for (room, subscription) in rooms.iter().zip(&mut subscriptions) {
            let message = next(name, subscription).await;
            assert_eq!(
                &message.payload[..],
                room.as_bytes(),
                "{name}: room {room:?}"
            );
            assert_eq!(message.room, *room, "{name}");
            let history = layer.history_after(room, 0).await.expect("history");
            assert_eq!(
                ids(&history).map(|ids| ids.len()),
                Some(1),
                "{name}: {room:?}"
            );
        }
        backend.finish().await;
    }
}

#[tokio::test]
async fn history_keeps_a_window_and_says_gone_beyond_it() {
    for backend in backends().await {
        let name = backend.name;
        let layer = &backend.nodes[0];
        assert_eq!(
            ids(&layer.history_after("empty", 0).await.expect("history")),
            Some(vec![]),
            "{name}: a room without messages"
        );
        let mut sent = Vec::new();
        for n in 0..5 {
            sent.push(
                layer
                    .publish("window", payload(&n.to_string()), 3)
                    .await
                    .expect("publish"),
            );
        }
        let kept = &sent[2..];
        let history = layer
            .history_after("window", sent[1])
            .await
            .expect("history");
        assert_eq!(ids(&history), Some(kept.to_vec()), "{name}");
        if let History::Messages(messages) = &history {
            assert_eq!(&messages[0].payload[..], b"2", "{name}");
        }
        assert_eq!(
            ids(&layer
                .history_after("window", sent[3])
                .await
                .expect("history")),
            Some(vec![sent[4]]),
            "{name}"
        );
        assert_eq!(
            ids(&layer
                .history_after("window", sent[4])
                .await
                .expect("history")),
            Some(vec![]),
            "{name}: after the newest id"
        );
        for after in [0, sent[0]] {
            assert_eq!(
                layer.history_after("window", after).await.expect("history"),
                History::Gone,
                "{name}: after {after}"
            );
        }
        // keep = 0 keeps nothing, but still assigns a fresh id.
        let unkept = layer
            .publish("window", payload("gone"), 0)
            .await
            .expect("publish");
        assert!(unkept > sent[4], "{name}");
        assert_eq!(
            layer
                .history_after("window", sent[4])
                .await
                .expect("history"),
            History::Gone,
            "{name}: keep = 0"
        );
        assert_eq!(
            ids(&layer
                .history_after("window", unkept)
                .await
                .expect("history")),
            Some(vec![]),
            "{name}"
        );
        backend.finish().await;
    }
}

/// Redis flushed or restarted without persistence, NATS restarted (its room
/// streams are in memory), or for the in-process layer a restarted process:
/// a client that saw the old ids must not take the new ones for messages it
/// already has, nor an empty history for nothing missed.
#[tokio::test]
async fn a_room_whose_state_was_lost_gives_higher_ids_and_sends_old_ids_to_resync() {
    for mut backend in backends().await {
        let name = backend.name;
        let mut old = Vec::new();
        for text in ["one", "two", "three"] {
            old.push(
                backend.nodes[0]
                    .publish("lost", payload(text), 10)
                    .await
                    .expect("publish"),
            );
        }
        let last_seen = old[2];
        // Ids follow a millisecond clock: a real restart takes longer.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match &backend.server {
            Some(server) => server.wipe().await,
            None => {
                let restarted: Arc<dyn ChannelLayer> = InProcessLayer::new();
                backend.nodes = [Arc::clone(&restarted), restarted];
            }
        }
        let [layer, other] = &backend.nodes;
        let history = |layer: &Arc<dyn ChannelLayer>, after| {
            let layer = Arc::clone(layer);
            async move { layer.history_after("lost", after).await.expect("history") }
        };
        assert_eq!(
            history(layer, last_seen).await,
            History::Gone,
            "{name}: nothing published since"
        );
        let new = layer
            .publish("lost", payload("four"), 10)
            .await
            .expect("publish after the loss");
        assert!(new > last_seen, "{name}: {new} after {old:?}");
        for node in [layer, other] {
            assert_eq!(
                history(node, last_seen).await,
                History::Gone,
                "{name}: an id from before"
            );
            assert_eq!(ids(&history(node, 0).await), Some(vec![new]), "{name}");
            assert_eq!(
                history(node, new + 1).await,
                History::Gone,
                "{name}: an id it never gave"
            );
        }
        backend.finish().await;
    }
}

#[tokio::test]
async fn presence_is_set_listed_removed_and_expires() {
    for backend in backends().await {
        let name = backend.name;
        let layer = &backend.nodes[0];
        let long = Duration::from_secs(60);
        layer
            .presence_set("room", "n1/2", payload("bob"), long)
            .await
            .expect("set");
        layer
            .presence_set("room", "n1/1", payload("alice"), long)
            .await
            .expect("set");
        layer
            .presence_set("elsewhere", "n1/3", payload("carol"), long)
            .await
            .expect("set");
        layer
            .presence_set("room", "n1/2", payload("bob2"), long)
            .await
            .expect("set again");
        assert_eq!(
            layer.presence_list("room").await.expect("list"),
            vec![
                ("n1/1".to_owned(), payload("alice")),
                ("n1/2".to_owned(), payload("bob2"))
            ],
            "{name}: sorted by key, latest value, own room only"
        );
        layer.presence_remove("room", "n1/1").await.expect("remove");
        layer
            .presence_remove("room", "never-set")
            .await
            .expect("remove an absent key");
        layer
            .presence_set("room", "n2/9", payload("dying"), Duration::from_millis(200))
            .await
            .expect("set");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            layer.presence_list("room").await.expect("list"),
            vec![("n1/2".to_owned(), payload("bob2"))],
            "{name}: removed and expired entries are gone"
        );
        backend.finish().await;
    }
}

#[tokio::test]
async fn two_nodes_see_each_others_messages_history_and_presence() {
    for backend in backends().await {
        let name = backend.name;
        let [a, b] = &backend.nodes;
        let mut on_a = a.subscribe("shared").await.expect("subscribe");
        let mut on_b = b.subscribe("shared").await.expect("subscribe");
        let from_a = a
            .publish("shared", payload("from a"), 10)
            .await
            .expect("publish");
        let from_b = b
            .publish("shared", payload("from b"), 10)
            .await
            .expect("publish");
        assert!(
            from_a < from_b,
            "{name}: one id sequence per room across nodes"
        );
        for subscriber in [&mut on_a, &mut on_b] {
            assert_eq!(next(name, subscriber).await.id, from_a, "{name}");
            assert_eq!(next(name, subscriber).await.id, from_b, "{name}");
        }
        assert_eq!(
            ids(&b.history_after("shared", 0).await.expect("history")),
            Some(vec![from_a, from_b]),
            "{name}"
        );
        a.presence_set("shared", "a/1", payload("alice"), Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(
            b.presence_list("shared").await.expect("list"),
            vec![("a/1".to_owned(), payload("alice"))],
            "{name}"
        );
        b.presence_remove("shared", "a/1").await.expect("remove");
        assert_eq!(
            a.presence_list("shared").await.expect("list"),
            vec![],
            "{name}"
        );
        backend.finish().await;
    }
}

#[tokio::test]
async fn a_slow_subscriber_neither_blocks_others_nor_buffers_without_limit() {
    const MESSAGES: u64 = 2000;
    // Every layer lets a subscriber lag by about a thousand messages.
    const BOUND: u64 = 1100;
    for backend in backends().await {
        let name = backend.name;
        let layer = Arc::clone(&backend.nodes[0]);
        let mut stalled = layer.subscribe("flood").await.expect("subscribe");
        let mut reader = layer.subscribe("flood").await.expect("subscribe");
        let reading = tokio::spawn(async move {
            let mut count = 0;
            while let Ok(Some(message)) = tokio::time::timeout(WAIT, reader.next()).await {
                count += 1;
                if &message.payload[..] == b"last" {
                    break;
                }
            }
            count
        });
        for n in 0..MESSAGES {
            let text = if n + 1 == MESSAGES { "last" } else { "m" };
            layer
                .publish("flood", payload(text), 5)
                .await
                .expect("publish");
            // The in-process layer never waits; on one test thread the
            // reader would otherwise only run after the whole flood.
            tokio::task::yield_now().await;
        }
        assert_eq!(
            reading.await.expect("reader"),
            MESSAGES,
            "{name}: the reader lost nothing"
        );
        // The stalled subscriber still works, having skipped what it could
        // not hold.
        let marker = layer
            .publish("flood", payload("marker"), 5)
            .await
            .expect("publish");
        let mut held = 0;
        loop {
            let message = next(name, &mut stalled).await;
            held += 1;
            if message.id == marker {
                break;
            }
        }
        assert!(
            held <= BOUND,
            "{name}: the stalled subscriber held {held} messages"
        );
        backend.finish().await;
    }
}

#[tokio::test]
async fn unreachable_servers_and_bad_urls_are_clear_errors() {
    for url in ["redis://127.0.0.1:9", "nats://127.0.0.1:9"] {
        let error = connect(url).await.err().map(|error| error.to_string());
        let error = error.unwrap_or_else(|| panic!("{url} connected"));
        assert!(error.contains(url), "{error}");
    }
    let error = connect("redis://:secret@127.0.0.1:9")
        .await
        .err()
        .map(|e| e.to_string());
    let error = error.unwrap_or_default();
    assert!(!error.contains("secret"), "the password is masked: {error}");
    let error = connect("zmq://127.0.0.1")
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        error
            .unwrap_or_default()
            .contains("unknown channel layer URL")
    );
    let error = connect("nats://127.0.0.1:4222?prefix=bad.prefix")
        .await
        .err()
        .map(|e| e.to_string());
    assert!(error.unwrap_or_default().contains("prefix"));
}

/// Set in the environment of the child process that
/// [`a_killed_nodes_presence_expires_and_its_messages_stay_in_history`]
/// starts: the layer URL it connects to.
const CHILD_URL: &str = "KILN_TEST_LAYER_CHILD_URL";

/// Not a test on its own: the second node of the cross-process test, run as
/// a child process of this test binary. Without its variable it returns.
#[tokio::test]
async fn child_node_of_the_cross_process_test() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let layer = node(&url).await;
    let ttl = Duration::from_millis(1500);
    layer
        .presence_set("nodes", "child/1", payload("child"), ttl)
        .await
        .expect("set");
    let id = layer
        .publish("nodes", payload("from the child"), 10)
        .await
        .expect("publish");
    println!("READY {id}");
    // A live node refreshes its presence well within the time to live,
    // until it is killed.
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        layer
            .presence_set("nodes", "child/1", payload("child"), ttl)
            .await
            .expect("refresh");
    }
}

#[tokio::test]
async fn a_killed_nodes_presence_expires_and_its_messages_stay_in_history() {
    use tokio::io::AsyncBufReadExt;

    for backend in backends().await {
        let name = backend.name;
        let Some(url) = backend.server.as_ref().map(layers::Server::url) else {
            continue; // one process is the whole in-process layer
        };
        let layer = &backend.nodes[0];
        let mut live = layer.subscribe("nodes").await.expect("subscribe");
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("this test"))
            .args([
                "child_node_of_the_cross_process_test",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_URL, &url)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the child node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let id: u64 = loop {
            let line = tokio::time::timeout(WAIT, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{name}: the child node did not get ready"))
                .expect("the child's output")
                .unwrap_or_else(|| panic!("{name}: the child node exited early"));
            if let Some(id) = line.strip_prefix("READY ") {
                break id.parse().expect("an id");
            }
        };
        let message = next(name, &mut live).await;
        assert_eq!(
            (message.id, &message.payload[..]),
            (id, &b"from the child"[..]),
            "{name}"
        );
        assert_eq!(
            layer.presence_list("nodes").await.expect("list"),
            vec![("child/1".to_owned(), payload("child"))],
            "{name}: the child's presence is seen here"
        );
        child.kill().await.expect("kill the child node");
        // Past the time to live and the child's last refresh.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            layer.presence_list("nodes").await.expect("list"),
            vec![],
            "{name}: a dead node's presence expires"
        );
        assert_eq!(
            ids(&layer.history_after("nodes", 0).await.expect("history")),
            Some(vec![id]),
            "{name}: its message outlives it"
        );
        backend.finish().await;
    }
}

#[tokio::test]
async fn projects_with_different_prefixes_share_a_server_without_mixing() {
    for backend in backends().await {
        let name = backend.name;
        let Some(other) = backend.server.as_ref().map(layers::Server::other_project) else {
            continue; // nothing is shared in-process
        };
        let other_url = other.url();
        let ours = &backend.nodes[0];
        let theirs = node(&other_url).await;
        let mut their_live = theirs.subscribe("lobby").await.expect("subscribe");
        ours.publish("lobby", payload("ours"), 10)
            .await
            .expect("publish");
        ours.presence_set("lobby", "n/1", payload("ours"), Duration::from_secs(60))
            .await
            .expect("set");
        let id = theirs
            .publish("lobby", payload("theirs"), 10)
            .await
            .expect("publish");
        // A room's ids start from the clock, at a multiple of 1,000: their
        // room's first message is number 1 of its own count, not our room's
        // second.
        assert_eq!(id % 1_000, 1, "{name}: their room has its own ids ({id})");
        let message = next(name, &mut their_live).await;
        assert_eq!(&message.payload[..], b"theirs", "{name}: not our message");
        assert_eq!(
            ids(&theirs.history_after("lobby", 0).await.expect("history")),
            Some(vec![id]),
            "{name}"
        );
        assert_eq!(
            theirs.presence_list("lobby").await.expect("list"),
            vec![],
            "{name}"
        );
        backend.finish().await;
        other.finish().await;
    }
}
