//! One WebSocket connection, run by one task (the upgrade's own): two
//! halves polled side by side around one bounded send queue.
//!
//! - the **writer** owns the socket's sending half; it drains the send queue
//!   and sends the close frame;
//! - the **server** owns the receiving half; it enforces the idle timeout and
//!   the rate limit, queues a ping every `realtime_ping_interval`, resolves
//!   the client's acks, and runs the app's [`Consumer`] on every other
//!   frame, one at a time.
//!
//! One task rather than a task per half and one for the consumer: an idle
//! connection then costs one task cell and no channels between tasks, and a
//! delivery wakes one task. The consumer's work on a frame is a boxed
//! future polled beside the socket, so that a consumer awaiting the
//! client's ack ([`Socket::emit_with_ack`]) does not stop the ack from being
//! read, and the state of its (possibly large) futures is held only while
//! it works. Anyone may close the connection through its handle's close
//! signal; both halves watch it, so a writer stuck on a client that stopped
//! reading is dropped rather than waited for.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::consumer::Consumer;
use super::layer::{History, MessageId};
use super::lock;
use super::presence::Presence;
use super::protocol::{ClientFrame, ErrorCode, ServerFrame, check_room, close, parse_client};
use super::rate::RateLimit;
use super::rooms::{Channels, ConnHandle, Hub, Outbound, SendError};

/// How many parsed frames may wait while the consumer works on one; past
/// that the socket is not read, and TCP pushes back on the client.
const INBOUND_QUEUE: usize = 16;

/// How long the writer tries to deliver the close frame to a client that may
/// have stopped reading.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The most queued items the writer takes in one go: it writes their frames
/// and flushes once, so that a writer that fell behind (a burst, a busy
/// machine) catches up with one wake-up and a few writes rather than one
/// of each per frame.
const WRITE_BATCH: usize = 64;

