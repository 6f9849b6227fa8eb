//! Rooms on one node: the local members of each room, the one layer
//! subscription per room that fans messages out to them, and [`Channels`],
//! the handle the rest of the app sends through.
//!
//! A room exists on a node while it has a local member. Its task reads the
//! room's layer stream and pushes each message into every member's bounded
//! send queue without waiting: a member whose queue is full is closed
//! ([`close::SLOW_CONSUMER`], logged with the room) rather than slowing the
//! room or growing memory. The task never waits on the channel layer: the
//! room's presence (see [`super::presence`]) is refreshed by a task of its
//! own, so that a slow presence round trip cannot leave the room's stream
//! unread until its buffer overflows.
//!
//! Messages a node sends to a room wait in the room's **outbox** on that
//! node, in order, and one publisher task per room hands everything waiting
//! to the layer in one batch ([`ChannelLayer::publish_batch`]): one round
//! trip to Redis or NATS for many messages, so that one sender is not
//! limited to a message per round trip. The outbox is bounded
//! ([`OUTBOX_LIMIT`]); senders wait while it is full, so nothing is dropped
//! on the way out.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use super::layer::{ChannelLayer, Envelope, LayerError, MessageId};
use super::lock;
use super::presence::{Diff, Nudge, Presence, PresenceEntry, Snapshot};
use super::protocol::{Published, ServerFrame, close};
use super::queue::{PushError, SendQueue};
use crate::settings::Settings;

/// The limits of connections, read from the `realtime_*` settings.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) send_queue: usize,
    pub(crate) max_message_size: usize,
    pub(crate) read_buffer: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) rate_limit: u32,
    pub(crate) rate_burst: u32,
    pub(crate) history: usize,
    pub(crate) presence_ttl: Duration,
}

impl Limits {
    fn from_settings(settings: &Settings) -> Self {
        Self {
            send_queue: settings.realtime_send_queue.max(1),
            max_message_size: usize::try_from(settings.realtime_max_message_size.0)
                .unwrap_or(usize::MAX),
            read_buffer: settings.realtime_read_buffer.as_usize(),
            ping_interval: settings.realtime_ping_interval.0,
            idle_timeout: settings.realtime_idle_timeout.0,
            rate_limit: settings.realtime_rate_limit,
            rate_burst: settings.realtime_rate_burst.max(1),
            history: settings.realtime_history,
            presence_ttl: settings.realtime_presence_ttl.0,
        }
    }
}

/// How many messages of one room may wait on a node for the channel layer;
/// a sender that finds the outbox full waits for room (so a burst is slowed
/// down to what the layer takes, never dropped).
const OUTBOX_LIMIT: usize = 4096;

/// The most messages the publisher hands the layer in one call (one round
/// trip); a bigger backlog goes out in several.
const BATCH_LIMIT: usize = 256;

/// A message waiting in a room's outbox.
struct Outgoing {
    payload: Bytes,
    /// The caller waiting for the message's id, if one waits.
    reply: Option<oneshot::Sender<Result<MessageId, LayerError>>>,
}

/// What a connection's writer is asked to do, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this frame.
    Frame(Message),
    /// A room message: skipped if recovery already sent it, held while the
    /// room is being recovered.
    Room {
        room: Arc<str>,
        id: MessageId,
        frame: Message,
    },
    /// Recovery of `room` begins: hold its live messages until `Recovered`.
    Hold(Arc<str>),
    /// The missed messages of `room` (or a resync frame), then the held ones.
    Recovered {
        room: Arc<str>,
        frames: Vec<(MessageId, Message)>,
    },
}

