//! The channel layer: how a room message reaches every node of a project.
//!
//! A node keeps one [`ChannelLayer::subscribe`] stream per room that has a
//! local member and fans each [`Envelope`] out to its own connections; the
//! layer only moves opaque payloads between nodes, keeps each room's bounded
//! history (for reconnection and `Last-Event-ID`), and stores presence
//! entries that expire when their node stops refreshing them. Everything a
//! backend needs is here, so Redis and NATS are one file each.
//!
//! Delivery is at-most-once: a node that is not subscribed when a message is
//! published does not receive it live, but can read it back from the room's
//! history by id, which is how a reconnecting client recovers what it missed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

use super::lock;

/// A room message's position in its room: strictly increasing per room,
/// assigned by the layer at publish time (gaps are allowed; `0` is never used,
/// so "after 0" means "from the oldest message kept").
pub type MessageId = u64;

/// A message as the layer carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub room: String,
    pub id: MessageId,
    /// Encoded by the realtime core; the layer never looks inside.
    pub payload: Bytes,
}

/// What [`ChannelLayer::history_after`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    /// Every message kept after the given id, oldest first (possibly none).
    Messages(Vec<Envelope>),
    /// Messages after the given id have already left the window: the client
    /// must resync from its source of truth.
    Gone,
}

/// What a layer knows of a room's ids, which decides whether the history
/// after a client's last id can be given ([`History::Gone`] otherwise). Every
/// layer answers by the same rule.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KnownIds {
    /// Ids up to this one have left the window (0: none has).
    pub(crate) dropped_through: MessageId,
    /// Ids up to this one came before the room's state: from before a
    /// restart, or before the Redis or NATS server lost the room.
    pub(crate) born_after: MessageId,
    /// The newest id the room gave.
    pub(crate) newest: MessageId,
}

impl KnownIds {
    /// Whether what followed `after` is unknown: trimmed away, from before
    /// the room's state (0, "from the oldest kept", is not), or an id the
    /// room never gave (the clock went back, or another layer's id).
    pub(crate) fn lost_after(&self, after: MessageId) -> bool {
        after < self.dropped_through
            || (after > 0 && after < self.born_after)
            || after > self.newest
    }
}

/// A backend failed; the message names the backend and what it was doing.
#[derive(Clone, Debug, thiserror::Error)]
#[error("channel layer {backend}: {message}")]
pub struct LayerError {
    pub backend: &'static str,
    pub message: String,
}

impl LayerError {
    pub fn new(backend: &'static str, message: impl fmt::Display) -> Self {
        Self {
            backend,
            message: message.to_string(),
        }
    }

    /// The one shape of a failed operation, whichever backend: "cannot
    /// `action` at `at` (a masked URL, or the node): `error`".
    pub fn failed(
        backend: &'static str,
        at: &str,
        action: impl fmt::Display,
        error: impl fmt::Display,
    ) -> Self {
        Self::new(backend, format!("cannot {action} at {at}: {error}"))
    }

    /// Adds what the reader can do about it.
    #[must_use]
    pub fn hint(mut self, hint: &str) -> Self {
        self.message = format!("{}; {hint}", self.message);
        self
    }
}

/// The contract a cross-node backend implements. All methods are cheap to
/// call concurrently from many tasks.
pub trait ChannelLayer: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and errors: `"memory"`, `"redis"`, `"nats"`.
    fn name(&self) -> &'static str;

    /// Appends `payload` to `room`'s history, keeping the `keep` most recent
    /// messages (`0` keeps none, and then the id is still assigned), and
    /// delivers it to every subscriber of `room` on every node, this one
    /// included. Returns the message's id.
    fn publish<'a>(
        &'a self,
        room: &'a str,
        payload: Bytes,
        keep: usize,
    ) -> BoxFuture<'a, Result<MessageId, LayerError>>;

    /// Publishes `payloads` to `room` in this order, as [`publish`] would one
    /// after the other, and returns each one's outcome in the same order.
    /// Backends override it to publish the whole batch in one round trip
    /// (Redis: one script call; NATS: the JetStream publishes in flight
    /// together); this default publishes one at a time. Kiln's rooms publish
    /// through it, so that one sender's messages are not limited to one
    /// round trip each.
    ///
    /// [`publish`]: Self::publish
    fn publish_batch<'a>(
        &'a self,
        room: &'a str,
        payloads: Vec<Bytes>,
        keep: usize,
    ) -> BoxFuture<'a, Vec<Result<MessageId, LayerError>>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(payloads.len());
            for payload in payloads {
                outcomes.push(self.publish(room, payload, keep).await);
            }
            outcomes
        })
    }

    /// The live messages of `room` from now on, from every node, in id order
    /// per publisher. Dropping the stream unsubscribes. A subscriber that
    /// falls too far behind loses messages rather than growing without limit
    /// (the stream skips them, the ids show the gap, and the layer logs a
    /// warning with the room and how many were skipped). When the
    /// returned future resolves the subscription is in place on the
    /// backend, so anything published afterwards, from any node, arrives:
    /// subscribing and then reading [`ChannelLayer::history_after`] misses
    /// nothing.
    fn subscribe<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Envelope>, LayerError>>;

    /// The kept messages of `room` published after `after`, oldest first, or
    /// [`History::Gone`] when some of them were already dropped from the
    /// window. `after` equal to the newest id gives an empty list.
    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: MessageId,
    ) -> BoxFuture<'a, Result<History, LayerError>>;

    /// Sets presence entry `key` of `room` (the realtime core uses
    /// `"<node>/<connection>"`) to `value`, expiring `ttl` from now unless set
    /// again. Nodes refresh their entries well within `ttl`, so a node that
    /// dies has its members expire.
    fn presence_set<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Removes presence entry `key` of `room` at once (a clean disconnect).
    fn presence_remove<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// The unexpired presence entries of `room`, sorted by key.
    fn presence_list<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Bytes)>, LayerError>>;
}