/// A client frame for the consumer.
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
    acks: AckTable,
    /// Sorted; a `Vec` rather than a `BTreeSet`, whose first node takes
    /// room for 11 names on every connection that joins one room.
    rooms: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", self.handle.key())
            .field("rooms", &self.rooms())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The connection's id, unique across nodes: give it to
    /// [`Channels::send_to`] or [`Channels::broadcast_except`].
    #[must_use]
    pub fn id(&self) -> &str {
        self.handle.key()
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
        Ok(self.hub.leave(room, self.handle.key()).await?)
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

/// Runs one upgraded connection to its end.
///
/// Not an `async fn`: an async fn's future keeps room for its arguments
/// for the whole of its life, and the `WebSocket` is moved into its two
/// halves before the future starts.
pub(crate) fn run<C: Consumer>(
    ws: WebSocket,
    consumer: C,
    hub: Arc<Hub>,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send {
    let handle = ConnHandle::new(hub.next_key(), hub.limits.send_queue);
    hub.register(handle.clone());
    let (sink, stream) = ws.split();
    let socket = Socket {
        handle,
        hub,
        acks: Mutex::default(),
        rooms: Mutex::new(Vec::new()),
    };
    async move {
        let send_queue = socket.hub.limits.send_queue;
        tokio::join!(
            write(sink, &socket.handle, send_queue),
            serve(stream, consumer, &socket),
        );
        drop(permit);
    }
}

/// The consumer's work on one client frame (or on the connection's start):
/// it owns the consumer while it runs and hands it back when done.
type Job<'a, C> = Pin<Box<dyn Future<Output = C> + Send + 'a>>;

/// Where the reading side of a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// Reading client frames.
    Frames,
    /// The server is closing: reading on, and throwing away, until the
    /// client's close reply, so that the socket is not dropped with unread
    /// bytes (the kernel would answer them with a reset, which can destroy
    /// the close frame in the client's receive buffer before it reads it).
    /// Counts the read errors skipped: a too-big frame's payload is still
    /// to be read past.
    Draining(u8),
    /// The client is gone or has answered the close.
    Done,
}

/// Reads the client's frames and runs the consumer on them, one at a time,
/// until the connection ends; then the consumer's `disconnect`.
///
/// Reading goes on while the consumer works (its job is polled beside the
/// socket), so that a consumer awaiting the client's ack
/// ([`Socket::emit_with_ack`]) does not stop the ack from being read; the
/// frames read meanwhile wait, up to [`INBOUND_QUEUE`], and past that the
/// socket is not read (TCP pushes back on the client).
async fn serve<C: Consumer>(mut stream: SplitStream<WebSocket>, consumer: C, socket: &Socket) {
    let handle = &socket.handle;
    let limits = &socket.hub.limits;
    let mut rate = RateLimit::new(limits.rate_limit, limits.rate_burst);
    let mut job: Option<Job<'_, C>> = Some(Box::pin(async move {
        let mut consumer = consumer;
        consumer.connected(socket).await;
        consumer
    }));
    let mut idle_consumer: Option<C> = None;
    let mut waiting: VecDeque<Inbound> = VecDeque::new();
    let mut reading = Reading::Frames;
    // One timer for the pings, the idle timeout and the close grace, moved
    // on only when it fires: a frame just records when it came.
    let mut last_read = Instant::now();
    let mut next_ping = last_read + limits.ping_interval;
    let timer = tokio::time::sleep_until(next_ping.min(last_read + limits.idle_timeout));
    let mut timer = std::pin::pin!(timer);
    loop {
        if let Some(consumer) = idle_consumer.take() {
            match waiting.pop_front() {
                Some(item) => {
                    job = Some(Box::pin(work(consumer, socket, item)));
                    if waiting.is_empty() {
                        // A burst's buffer is not kept by an idle connection.
                        waiting = VecDeque::new();
                    }
                }
                None if reading == Reading::Done => {
                    idle_consumer = Some(consumer);
                    break;
                }
                None => idle_consumer = Some(consumer),
            }
        }
        let read_frames = reading == Reading::Frames && waiting.len() < INBOUND_QUEUE;
        tokio::select! {
            biased;
            consumer = poll_fn(|cx| job.as_mut().map_or(Poll::Pending, |job| job.as_mut().poll(cx))) => {
                job = None;
                idle_consumer = Some(consumer);
                if !read_frames {
                    // Not read while the consumer was behind: that is not
                    // the client's idleness.
                    last_read = Instant::now();
                }
            }
            _ = handle.closed(), if reading == Reading::Frames => {
                reading = Reading::Draining(0);
                timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
            }
            next = stream.next(), if read_frames || matches!(reading, Reading::Draining(_)) => {
                if let Reading::Draining(errors) = reading {
                    reading = match next {
                        None | Some(Ok(Message::Close(_))) => Reading::Done,
                        Some(Err(_)) if errors >= 8 => Reading::Done,
                        Some(Err(_)) => Reading::Draining(errors + 1),
                        Some(Ok(_)) => reading,
                    };
                    continue;
                }
                last_read = Instant::now();
                match read(next, &mut rate, socket) {
                    Read::Frame(item) => match idle_consumer.take() {
                        Some(consumer) => job = Some(Box::pin(work(consumer, socket, item))),
                        None => waiting.push_back(item),
                    },
                    Read::Nothing => {}
                    Read::End => reading = Reading::Done,
                    // The close branch takes it from here.
                    Read::Close(code, reason) => handle.close(code, reason),
                }
            }
            () = &mut timer, if reading != Reading::Done => {
                if reading != Reading::Frames {
                    // The close grace is over.
                    reading = Reading::Done;
                    continue;
                }
                let now = Instant::now();
                // Frames not read while the consumer is behind are not the
                // client's idleness.
                let idle_until = if read_frames { last_read } else { now } + limits.idle_timeout;
                if idle_until <= now {
                    handle.close(close::IDLE_TIMEOUT, "idle timeout");
                    continue;
                }
                if next_ping <= now {
                    // Behind what is queued; a full queue closes the
                    // connection, as for any message.
                    handle.push(Outbound::Frame(Message::Ping(Bytes::new())));
                    next_ping = now + limits.ping_interval;
                }
                timer.as_mut().reset(next_ping.min(idle_until));
            }
        }
    }
    if let Some(consumer) = idle_consumer {
        // Boxed: its state would otherwise take room in every connection's
        // future for the whole of its life.
        Box::pin(end(consumer, socket)).await;
    }
}