/// Why a connection closes: a close code and a reason for the client.
pub(crate) type CloseReason = (u16, &'static str);

/// How the rest of the node reaches one connection: its send queue and its
/// close signal, in one allocation (every room member and the node's
/// connection table hold a clone).
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle(Arc<Conn>);

#[derive(Debug)]
struct Conn {
    key: Arc<str>,
    queue: SendQueue<Outbound>,
    /// Set once: the first reason wins. Setting it wakes whoever waits in
    /// [`ConnHandle::closed`] (the writer, waiting on the queue, is woken
    /// by the queue's interrupt).
    close_reason: tokio::sync::SetOnce<CloseReason>,
}

impl ConnHandle {
    pub(crate) fn new(key: Arc<str>, send_queue: usize) -> Self {
        Self(Arc::new(Conn {
            key,
            queue: SendQueue::new(send_queue),
            close_reason: tokio::sync::SetOnce::new(),
        }))
    }

    /// The connection's id, unique across nodes.
    pub(crate) fn key(&self) -> &Arc<str> {
        &self.0.key
    }

    pub(crate) fn queue(&self) -> &SendQueue<Outbound> {
        &self.0.queue
    }

    /// Queues `item` without waiting; a full queue closes the connection
    /// (it cannot keep up). False when the item was not queued.
    pub(crate) fn push(&self, item: Outbound) -> bool {
        self.try_push(item) == Pushed::Queued
    }

    /// As [`push`](Self::push), saying whether a full queue closed it.
    fn try_push(&self, item: Outbound) -> Pushed {
        match self.0.queue.try_push(item) {
            Ok(()) => Pushed::Queued,
            // Counted once, by the push that closes it: until the
            // connection has left its rooms, later pushes find it full too.
            Err(PushError::Full) if self.close_first(close::SLOW_CONSUMER, "send queue full") => {
                Pushed::Full
            }
            Err(PushError::Full) => Pushed::Closed,
            Err(PushError::Closed) => Pushed::Closed,
        }
    }

    pub(crate) fn push_frame(&self, frame: &ServerFrame<'_>) -> bool {
        self.push(Outbound::Frame(Message::Text(frame.encode().into())))
    }

    /// Asks the connection to close with `code`; the first reason wins.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        self.close_first(code, reason);
    }

    /// As [`close`](Self::close); true when this call gave the reason.
    fn close_first(&self, code: u16, reason: &'static str) -> bool {
        let first = self.0.close_reason.set((code, reason)).is_ok();
        if first {
            self.0.queue.interrupt();
        }
        first
    }

    /// Why the connection is closing, once it is.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.0.close_reason.get().copied()
    }

    /// Waits until the connection is asked to close.
    pub(crate) async fn closed(&self) -> CloseReason {
        *self.0.close_reason.wait().await
    }
}

/// What became of a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pushed {
    Queued,
    /// The queue was full: this push closed the connection.
    Full,
    /// The connection is already closing (or closed).
    Closed,
}

/// One local member of a room.
#[derive(Debug)]
struct Member {
    handle: ConnHandle,
    /// The encoded presence entry, refreshed by the room task.
    presence: Option<Bytes>,
}

#[derive(Debug)]
struct LocalRoom {
    members: HashMap<Arc<str>, Member>,
    /// The members' handles, so that a fan-out clones one `Arc` under the
    /// node's lock and sends after releasing it: a room of many members
    /// never holds up other rooms. A join or leave only drops it (`None`);
    /// the next fan-out rebuilds it, so N members joining in a burst cost
    /// one rebuild rather than one each (O(N²) in all), and a member that
    /// left is not kept alive by a list no fan-out uses.
    handles: Option<Arc<[ConnHandle]>>,
    /// `Some(true)` once the room's subscriptions are live.
    ready: watch::Receiver<Option<bool>>,
    task: tokio::task::AbortHandle,
}

impl LocalRoom {
    /// The members' handles, rebuilt if a join or leave came since the last call.
    fn handles(&mut self) -> Arc<[ConnHandle]> {
        let members = &self.members;
        Arc::clone(self.handles.get_or_insert_with(|| {
            members
                .values()
                .map(|member| member.handle.clone())
                .collect()
        }))
    }
}

