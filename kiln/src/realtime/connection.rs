//! One WebSocket connection: three tasks around one bounded queue.
//!
//! - the **writer** owns the socket's sending half; it drains the send queue,
//!   pings every `realtime_ping_interval`, and sends the close frame;
//! - the **reader** owns the receiving half; it enforces the idle timeout and
//!   the rate limit, resolves the client's acks, and hands every other frame
//!   to the consumer;
//! - the **consumer task** (the upgrade's own task) runs the app's
//!   [`Consumer`] one frame at a time.
//!
//! The reader is a task of its own so that a consumer awaiting the client's
//! ack ([`Socket::emit_with_ack`]) does not stop the ack from being read.
//! Anyone may close the connection through its close signal; every task
//! watches it, so a writer stuck on a client that stopped reading is dropped
//! rather than waited for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};

use super::consumer::Consumer;
use super::layer::{History, MessageId};
use super::presence::Presence;
use super::protocol::{ClientFrame, ErrorCode, ServerFrame, check_room, close, parse_client};
use super::queue::SendQueue;
use super::rate::RateLimit;
use super::rooms::{Channels, CloseReason, ConnHandle, Hub, Outbound, SendError};

/// How many parsed frames wait between the reader and the consumer; past
/// that the reader stops reading, and TCP pushes back on the client. The
/// frames are boxed: tokio's channel allocates a block of 32 slots up front,
/// 256 bytes of pointers rather than 1.8 KiB of frames on every idle
/// connection, for one allocation per client frame (which the rate limit
/// bounds).
const INBOUND_QUEUE: usize = 16;

/// How long the writer tries to deliver the close frame to a client that may
/// have stopped reading.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The most queued items the writer takes in one go: it writes their frames
/// and flushes once, so that a writer that fell behind (a burst, a busy
/// machine) catches up with one wake-up and a few writes rather than one
/// of each per frame.
const WRITE_BATCH: usize = 64;

/// What the reader hands the consumer task.
#[derive(Debug)]
enum Inbound {
    Frame(ClientFrame),
    Binary(Bytes),
    Invalid(ErrorCode, String),
}

type AckTable = Mutex<(u64, HashMap<u64, oneshot::Sender<Value>>)>;