/// The embedded default: one process is the whole project, so the layer is a
/// broadcast channel and a ring buffer per room.
///
/// A room's state exists only while something needs it: a subscriber, a
/// kept message or an unexpired presence entry. Reads (history, presence
/// lists) never create it, and it is dropped when its last subscriber goes,
/// its presence empties or a publish finds nobody to keep it for. Ids come
/// from one counter for the whole layer, so a room that is dropped and comes
/// back still never reuses an id; a client asking for what followed an id
/// older than the room's state is told [`History::Gone`] (messages may have
/// been published meanwhile that nobody kept, so it must resync).
///
/// The history ends with the process, but ids keep growing across restarts:
/// the counter starts from the clock ([`first_id`]), so that a client of the
/// previous process, which rejoins with one of its ids, is told
/// [`History::Gone`] and then gets ids above the ones it saw. Ids from a
/// counter restarted at 1 would have looked like messages it had already
/// seen (kiln.js skips those), and the history after them like nothing
/// missed. An id above any this layer gave is [`History::Gone`] too (the
/// clock went back, or the id came from another layer).
#[derive(Debug, Default)]
pub struct InProcessLayer {
    rooms: Arc<Mutex<Rooms>>,
}

#[derive(Debug)]
struct Rooms {
    by_name: HashMap<String, Room>,
    /// The newest id given to any room's message.
    last_id: MessageId,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            by_name: HashMap::new(),
            last_id: first_id(std::time::SystemTime::now()),
        }
    }
}

/// Where a new in-process layer's ids start: the milliseconds since 1970
/// times 1,000, so that a restarted process continues above its previous
/// incarnation's ids (unless that published over 1,000 messages a
/// millisecond on average). The ids stay below 2^53, JavaScript's largest
/// exact integer, until the year 2255.
pub(super) fn first_id(now: std::time::SystemTime) -> MessageId {
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    MessageId::try_from(millis)
        .unwrap_or(0)
        .saturating_mul(1_000)
}

/// How many messages a slow local subscriber may lag behind before it skips.
const SUBSCRIBER_BUFFER: usize = 1024;

#[derive(Debug)]
struct Room {
    sender: broadcast::Sender<Envelope>,
    history: VecDeque<Envelope>,
    /// The id of the newest message that has left the history window.
    dropped_through: MessageId,
    /// The layer's newest id when this state was created: the room may have
    /// had messages before, which nobody kept.
    born_after: MessageId,
    presence: HashMap<String, (Bytes, Instant)>,
}

impl Room {
    fn new(born_after: MessageId) -> Self {
        Self {
            sender: broadcast::channel(SUBSCRIBER_BUFFER).0,
            history: VecDeque::new(),
            dropped_through: 0,
            born_after,
            presence: HashMap::new(),
        }
    }

    /// Nothing would be lost by dropping the room's state. Presence entries
    /// that expired are pruned first.
    fn is_idle(&mut self, now: Instant) -> bool {
        self.presence.retain(|_, (_, expires)| *expires > now);
        self.sender.receiver_count() == 0 && self.history.is_empty() && self.presence.is_empty()
    }
}