/// A node's realtime state: its layer, its rooms and its connections.
pub(crate) struct Hub {
    pub(crate) layer: Arc<dyn ChannelLayer>,
    pub(crate) node: String,
    pub(crate) limits: Limits,
    rooms: Mutex<HashMap<String, LocalRoom>>,
    connections: Mutex<HashMap<Arc<str>, ConnHandle>>,
    /// Each room's messages waiting for the layer, while its publisher runs.
    outboxes: Mutex<HashMap<String, VecDeque<Outgoing>>>,
    /// Wakes senders waiting for room in a full outbox.
    outbox_space: Notify,
    /// Set, under the `connections` lock, once the server shuts down: the
    /// close every connection got, and every later one gets at once.
    closing: std::sync::OnceLock<(u16, &'static str)>,
    next_connection: AtomicU64,
    permits: Arc<Semaphore>,
    node_room: std::sync::OnceLock<()>,
    /// Signs and checks realtime tokens; derived once.
    signer: crate::security::Signer,
    /// Lets tasks the hub spawns hold it weakly (a hub outlives none of them).
    me: Weak<Hub>,
}

fn presence_room(room: &str) -> String {
    format!("__presence.{room}")
}

fn node_room(node: &str) -> String {
    format!("__node.{node}")
}

impl Hub {
    fn new(layer: Arc<dyn ChannelLayer>, settings: &Settings) -> Arc<Self> {
        // A random node id: connection ids and presence keys stay unique
        // across every node (and restarts) sharing the layer.
        let node = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Arc::new_cyclic(|me| Self {
            layer,
            node,
            limits: Limits::from_settings(settings),
            rooms: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            outboxes: Mutex::new(HashMap::new()),
            outbox_space: Notify::new(),
            closing: std::sync::OnceLock::new(),
            next_connection: AtomicU64::new(1),
            permits: Arc::new(Semaphore::new(settings.realtime_max_connections)),
            node_room: std::sync::OnceLock::new(),
            signer: crate::security::Signer::from_settings(settings, super::consumer::TOKEN_SALT),
            me: me.clone(),
        })
    }

    pub(crate) fn signer(&self) -> &crate::security::Signer {
        &self.signer
    }

    /// A connection slot, or `None` at `realtime_max_connections`.
    pub(crate) fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    pub(crate) fn next_key(&self) -> Arc<str> {
        let n = self.next_connection.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{}/{n}", self.node))
    }

    pub(crate) fn register(&self, handle: ConnHandle) {
        self.node_room.get_or_init(|| {
            tokio::spawn(run_node_room(self.me.clone(), node_room(&self.node)));
        });
        let mut connections = lock(&self.connections);
        // Read under the lock `close_all` sets it under: a connection
        // upgraded while the server shuts down is either closed there or here.
        if let Some(&(code, reason)) = self.closing.get() {
            handle.close(code, reason);
        }
        connections.insert(Arc::clone(handle.key()), handle);
    }

    pub(crate) fn unregister(&self, key: &str) {
        lock(&self.connections).remove(key);
    }

    /// Closes every connection of this node with `code`, and every one
    /// that registers later (the server is shutting down).
    pub(crate) fn close_all(&self, code: u16, reason: &'static str) {
        let connections = lock(&self.connections);
        let _ = self.closing.set((code, reason));
        for handle in connections.values() {
            handle.close(code, reason);
        }
    }

