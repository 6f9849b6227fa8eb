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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

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

/// A backend failed; the message names the backend and what it was doing.
#[derive(Debug, thiserror::Error)]
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

    /// The live messages of `room` from now on, from every node, in id order
    /// per publisher. Dropping the stream unsubscribes. A subscriber that
    /// falls too far behind loses messages rather than growing without limit
    /// (the stream then simply skips them; the ids show the gap). When the
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
#[derive(Debug, Default)]
pub struct InProcessLayer {
    rooms: Mutex<HashMap<String, Room>>,
}

/// How many messages a slow local subscriber may lag behind before it skips.
const SUBSCRIBER_BUFFER: usize = 1024;

#[derive(Debug)]
struct Room {
    sender: broadcast::Sender<Envelope>,
    last_id: MessageId,
    history: VecDeque<Envelope>,
    /// The id of the newest message that has left the history window.
    dropped_through: MessageId,
    presence: HashMap<String, (Bytes, Instant)>,
}

impl Room {
    fn new() -> Self {
        Self {
            sender: broadcast::channel(SUBSCRIBER_BUFFER).0,
            last_id: 0,
            history: VecDeque::new(),
            dropped_through: 0,
            presence: HashMap::new(),
        }
    }
}

impl InProcessLayer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn with_room<T>(&self, room: &str, f: impl FnOnce(&mut Room) -> T) -> T {
        // A poisoned lock only means another task panicked mid-update of plain
        // data; the maps are still usable.
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(rooms.entry(room.to_owned()).or_insert_with(Room::new))
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
        let id = self.with_room(room, |state| {
            state.last_id += 1;
            let envelope = Envelope {
                room: room.to_owned(),
                id: state.last_id,
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
                state.dropped_through = state.last_id;
            }
            // No receivers is not an error: nobody is in the room right now.
            let _ = state.sender.send(envelope);
            state.last_id
        });
        Box::pin(async move { Ok(id) })
    }

    fn subscribe<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Envelope>, LayerError>> {
        let receiver = self.with_room(room, |state| state.sender.subscribe());
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(envelope) => return Some((envelope, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Box::pin(async move { Ok(Box::pin(stream) as BoxStream<'static, Envelope>) })
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: MessageId,
    ) -> BoxFuture<'a, Result<History, LayerError>> {
        let history = self.with_room(room, |state| {
            if after < state.dropped_through {
                History::Gone
            } else {
                History::Messages(
                    state
                        .history
                        .iter()
                        .filter(|envelope| envelope.id > after)
                        .cloned()
                        .collect(),
                )
            }
        });
        Box::pin(async move { Ok(history) })
    }

    fn presence_set<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.with_room(room, |state| {
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
        self.with_room(room, |state| state.presence.remove(key));
        Box::pin(async { Ok(()) })
    }

    fn presence_list<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Bytes)>, LayerError>> {
        let now = Instant::now();
        let mut entries = self.with_room(room, |state| {
            state.presence.retain(|_, (_, expires)| *expires > now);
            state
                .presence
                .iter()
                .map(|(key, (value, _))| (key.clone(), value.clone()))
                .collect::<Vec<_>>()
        });
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Box::pin(async move { Ok(entries) })
    }
}