/// The next message of a subscription fed by a broadcast channel. A
/// receiver that fell more than the channel's capacity behind skips what it
/// missed, and that drop is logged with the room and the count, never
/// silent.
pub(crate) async fn next_live(
    receiver: &mut broadcast::Receiver<Envelope>,
    backend: &'static str,
    room: &str,
) -> Option<Envelope> {
    loop {
        match receiver.recv().await {
            Ok(envelope) => return Some(envelope),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    target: "kiln::realtime",
                    backend,
                    room,
                    dropped = missed,
                    "a room subscription fell {missed} messages behind and skipped them; \
                     this node's members of the room miss them (they can recover them \
                     from the history by id)"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

impl Rooms {
    /// Runs `f` on `room`'s state, creating it, and drops the state again if
    /// `f` left it idle.
    fn with_room<T>(&mut self, room: &str, f: impl FnOnce(&mut Room, &mut MessageId) -> T) -> T {
        let last_id = self.last_id;
        let state = self
            .by_name
            .entry(room.to_owned())
            .or_insert_with(|| Room::new(last_id));
        let result = f(state, &mut self.last_id);
        self.drop_if_idle(room);
        result
    }

    fn drop_if_idle(&mut self, room: &str) {
        if self
            .by_name
            .get_mut(room)
            .is_some_and(|state| state.is_idle(Instant::now()))
        {
            self.by_name.remove(room);
        }
    }
}

/// A live subscription; dropping it may drop its room's state.
struct Subscription {
    receiver: Option<broadcast::Receiver<Envelope>>,
    rooms: Weak<Mutex<Rooms>>,
    room: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The receiver goes first, so that the room counts one fewer.
        drop(self.receiver.take());
        if let Some(rooms) = self.rooms.upgrade() {
            lock(&rooms).drop_if_idle(&self.room);
        }
    }
}

impl InProcessLayer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A layer whose ids start as one created at `now` would.
    #[cfg(test)]
    fn created_at(now: std::time::SystemTime) -> Arc<Self> {
        let layer = Self::default();
        lock(&layer.rooms).last_id = first_id(now);
        Arc::new(layer)
    }

    /// How many rooms hold state (a subscriber, kept messages or presence):
    /// what the layer costs in memory, for metrics and tests.
    pub fn room_count(&self) -> usize {
        lock(&self.rooms).by_name.len()
    }
}

impl ChannelLayer for InProcessLayer {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn publish<'a>(
        &'a self,
        room: &'a str,
        payload: Bytes,
        keep: usize,
    ) -> BoxFuture<'a, Result<MessageId, LayerError>> {
        let id = lock(&self.rooms).with_room(room, |state, last_id| {
            *last_id += 1;
            let envelope = Envelope {
                room: room.to_owned(),
                id: *last_id,
                payload,
            };
            if keep > 0 {
                state.history.push_back(envelope.clone());
            }
            while state.history.len() > keep {
                if let Some(old) = state.history.pop_front() {
                    state.dropped_through = old.id;
                }
            }
            if keep == 0 {
                state.dropped_through = *last_id;
            }
            // No receivers is not an error: nobody is in the room right now.
            let _ = state.sender.send(envelope);
            *last_id
        });
        Box::pin(async move { Ok(id) })
    }

    fn subscribe<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Envelope>, LayerError>> {
        let receiver = lock(&self.rooms).with_room(room, |state, _| state.sender.subscribe());
        let subscription = Subscription {
            receiver: Some(receiver),
            rooms: Arc::downgrade(&self.rooms),
            room: room.to_owned(),
        };
        let stream = futures_util::stream::unfold(subscription, |mut subscription| async move {
            let receiver = subscription.receiver.as_mut()?;
            let envelope = next_live(receiver, "memory", &subscription.room).await?;
            Some((envelope, subscription))
        });
        Box::pin(async move { Ok(Box::pin(stream) as BoxStream<'static, Envelope>) })
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: MessageId,
    ) -> BoxFuture<'a, Result<History, LayerError>> {
        let rooms = lock(&self.rooms);
        let state = rooms.by_name.get(room);
        // A room without state keeps nothing, and may have had messages
        // until now; a fresh state may have had some before it.
        let known = KnownIds {
            dropped_through: state.map_or(0, |state| state.dropped_through),
            born_after: state.map_or(rooms.last_id, |state| state.born_after),
            newest: rooms.last_id,
        };
        let history = if known.lost_after(after) {
            History::Gone
        } else {
            History::Messages(state.map_or_else(Vec::new, |state| {
                state
                    .history
                    .iter()
                    .filter(|envelope| envelope.id > after)
                    .cloned()
                    .collect()
            }))
        };
        drop(rooms);
        Box::pin(async move { Ok(history) })
    }

    fn presence_set<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        lock(&self.rooms).with_room(room, |state, _| {
            state
                .presence
                .insert(key.to_owned(), (value, Instant::now() + ttl));
        });
        Box::pin(async { Ok(()) })
    }

    fn presence_remove<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        let mut rooms = lock(&self.rooms);
        if let Some(state) = rooms.by_name.get_mut(room) {
            state.presence.remove(key);
            rooms.drop_if_idle(room);
        }
        Box::pin(async { Ok(()) })
    }

    fn presence_list<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Bytes)>, LayerError>> {
        let now = Instant::now();
        let mut rooms = lock(&self.rooms);
        let mut entries = rooms.by_name.get(room).map_or_else(Vec::new, |state| {
            state
                .presence
                .iter()
                .filter(|(_, (_, expires))| *expires > now)
                .map(|(key, (value, _))| (key.clone(), value.clone()))
                .collect::<Vec<_>>()
        });
        rooms.drop_if_idle(room);
        drop(rooms);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Box::pin(async move { Ok(entries) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_fails_in_one_shape() {
        let error = LayerError::failed("redis", "redis://h:1", "publish to room \"a\"", "refused")
            .hint("check it");
        assert_eq!(
            error.to_string(),
            "channel layer redis: cannot publish to room \"a\" at redis://h:1: refused; check it"
        );
    }

    #[tokio::test]
    async fn rooms_hold_state_only_while_something_needs_it() {
        let layer = InProcessLayer::new();
        // Reads do not create rooms.
        assert_eq!(
            layer.history_after("a", 0).await.ok(),
            Some(History::Messages(Vec::new()))
        );
        assert_eq!(layer.presence_list("a").await.ok(), Some(Vec::new()));
        layer.presence_remove("a", "n/1").await.ok();
        assert_eq!(layer.room_count(), 0, "reads created a room");
        // A subscriber keeps its room; messages nobody keeps do not.
        let subscriber = layer.subscribe("a").await.ok();
        let first = layer.publish("a", Bytes::new(), 0).await.ok();
        assert_eq!(layer.room_count(), 1);
        drop(subscriber);
        assert_eq!(layer.room_count(), 0, "the last subscriber left");
        // Ids keep increasing after the room's state was dropped, and what
        // followed the old id is reported lost.
        let second = layer.publish("a", Bytes::new(), 0).await.ok();
        assert!(second > first, "{second:?} after {first:?}");
        assert_eq!(layer.room_count(), 0, "a message kept for nobody");
        assert_eq!(
            layer.history_after("a", first.unwrap_or(0)).await.ok(),
            Some(History::Gone)
        );
        // Presence keeps a room until it is removed.
        let ttl = Duration::from_secs(60);
        layer.presence_set("b", "n/1", Bytes::new(), ttl).await.ok();
        assert_eq!(layer.room_count(), 1);
        layer.presence_remove("b", "n/1").await.ok();
        assert_eq!(layer.room_count(), 0, "the last presence entry left");
        // Kept messages keep their room: they are its history.
        layer.publish("c", Bytes::new(), 5).await.ok();
        assert_eq!(layer.room_count(), 1);
    }

    #[tokio::test]
    async fn a_restarted_layer_reports_the_old_history_gone_and_gives_higher_ids() {
        let started = std::time::SystemTime::now();
        let before = InProcessLayer::created_at(started);
        let _subscriber = before.subscribe("a").await.ok();
        let mut old_ids = Vec::new();
        for _ in 0..3 {
            old_ids.extend(before.publish("a", Bytes::new(), 10).await.ok());
        }
        drop(before);
        // The next process: an empty layer, a millisecond later.
        let after = InProcessLayer::created_at(started + Duration::from_millis(1));
        let _subscriber = after.subscribe("a").await.ok();
        let last_seen = old_ids.last().copied().unwrap_or(0);
        assert_eq!(
            after.history_after("a", last_seen).await.ok(),
            Some(History::Gone),
            "a client of the old process must resync"
        );
        let next = after.publish("a", Bytes::new(), 10).await.ok();
        assert!(next > Some(last_seen), "{next:?} after {last_seen}");
        // An id above any the layer gave is as unknown.
        let ahead = next.unwrap_or(0) + 1_000;
        assert_eq!(
            after.history_after("a", ahead).await.ok(),
            Some(History::Gone)
        );
    }

    #[test]
    fn first_ids_follow_the_clock_and_stay_exact_in_javascript() {
        let at = |secs| first_id(std::time::UNIX_EPOCH + Duration::from_secs(secs));
        assert!(at(1_800_000_000) > at(1_799_999_999));
        // 2255-01-01: still below 2^53.
        assert!(at(8_994_000_000) < 1 << 53);
    }
}