    /// Adds a local member to `room`, subscribing the node first if it is
    /// the room's first local member, and records its presence.
    pub(crate) async fn join(
        &self,
        room: &str,
        handle: &ConnHandle,
        presence: Option<Presence>,
    ) -> Result<(), LayerError> {
        let encoded = presence
            .as_ref()
            .map(|presence| Bytes::from(serde_json::to_vec(presence).unwrap_or_default()));
        let mut ready = {
            let mut rooms = lock(&self.rooms);
            let local = rooms.entry(room.to_owned()).or_insert_with(|| {
                let (ready_tx, ready) = watch::channel(None);
                let task = tokio::spawn(run_room(self.me.clone(), room.to_owned(), ready_tx));
                LocalRoom {
                    members: HashMap::new(),
                    handles: None,
                    ready,
                    task: task.abort_handle(),
                }
            });
            local.members.insert(
                Arc::clone(handle.key()),
                Member {
                    handle: handle.clone(),
                    presence: encoded.clone(),
                },
            );
            local.handles = None;
            local.ready.clone()
        };
        let subscribed = matches!(
            ready.wait_for(Option::is_some).await.as_deref(),
            Ok(Some(true))
        );
        if !subscribed {
            self.remove_member(room, handle.key());
            return Err(LayerError::failed(
                self.layer.name(),
                &format!("node {}", self.node),
                format_args!("subscribe to room {room:?}"),
                "the room's subscription failed (logged above)",
            ));
        }
        if let (Some(presence), Some(encoded)) = (presence, encoded) {
            self.layer
                .presence_set(room, handle.key(), encoded, self.limits.presence_ttl)
                .await?;
            let nudge = Nudge {
                joins: vec![(handle.key().to_string(), presence)],
                leaves: Vec::new(),
            };
            self.nudge(room, &nudge).await?;
        }
        Ok(())
    }

    /// Removes a local member from `room` (a no-op if it is not one) and its
    /// presence entry.
    pub(crate) async fn leave(&self, room: &str, key: &str) -> Result<(), LayerError> {
        let Some(member) = self.remove_member(room, key) else {
            return Ok(());
        };
        if member.presence.is_some() {
            self.layer.presence_remove(room, key).await?;
            let nudge = Nudge {
                joins: Vec::new(),
                leaves: vec![key.to_owned()],
            };
            self.nudge(room, &nudge).await?;
        }
        Ok(())
    }

    fn remove_member(&self, room: &str, key: &str) -> Option<Member> {
        let mut rooms = lock(&self.rooms);
        let local = rooms.get_mut(room)?;
        let member = local.members.remove(key);
        if member.is_some() {
            local.handles = None;
        }
        if local.members.is_empty() {
            // Dropping the task drops its subscriptions: the node leaves the room.
            local.task.abort();
            rooms.remove(room);
        }
        member
    }

    async fn nudge(&self, room: &str, nudge: &Nudge) -> Result<(), LayerError> {
        let payload = Bytes::from(serde_json::to_vec(nudge).unwrap_or_default());
        self.layer
            .publish(&presence_room(room), payload, 0)
            .await
            .map(drop)
    }

    /// Publishes a room message and waits for its id.
    pub(crate) async fn publish(
        &self,
        room: &str,
        event: &str,
        data: Box<RawValue>,
        except: Option<&str>,
    ) -> Result<MessageId, LayerError> {
        let (reply, id) = oneshot::channel();
        self.enqueue(room, room_payload(event, data, except), Some(reply))
            .await;
        id.await.unwrap_or_else(|_| {
            Err(LayerError::new(
                self.layer.name(),
                format!("the node stopped before the message to room {room:?} was published"),
            ))
        })
    }

    /// Queues a room message behind this node's earlier ones for the room,
    /// without waiting for the layer.
    pub(crate) async fn publish_queued(
        &self,
        room: &str,
        event: &str,
        data: Box<RawValue>,
        except: Option<&str>,
    ) {
        self.enqueue(room, room_payload(event, data, except), None)
            .await;
    }

    /// Puts `payload` in `room`'s outbox, starting the room's publisher if
    /// it is not running, and waiting while the outbox is full.
    async fn enqueue(
        &self,
        room: &str,
        payload: Bytes,
        reply: Option<oneshot::Sender<Result<MessageId, LayerError>>>,
    ) {
        let mut outgoing = Some(Outgoing { payload, reply });
        loop {
            // Registered before the check, so that space made between the
            // check and the wait still wakes this sender.
            let space = self.outbox_space.notified();
            let mut space = std::pin::pin!(space);
            space.as_mut().enable();
            {
                let mut outboxes = lock(&self.outboxes);
                let outbox = outboxes.entry(room.to_owned()).or_insert_with(|| {
                    tokio::spawn(run_publisher(self.me.clone(), room.to_owned()));
                    VecDeque::new()
                });
                if outbox.len() < OUTBOX_LIMIT {
                    outbox.extend(outgoing.take());
                    return;
                }
            }
            space.await;
        }
    }