/// The consumer's `disconnect`, then the connection leaves its rooms and
/// the node.
async fn end<C: Consumer>(mut consumer: C, socket: &Socket) {
    let handle = &socket.handle;
    consumer.disconnect(socket).await;
    for room in socket.rooms() {
        if let Err(error) = socket.hub.leave(&room, handle.key()).await {
            tracing::warn!(room, %error, "leave on disconnect failed");
        }
    }
    socket.hub.unregister(handle.key());
    handle.close(close::NORMAL, "");
}

/// The consumer's work on one client frame.
async fn work<C: Consumer>(mut consumer: C, socket: &Socket, inbound: Inbound) -> C {
    let handle = &socket.handle;
    match inbound {
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
                    let reply = consumer.receive(socket, message).await;
                    if let Some(ack) = ack {
                        handle.push_frame(&ServerFrame::Ack { ack, data: &reply });
                    }
                }
                Err(error) => {
                    socket.error(ErrorCode::BadMessage, &error.to_string(), None, ack);
                }
            }
        }
        // Acks are resolved as they are read.
        Inbound::Frame(ClientFrame::Ack { .. }) => {}
        Inbound::Binary(data) => consumer.receive_binary(socket, data).await,
        Inbound::Invalid(code, detail) => socket.error(code, &detail, None, None),
    }
    consumer
}