/// A consumer's handle on its connection: send to the client, join rooms,
/// broadcast, close.
pub struct Socket {
    handle: ConnHandle,
    hub: Arc<Hub>,
    acks: Arc<AckTable>,
    /// Sorted; a `Vec` rather than a `BTreeSet`, whose first node takes
    /// room for 11 names on every connection that joins one room.
    rooms: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.handle.key)
            .field("rooms", &self.rooms())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The connection's id, unique across nodes: give it to
    /// [`Channels::send_to`] or [`Channels::broadcast_except`].
    #[must_use]
    pub fn id(&self) -> &str {
        &self.handle.key
    }

    /// The project's channels, to send anywhere.
    #[must_use]
    pub fn channels(&self) -> Channels {
        Channels(Arc::clone(&self.hub))
    }

    /// The rooms this connection is in.
    #[must_use]
    pub fn rooms(&self) -> Vec<String> {
        lock(&self.rooms).iter().cloned().collect()
    }

    /// Sends `event` with `data` to this client (`{"t":"msg","event":...}`).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the connection is closed or its queue is
    /// full (which closes it); [`SendError::Encode`] when `data` is not JSON.
    pub fn send(&self, event: &str, data: &impl Serialize) -> Result<(), SendError> {
        let data = to_raw_value(data)?;
        self.push_msg(event, &data, None)
    }

    fn push_msg(&self, event: &str, data: &RawValue, ack: Option<u64>) -> Result<(), SendError> {
        let frame = ServerFrame::Msg {
            room: None,
            id: None,
            event,
            data,
            ack,
        };
        if self.handle.push_frame(&frame) {
            Ok(())
        } else {
            Err(SendError::Closed)
        }
    }

    /// Sends `event` to this client asking for an ack, and waits for the
    /// client's answer (its `data`) up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendError::AckTimeout`] when no ack came in time (the message may
    /// or may not have been processed), [`SendError::Closed`] when the
    /// connection closed first.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        data: &impl Serialize,
        timeout: Duration,
    ) -> Result<Value, SendError> {
        let data = to_raw_value(data)?;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut acks = lock(&self.acks);
            acks.0 += 1;
            let id = acks.0;
            acks.1.insert(id, tx);
            id
        };
        if let Err(error) = self.push_msg(event, &data, Some(id)) {
            lock(&self.acks).1.remove(&id);
            return Err(error);
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        lock(&self.acks).1.remove(&id);
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(SendError::Closed),
            Err(_) => Err(SendError::AckTimeout(timeout)),
        }
    }

    /// Joins `room` (from the server side), with a presence entry if given.
    ///
    /// # Errors
    ///
    /// When the layer fails.
    pub async fn join(&self, room: &str, presence: Option<Presence>) -> Result<(), SendError> {
        self.hub.join(room, &self.handle, presence).await?;
        let mut rooms = lock(&self.rooms);
        if let Err(at) = rooms.binary_search_by(|name| name.as_str().cmp(room)) {
            rooms.insert(at, room.to_owned());
        }
        Ok(())
    }

    /// Leaves `room`.
    ///
    /// # Errors
    ///
    /// When the layer fails to remove the presence entry.
    pub async fn leave(&self, room: &str) -> Result<(), SendError> {
        lock(&self.rooms).retain(|name| name != room);
        Ok(self.hub.leave(room, &self.handle.key).await?)
    }

    /// Sends to every member of `room`, this connection included.
    ///
    /// # Errors
    ///
    /// As [`Channels::broadcast`].
    pub async fn broadcast(
        &self,
        room: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<MessageId, SendError> {
        self.channels().broadcast(room, event, data).await
    }

    /// As [`broadcast`](Self::broadcast), returning once the message is
    /// queued on this node rather than once the channel layer has it: see
    /// [`Channels::broadcast_queued`]. A consumer that relays a fast stream
    /// of messages to a room uses it, so that each one does not cost a
    /// round trip to Redis or NATS before the next frame is read.
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
        self.channels().broadcast_queued(room, event, data).await
    }

    /// Sends to every member of `room` but this connection.
    ///
    /// # Errors
    ///
    /// As [`Channels::broadcast`].
    pub async fn broadcast_others(
        &self,
        room: &str,
        event: &str,
        data: &impl Serialize,
    ) -> Result<MessageId, SendError> {
        self.channels()
            .broadcast_except(room, self.id(), event, data)
            .await
    }

    /// Closes the connection with `code` (1000 for a normal close, or an
    /// application code 4100-4999) after what is queued has been sent.
    pub fn close(&self, code: u16, reason: &'static str) {
        self.handle.close(code, reason);
    }

    fn error(&self, code: ErrorCode, detail: &str, room: Option<&str>, ack: Option<u64>) {
        self.handle.push_frame(&ServerFrame::Error {
            code: code.as_str(),
            detail,
            room,
            ack,
        });
    }

    /// A client's join: permission, membership, recovery, presence state.
    async fn client_join<C: Consumer>(
        &self,
        consumer: &mut C,
        room: String,
        last_id: Option<MessageId>,
        ack: Option<u64>,
    ) {
        if let Err(detail) = check_room(&room) {
            return self.error(ErrorCode::BadRoom, &detail, Some(&room), ack);
        }
        if !consumer.can_join(self, &room).await {
            return self.error(
                ErrorCode::Forbidden,
                "not allowed to join this room",
                Some(&room),
                ack,
            );
        }
        let room_key: Arc<str> = Arc::from(room.as_str());
        if last_id.is_some() {
            // Before the join: live messages that arrive while the history
            // is read wait behind the missed ones.
            self.handle.push(Outbound::Hold(Arc::clone(&room_key)));
        }
        let presence = consumer.presence(&room);
        if let Err(error) = self.join(&room, presence).await {
            tracing::warn!(room, %error, "join failed");
            self.handle.push(Outbound::Recovered {
                room: room_key,
                frames: Vec::new(),
            });
            return self.error(
                ErrorCode::Unavailable,
                "the room is unavailable",
                Some(&room),
                ack,
            );
        }
        self.handle
            .push_frame(&ServerFrame::Joined { room: &room, ack });
        if let Some(after) = last_id {
            let frames = self.recovery(&room, after).await;
            self.handle.push(Outbound::Recovered {
                room: room_key,
                frames,
            });
        }
        match self.channels().presence(&room).await {
            Ok(entries) if !entries.is_empty() => {
                self.handle.push_frame(&ServerFrame::PresenceState {
                    room: &room,
                    entries: &entries,
                });
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(room, %error, "presence list failed"),
        }
    }

    /// The frames a client that last saw `after` in `room` missed, or a
    /// resync frame when they have left the history window.
    async fn recovery(&self, room: &str, after: MessageId) -> Vec<(MessageId, Message)> {
        match self.hub.layer.history_after(room, after).await {
            Ok(History::Messages(envelopes)) => envelopes
                .into_iter()
                .filter_map(|envelope| {
                    let published: super::protocol::Published =
                        serde_json::from_slice(&envelope.payload).ok()?;
                    if published.except.as_deref() == Some(self.id()) {
                        return None;
                    }
                    let text = ServerFrame::Msg {
                        room: Some(room),
                        id: Some(envelope.id),
                        event: &published.event,
                        data: &published.data,
                        ack: None,
                    }
                    .encode();
                    Some((envelope.id, Message::Text(text.into())))
                })
                .collect(),
            Ok(History::Gone) => vec![(0, resync(room))],
            Err(error) => {
                tracing::warn!(room, %error, "history read failed; asking the client to resync");
                vec![(0, resync(room))]
            }
        }
    }
}