    /// Sends to one connection of any node: at once when it is local, else
    /// through its node's room. Returns false when a local connection is gone.
    async fn send_to(
        &self,
        key: &str,
        event: &str,
        data: Box<RawValue>,
    ) -> Result<bool, LayerError> {
        let Some((node, _)) = key.split_once('/') else {
            return Ok(false);
        };
        if node == self.node {
            let handle = lock(&self.connections).get(key).cloned();
            return Ok(handle.is_some_and(|handle| {
                handle.push_frame(&ServerFrame::Msg {
                    room: None,
                    id: None,
                    event,
                    data: &data,
                    ack: None,
                })
            }));
        }
        let published = Published {
            event: event.to_owned(),
            data,
            except: None,
            to: Some(key.to_owned()),
        };
        let payload = Bytes::from(serde_json::to_vec(&published).unwrap_or_default());
        self.layer.publish(&node_room(node), payload, 0).await?;
        Ok(true)
    }

    /// Pushes one message of `room` to its local members. A member whose
    /// send queue is full is closed; how many were is logged with the room.
    fn fan_out(&self, room: &str, envelope: &Envelope) {
        let Ok(published) = serde_json::from_slice::<Published>(&envelope.payload) else {
            tracing::warn!(room, id = envelope.id, "undecodable room message skipped");
            return;
        };
        // Encoded once for every member; the frame's bytes are shared.
        let text: Utf8Bytes = ServerFrame::Msg {
            room: Some(room),
            id: Some(envelope.id),
            event: &published.event,
            data: &published.data,
            ack: None,
        }
        .encode()
        .into();
        let room_key: Arc<str> = Arc::from(room);
        let mut closed = 0_usize;
        for handle in self.handles(room).iter() {
            if published.except.as_deref() == Some(&**handle.key()) {
                continue;
            }
            let pushed = handle.try_push(Outbound::Room {
                room: Arc::clone(&room_key),
                id: envelope.id,
                frame: Message::Text(text.clone()),
            });
            if pushed == Pushed::Full {
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::warn!(
                target: "kiln::realtime",
                room,
                id = envelope.id,
                closed,
                "{closed} member(s) of the room read too slowly: their send queue \
                 (realtime_send_queue = {}) was full, so they miss this message and \
                 are closed with 4001; they recover from the history when they rejoin with last_id",
                self.limits.send_queue
            );
        }
    }

    fn push_diff(&self, room: &str, diff: &Diff) {
        if diff.is_empty() {
            return;
        }
        let frame = ServerFrame::Presence {
            room,
            joins: &diff.joins,
            leaves: &diff.leaves,
        };
        self.push_to_members(room, &frame);
    }

    fn push_to_members(&self, room: &str, frame: &ServerFrame<'_>) {
        let text: Utf8Bytes = frame.encode().into();
        for handle in self.handles(room).iter() {
            handle.push(Outbound::Frame(Message::Text(text.clone())));
        }
    }

    fn close_members(&self, room: &str, code: u16, reason: &'static str) {
        for handle in self.handles(room).iter() {
            handle.close(code, reason);
        }
    }

    /// The local members of `room` to send to, taken under the lock and
    /// used after it is released.
    fn handles(&self, room: &str) -> Arc<[ConnHandle]> {
        lock(&self.rooms)
            .get_mut(room)
            .map_or_else(|| Arc::new([]) as Arc<[ConnHandle]>, LocalRoom::handles)
    }

    fn local_presence(&self, room: &str) -> Vec<(Arc<str>, Bytes)> {
        lock(&self.rooms).get(room).map_or_else(Vec::new, |local| {
            local
                .members
                .iter()
                .filter_map(|(key, member)| Some((Arc::clone(key), member.presence.clone()?)))
                .collect()
        })
    }

    /// Refreshes this node's presence entries of `room` and reads the
    /// layer's list, for the room task to diff.
    async fn presence_refresh(&self, room: &str) -> Result<Vec<(String, Bytes)>, LayerError> {
        let ttl = self.limits.presence_ttl;
        let entries = self.local_presence(room);
        // All at once: a room of many members costs one round trip's wait.
        let refreshed =
            futures_util::future::join_all(entries.into_iter().map(|(key, value)| async move {
                self.layer.presence_set(room, &key, value, ttl).await
            }))
            .await;
        refreshed.into_iter().collect::<Result<Vec<()>, _>>()?;
        self.layer.presence_list(room).await
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("layer", &self.layer.name())
            .field("node", &self.node)
            .field("rooms", &lock(&self.rooms).len())
            .field("connections", &lock(&self.connections).len())
            .finish_non_exhaustive()
    }
}

enum RoomEvent {
    Message(Envelope),
    Nudge(Envelope),
}

/// The task of one room on one node: fan-out and presence.
async fn run_room(hub: Weak<Hub>, room: String, ready: watch::Sender<Option<bool>>) {
    let Some(layer) = hub.upgrade().map(|hub| Arc::clone(&hub.layer)) else {
        return;
    };
    let (messages, nudges) = match (
        layer.subscribe(&room).await,
        layer.subscribe(&presence_room(&room)).await,
    ) {
        (Ok(messages), Ok(nudges)) => (messages, nudges),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(room, %error, "room subscription failed");
            let _ = ready.send(Some(false));
            return;
        }
    };
    let _ = ready.send(Some(true));
    let mut events = futures_util::stream::select(
        messages.map(RoomEvent::Message),
        nudges.map(RoomEvent::Nudge),
    );
    // The presence refresh waits on the layer, so it runs beside this task
    // (aborted with it) and hands over each list it read.
    let (lists_tx, mut lists) = tokio::sync::mpsc::channel(1);
    let _refresher = AbortOnDrop(tokio::spawn(refresh_presence(
        hub.clone(),
        room.clone(),
        lists_tx,
    )));
    let mut snapshot = Snapshot::default();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(hub) = hub.upgrade() else { return };
                match event {
                    Some(RoomEvent::Message(envelope)) => hub.fan_out(&room, &envelope),
                    Some(RoomEvent::Nudge(envelope)) => {
                        if let Ok(nudge) = serde_json::from_slice::<Nudge>(&envelope.payload) {
                            hub.push_diff(&room, &snapshot.apply(nudge));
                        }
                    }
                    None => {
                        // The layer ended the stream (its backend went away):
                        // clients reconnect and recover from the history.
                        tracing::warn!(room, "room stream ended; closing its members");
                        hub.close_members(&room, close::GOING_AWAY, "channel layer stream ended");
                        return;
                    }
                }
            }
            Some(list) = lists.recv() => {
                let Some(hub) = hub.upgrade() else { return };
                hub.push_diff(&room, &snapshot.replace(&list));
            }
        }
    }
}