/// What one read from the socket comes to.
enum Read {
    /// A frame for the consumer.
    Frame(Inbound),
    /// Nothing for the consumer (a ping, a pong, an ack).
    Nothing,
    /// The client closed or went away.
    End,
    /// The server must close the connection with this code.
    Close(u16, &'static str),
}

/// Checks one read against the limits, parses it, and resolves an ack.
fn read(next: Option<Result<Message, axum::Error>>, rate: &mut RateLimit, socket: &Socket) -> Read {
    let message = match next {
        None => return Read::End,
        Some(Err(error)) => {
            return if is_too_big(error) {
                Read::Close(close::TOO_BIG, "message too big")
            } else {
                Read::End
            };
        }
        Some(Ok(message)) => message,
    };
    match message {
        Message::Ping(_) | Message::Pong(_) => Read::Nothing,
        Message::Close(_) => Read::End,
        Message::Text(_) | Message::Binary(_) if !rate.take() => {
            Read::Close(close::RATE_LIMITED, "rate limit exceeded")
        }
        Message::Binary(data) => Read::Frame(Inbound::Binary(data)),
        Message::Text(text) => match parse_client(text.as_str()) {
            Ok(ClientFrame::Ack { ack, data }) => {
                if let Some(waiter) = lock(&socket.acks).1.remove(&ack) {
                    let _ = waiter.send(data);
                }
                Read::Nothing
            }
            Ok(frame) => Read::Frame(Inbound::Frame(frame)),
            Err((code, detail)) => Read::Frame(Inbound::Invalid(code, detail)),
        },
    }
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends `frames` and flushes once. When the connection is asked to close
/// meanwhile, the sends get [`CLOSE_GRACE`] more to finish: a client that
/// reads then still gets its close frame after these, while one that
/// stopped reading (whose send would hold for ever) is let go. False when
/// the writer must stop without a close frame.
async fn send(sink: &mut Sink, frames: Vec<Message>, handle: &ConnHandle) -> bool {
    let mut sending = std::pin::pin!(async {
        for frame in frames {
            sink.feed(frame).await?;
        }
        sink.flush().await
    });
    // Most sends finish at once: only one that has to wait for the socket
    // watches the close signal (boxed, so that every connection's future
    // does not keep room for it).
    if let Some(sent) = (&mut sending).now_or_never() {
        return sent.is_ok();
    }
    Box::pin(async {
        tokio::select! {
            sent = &mut sending => sent.is_ok(),
            _ = handle.closed() => matches!(tokio::time::timeout(CLOSE_GRACE, sending).await, Ok(Ok(()))),
        }
    })
    .await
}

/// The writer: sends what is queued until the connection closes, then
/// refuses further pushes, so that senders learn the connection is gone.
async fn write(sink: Sink, handle: &ConnHandle, hold_limit: usize) {
    write_frames(sink, handle, hold_limit).await;
    handle.queue().close();
}

async fn write_frames(mut sink: Sink, handle: &ConnHandle, hold_limit: usize) {
    let queue = handle.queue();
    // The newest id sent per recovered room (recovery and live delivery
    // overlap), and the live messages held while a room is recovered.
    let mut sent_through: HashMap<Arc<str>, MessageId> = HashMap::new();
    let mut held: HashMap<Arc<str>, Vec<(MessageId, Message)>> = HashMap::new();
    let reason = 'writing: loop {
        let Some(first) = queue.pop().await else {
            // Interrupted: the connection is closing.
            break handle.close_reason().unwrap_or((close::NORMAL, ""));
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
                            break 'writing (close::SLOW_CONSUMER, "send queue full");
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
        if handle.close_reason().is_some() {
            // Closing: the batch gives way to the close frame (the next
            // pop sees the interrupt).
            continue;
        }
        if !send(&mut sink, frames, handle).await {
            // Either the client is gone or the close signal came while the
            // send was stuck: there is no point in a close frame.
            return;
        }
    };
    // Boxed, as the slow send above.
    Box::pin(async move {
        let (code, reason) = reason;
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
    })
    .await;
}

/// Whether a read failed because a message exceeded `realtime_max_message_size`.
fn is_too_big(error: axum::Error) -> bool {
    let inner = error.into_inner();
    matches!(
        inner.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

#[cfg(test)]
mod tests {
    use super::super::consumer::ConnectRequest;
    use super::*;

    /// A consumer with nothing of its own, so that the sizes below are
    /// Kiln's.
    struct Quiet;

    impl Consumer for Quiet {
        type Message = Value;

        async fn connect(_: &ConnectRequest) -> Result<Self, crate::Error> {
            Ok(Quiet)
        }

        async fn receive(&mut self, _: &Socket, _: Value) -> Value {
            Value::Null
        }
    }

    fn serve_size<'a, F: Future>(
        _: impl FnOnce(SplitStream<WebSocket>, Quiet, &'a Socket) -> F,
    ) -> usize {
        size_of::<F>()
    }

    fn write_size<'a, F: Future>(_: impl FnOnce(Sink, &'a ConnHandle, usize) -> F) -> usize {
        size_of::<F>()
    }

    fn run_size<F: Future>(
        _: impl FnOnce(WebSocket, Quiet, Arc<Hub>, OwnedSemaphorePermit) -> F,
    ) -> usize {
        size_of::<F>()
    }

    /// Every idle connection holds its task's future: what it keeps between
    /// frames is most of what a connection costs beside its read buffer
    /// (`benchmarks/realtime-scale`), so its size is watched here.
    #[test]
    fn an_idle_connection_keeps_a_small_future() {
        let (serve, write, run) = (
            serve_size(serve::<Quiet>),
            write_size(write),
            run_size(run::<Quiet>),
        );
        eprintln!("serve {serve} B, write {write} B, run {run} B");
        assert!(run <= 2048, "serve {serve} B, write {write} B, run {run} B");
    }
}