fn resync(room: &str) -> Message {
    Message::Text(ServerFrame::Resync { room }.encode().into())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one upgraded connection to its end.
pub(crate) async fn run<C: Consumer>(
    ws: WebSocket,
    mut consumer: C,
    hub: Arc<Hub>,
    permit: OwnedSemaphorePermit,
) {
    let key = hub.next_key();
    let queue = Arc::new(SendQueue::new(hub.limits.send_queue));
    let (closer, close_rx) = watch::channel::<CloseReason>(None);
    let handle = ConnHandle::new(Arc::clone(&key), Arc::clone(&queue), Arc::new(closer));
    hub.register(handle.clone());
    let acks: Arc<AckTable> = Arc::default();
    let (sink, stream) = ws.split();
    let (inbound_tx, mut inbound) = mpsc::channel::<Box<Inbound>>(INBOUND_QUEUE);
    let writer = tokio::spawn(write(
        sink,
        queue,
        close_rx.clone(),
        hub.limits.ping_interval,
        hub.limits.send_queue,
    ));
    let reader = tokio::spawn(read(
        stream,
        inbound_tx,
        close_rx,
        handle.clone(),
        Arc::clone(&acks),
        Arc::clone(&hub),
    ));
    let socket = Socket {
        handle: handle.clone(),
        hub: Arc::clone(&hub),
        acks,
        rooms: Mutex::new(Vec::new()),
    };

    consumer.connected(&socket).await;
    while let Some(inbound) = inbound.recv().await {
        match *inbound {
            Inbound::Frame(ClientFrame::Join { room, last_id, ack }) => {
                socket.client_join(&mut consumer, room, last_id, ack).await;
            }
            Inbound::Frame(ClientFrame::Leave { room, ack }) => {
                if let Err(error) = socket.leave(&room).await {
                    tracing::warn!(room, %error, "leave failed");
                }
                handle.push_frame(&ServerFrame::Left { room: &room, ack });
            }
            Inbound::Frame(ClientFrame::Msg { data, ack }) => {
                match serde_json::from_value::<C::Message>(data) {
                    Ok(message) => {
                        let reply = consumer.receive(&socket, message).await;
                        if let Some(ack) = ack {
                            handle.push_frame(&ServerFrame::Ack { ack, data: &reply });
                        }
                    }
                    Err(error) => {
                        socket.error(ErrorCode::BadMessage, &error.to_string(), None, ack);
                    }
                }
            }
            // The reader resolves acks itself.
            Inbound::Frame(ClientFrame::Ack { .. }) => {}
            Inbound::Binary(data) => consumer.receive_binary(&socket, data).await,
            Inbound::Invalid(code, detail) => socket.error(code, &detail, None, None),
        }
    }
    consumer.disconnect(&socket).await;
    for room in socket.rooms() {
        if let Err(error) = hub.leave(&room, &key).await {
            tracing::warn!(room, %error, "leave on disconnect failed");
        }
    }
    hub.unregister(&key);
    handle.close(close::NORMAL, "");
    let _ = writer.await;
    let _ = reader.await;
    drop(permit);
}

/// Waits until the connection is asked to close.
async fn closed(close: &mut watch::Receiver<CloseReason>) -> CloseReason {
    match close.wait_for(Option::is_some).await {
        Ok(reason) => *reason,
        Err(_) => None,
    }
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends `frames` and flushes once. When the connection is asked to close
/// meanwhile, the sends get [`CLOSE_GRACE`] more to finish: a client that
/// reads then still gets its close frame after these, while one that
/// stopped reading (whose send would hold for ever) is let go. False when
/// the writer must stop without a close frame.
async fn send(
    sink: &mut Sink,
    frames: Vec<Message>,
    close: &mut watch::Receiver<CloseReason>,
) -> bool {
    let mut sending = std::pin::pin!(async {
        for frame in frames {
            sink.feed(frame).await?;
        }
        sink.flush().await
    });
    tokio::select! {
        sent = &mut sending => sent.is_ok(),
        _ = closed(close) => matches!(tokio::time::timeout(CLOSE_GRACE, sending).await, Ok(Ok(()))),
    }
}

/// The writer task: sends what is queued until the connection closes, then
/// refuses further pushes, so that senders learn the connection is gone.
async fn write(
    sink: Sink,
    queue: Arc<SendQueue<Outbound>>,
    close: watch::Receiver<CloseReason>,
    ping_interval: Duration,
    hold_limit: usize,
) {
    write_frames(sink, &queue, close, ping_interval, hold_limit).await;
    queue.close();
}

async fn write_frames(
    mut sink: Sink,
    queue: &SendQueue<Outbound>,
    mut close: watch::Receiver<CloseReason>,
    ping_interval: Duration,
    hold_limit: usize,
) {
    // The newest id sent per recovered room (recovery and live delivery
    // overlap), and the live messages held while a room is recovered.
    let mut sent_through: HashMap<Arc<str>, MessageId> = HashMap::new();
    let mut held: HashMap<Arc<str>, Vec<(MessageId, Message)>> = HashMap::new();
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = 'writing: loop {
        let first = tokio::select! {
            biased;
            reason = closed(&mut close) => break reason,
            item = queue.pop() => item,
            _ = ping.tick() => Outbound::Frame(Message::Ping(Bytes::new())),
        };
        // What else waits goes out with it, up to a batch.
        let mut frames = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            taken += 1;
            match item {
                Outbound::Frame(frame) => frames.push(frame),
                Outbound::Room { room, id, frame } => {
                    if let Some(waiting) = held.get_mut(&room) {
                        if waiting.len() >= hold_limit {
                            break 'writing Some((close::SLOW_CONSUMER, "send queue full"));
                        }
                        waiting.push((id, frame));
                    } else if sent_through.get(&room).is_none_or(|&last| id > last) {
                        frames.push(frame);
                    }
                }
                Outbound::Hold(room) => {
                    held.insert(room, Vec::new());
                }
                Outbound::Recovered {
                    room,
                    frames: recovered,
                } => {
                    let last = recovered.iter().map(|(id, _)| *id).max().unwrap_or(0);
                    let waiting = held.remove(&room).unwrap_or_default();
                    sent_through.insert(room, last);
                    frames.extend(
                        recovered
                            .into_iter()
                            .chain(waiting.into_iter().filter(|(id, _)| *id > last))
                            .map(|(_, frame)| frame),
                    );
                }
            }
            if taken < WRITE_BATCH {
                next = queue.try_pop();
            }
        }
        if frames.is_empty() {
            continue;
        }
        if close.borrow().is_some() {
            // Closing: the batch gives way to the close frame (the next
            // turn of the loop sees the signal first).
            continue;
        }
        if !send(&mut sink, frames, &mut close).await {
            // Either the client is gone or the close signal came while the
            // send was stuck: there is no point in a close frame.
            return;
        }
    };
    if let Some((code, reason)) = reason {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

async fn read(
    mut stream: SplitStream<WebSocket>,
    inbound: mpsc::Sender<Box<Inbound>>,
    mut close: watch::Receiver<CloseReason>,
    handle: ConnHandle,
    acks: Arc<AckTable>,
    hub: Arc<Hub>,
) {
    if read_frames(&mut stream, inbound, &mut close, &handle, &acks, &hub).await {
        // The server is closing: read on until the client's close reply, so
        // that the socket is not dropped with unread bytes (the kernel would
        // answer them with a reset, which can destroy the close frame in the
        // client's receive buffer before it reads it). Errors are skipped: a
        // too-big frame's payload is still to be read past.
        let drain = async {
            let mut errors = 0;
            loop {
                match stream.next().await {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Err(_)) if errors >= 8 => break,
                    Some(Err(_)) => errors += 1,
                    Some(Ok(_)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
}

/// Reads client frames until the connection ends; true when it ends because
/// the server closes it (rather than the client).
async fn read_frames(
    stream: &mut SplitStream<WebSocket>,
    inbound: mpsc::Sender<Box<Inbound>>,
    close: &mut watch::Receiver<CloseReason>,
    handle: &ConnHandle,
    acks: &AckTable,
    hub: &Hub,
) -> bool {
    let limits = &hub.limits;
    let mut rate = RateLimit::new(limits.rate_limit, limits.rate_burst);
    loop {
        let next = tokio::select! {
            biased;
            _ = closed(close) => return true,
            next = tokio::time::timeout(limits.idle_timeout, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                handle.close(close::IDLE_TIMEOUT, "idle timeout");
                return true;
            }
            Ok(None) => return false,
            Ok(Some(Err(error))) => {
                if is_too_big(error) {
                    handle.close(close::TOO_BIG, "message too big");
                    return true;
                }
                return false;
            }
            Ok(Some(Ok(message))) => message,
        };
        let inbound_item = match message {
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return false,
            Message::Text(_) | Message::Binary(_) if !rate.take() => {
                handle.close(close::RATE_LIMITED, "rate limit exceeded");
                return true;
            }
            Message::Binary(data) => Inbound::Binary(data),
            Message::Text(text) => match parse_client(text.as_str()) {
                Ok(ClientFrame::Ack { ack, data }) => {
                    if let Some(waiter) = lock(acks).1.remove(&ack) {
                        let _ = waiter.send(data);
                    }
                    continue;
                }
                Ok(frame) => Inbound::Frame(frame),
                Err((code, detail)) => Inbound::Invalid(code, detail),
            },
        };
        if inbound.send(Box::new(inbound_item)).await.is_err() {
            return true;
        }
    }
}

/// Whether a read failed because a message exceeded `realtime_max_message_size`.
fn is_too_big(error: axum::Error) -> bool {
    let inner = error.into_inner();
    matches!(
        inner.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