/// Aborts a task when dropped: a helper task ends with the one that owns it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Refreshes this node's presence entries of `room` every third of the
/// TTL (well within it, so that a live node's entries never expire) and
/// sends the layer's list to the room task.
async fn refresh_presence(
    hub: Weak<Hub>,
    room: String,
    lists: tokio::sync::mpsc::Sender<Vec<(String, Bytes)>>,
) {
    let Some(ttl) = hub.upgrade().map(|hub| hub.limits.presence_ttl) else {
        return;
    };
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        match hub.presence_refresh(&room).await {
            Ok(list) => {
                if lists.send(list).await.is_err() {
                    return;
                }
            }
            Err(error) => tracing::warn!(room, %error, "presence refresh failed"),
        }
    }
}

/// The publisher of one room on this node: hands what waits in the room's
/// outbox to the layer, a batch per round trip, in order, and ends once the
/// outbox is empty (the next message starts a new one). A message whose
/// sender does not wait for its id and that the layer fails to take is
/// logged with the room and the count.
async fn run_publisher(hub: Weak<Hub>, room: String) {
    loop {
        let Some(hub) = hub.upgrade() else { return };
        let batch: Vec<Outgoing> = {
            let mut outboxes = lock(&hub.outboxes);
            let Some(outbox) = outboxes.get_mut(&room) else {
                return;
            };
            if outbox.is_empty() {
                // Everything taken earlier is published: a message queued
                // from now on goes to a new publisher, after all of them.
                outboxes.remove(&room);
                return;
            }
            let take = outbox.len().min(BATCH_LIMIT);
            outbox.drain(..take).collect()
        };
        hub.outbox_space.notify_waiters();
        let payloads = batch
            .iter()
            .map(|outgoing| outgoing.payload.clone())
            .collect();
        let mut outcomes = hub
            .layer
            .publish_batch(&room, payloads, hub.limits.history)
            .await
            .into_iter();
        let mut lost = 0_usize;
        let mut last_error = None;
        for outgoing in batch {
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(LayerError::new(
                    hub.layer.name(),
                    "the layer returned fewer outcomes than messages",
                ))
            });
            match outgoing.reply {
                Some(reply) => {
                    let _ = reply.send(outcome);
                }
                None => {
                    if let Err(error) = outcome {
                        lost += 1;
                        last_error = Some(error);
                    }
                }
            }
        }
        if let Some(error) = last_error {
            tracing::warn!(
                target: "kiln::realtime",
                room,
                dropped = lost,
                %error,
                "{lost} queued message(s) to the room could not be published and are lost"
            );
        }
    }
}

/// A room message as the layer carries it.
fn room_payload(event: &str, data: Box<RawValue>, except: Option<&str>) -> Bytes {
    let published = Published {
        event: event.to_owned(),
        data,
        except: except.map(str::to_owned),
        to: None,
    };
    Bytes::from(serde_json::to_vec(&published).unwrap_or_default())
}

/// The task of this node's own room: messages sent to one of its connections
/// from another node.
async fn run_node_room(hub: Weak<Hub>, name: String) {
    let Some(layer) = hub.upgrade().map(|hub| Arc::clone(&hub.layer)) else {
        return;
    };
    let mut stream = match layer.subscribe(&name).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "node room subscription failed: direct sends from other nodes are lost");
            return;
        }
    };
    drop(layer);
    while let Some(envelope) = stream.next().await {
        let Some(hub) = hub.upgrade() else { return };
        let Ok(published) = serde_json::from_slice::<Published>(&envelope.payload) else {
            continue;
        };
        if let Some(to) = published.to.as_deref() {
            let handle = lock(&hub.connections).get(to).cloned();
            if let Some(handle) = handle {
                handle.push_frame(&ServerFrame::Msg {
                    room: None,
                    id: None,
                    event: &published.event,
                    data: &published.data,
                    ack: None,
                });
            }
        }
    }
}

/// Why a realtime send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The channel layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The data could not be encoded as JSON.
    #[error("realtime message data is not JSON-encodable: {0}")]
    Encode(#[from] serde_json::Error),
    /// The connection is closed (or its send queue is full and it is closing).
    #[error("the connection is closed")]
    Closed,
    /// The client did not acknowledge within the timeout.
    #[error("the client did not acknowledge within {0:?}")]
    AckTimeout(Duration),
}

/// Sends to rooms and connections from anywhere in the app: an extractor in
/// views (`channels: Channels`), [`Site::channels`](crate::Site::channels)
/// elsewhere, and [`Socket::channels`](super::Socket::channels) in consumers.
///
/// ```
/// use kiln::prelude::*;
/// use kiln::realtime::Channels;
///
/// async fn post_message(channels: Channels, Json(text): Json<String>) -> Result<&'static str, kiln::Error> {
///     // ... save the message, then tell everyone in the room:
///     channels.broadcast("lobby", "chat", &serde_json::json!({ "text": text })).await?;
///     Ok("sent")
/// }
/// ```
#[derive(Clone)]
pub struct Channels(pub(crate) Arc<Hub>);

impl Channels {
    /// The channels of a node using `layer`, limited by `settings`.
    #[must_use]
    pub fn new(layer: Arc<dyn ChannelLayer>, settings: &Settings) -> Self {
        Self(Hub::new(layer, settings))
    }

    /// Sends `event` with `data` to every member of `room` on every node,
    /// and keeps it in the room's history. Returns the message's id.
    ///
    /// # Errors
    ///
    /// [`SendError`] when `data` is not JSON or the layer fails.
    pub async fn broadcast(
        &self,
        room: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<MessageId, SendError> {
        let data = to_raw_value(data)?;
        Ok(self.0.publish(room, event, data, None).await?)
    }

    /// As [`broadcast`](Self::broadcast), without waiting for the channel
    /// layer: returns once the message is queued on this node, behind every
    /// message this node sent to `room` before it (waiting only while 4,096
    /// messages of the room wait already). The room's
    /// publisher hands queued messages to Redis or NATS many per round
    /// trip, so one task can send much faster than with `broadcast`, which
    /// waits a round trip per message. There is no id to return, and no
    /// caller to tell of a failure: a message the layer fails to take is
    /// lost, and logged (a warning with the room and the count).
    ///
    /// # Errors
    ///
    /// [`SendError::Encode`] when `data` is not JSON.
    pub async fn broadcast_queued(
        &self,
        room: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<(), SendError> {
        let data = to_raw_value(data)?;
        self.0.publish_queued(room, event, data, None).await;
        Ok(())
    }

    /// As [`broadcast`](Self::broadcast), except to connection `except`
    /// (usually the sender, see [`Socket::id`](super::Socket::id)).
    ///
    /// # Errors
    ///
    /// As [`broadcast`](Self::broadcast).
    pub async fn broadcast_except(
        &self,
        room: &str,
        except: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<MessageId, SendError> {
        let data = to_raw_value(data)?;
        Ok(self.0.publish(room, event, data, Some(except)).await?)
    }

    /// Sends to one connection (by [`Socket::id`](super::Socket::id)),
    /// whichever node holds it. Not kept in any history.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the connection is on this node and gone;
    /// a connection on another node that is gone loses the message silently.
    pub async fn send_to(
        &self,
        connection: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<(), SendError> {
        let data = to_raw_value(data)?;
        if self.0.send_to(connection, event, data).await? {
            Ok(())
        } else {
            Err(SendError::Closed)
        }
    }

    /// Who is in `room`, on every node: one entry per connection.
    ///
    /// # Errors
    ///
    /// When the layer fails.
    pub async fn presence(&self, room: &str) -> Result<Vec<PresenceEntry>, LayerError> {
        let list = self.0.layer.presence_list(room).await?;
        Ok(list
            .iter()
            .filter_map(|(key, value)| PresenceEntry::decode(key, value))
            .collect())
    }

    /// How many WebSocket connections this node holds.
    #[must_use]
    pub fn connections(&self) -> usize {
        lock(&self.0.connections).len()
    }

    /// This node's id, the prefix of its connections' ids.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.0.node
    }

    /// A token naming `value` (a user id, say) that
    /// [`ConnectRequest::token`](super::ConnectRequest::token) accepts until
    /// it is older than the `max_age` given there: render it into the page
    /// and have the client connect to `...?token=<token>`.
    #[must_use]
    pub fn sign_token(&self, value: &str) -> String {
        self.0.signer.sign_timestamped(value)
    }

    /// The channel layer.
    #[must_use]
    pub fn layer(&self) -> &Arc<dyn ChannelLayer> {
        &self.0.layer
    }
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Channels {
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let site = crate::Site::from_request_parts(parts, state).await?;
        Ok(site.channels().clone())
    }
}
