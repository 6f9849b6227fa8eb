//! [`NatsLayer`]: the channel layer on a NATS server with JetStream.
//!
//! - **Ids and history**: each room has a JetStream stream of its own
//!   (`<prefix>_room_<token>`, in memory, on subject
//!   `<prefix>.history.<token>`). A message's id is its sequence in that
//!   stream plus the stream's *base*, so ids are strictly increasing per room
//!   whichever node publishes, and the stream's first sequence says exactly
//!   what left the window: every id below it is gone. The base is the clock
//!   (milliseconds times 1,000, as the in-process layer's ids) when the
//!   stream was made, kept in the stream's description (NATS 2.9 has no
//!   `first_seq`): a room whose stream the server lost (a restart, since the
//!   streams are in memory) gives ids above those its clients saw, and an id
//!   from before is answered [`History::Gone`] rather than with a history
//!   that only looks complete. One stream for all rooms was
//!   rejected: its sequence is shared by every room, so nothing tells
//!   "another room's message" from "one of ours that was trimmed" and
//!   `history_after` could not answer [`History::Gone`] reliably.
//! - **Live messages**: after JetStream acknowledges, the message goes out on
//!   the core subject `<prefix>.room.<token>` with its id in a `Kiln-Id`
//!   header; every node's subscription to a room is a plain core
//!   subscription, all multiplexed on the layer's one connection.
//! - **Presence**: a JetStream key/value bucket `<prefix>_presence`, key
//!   `<room token>.<entry token>`, whose value carries its own expiry time
//!   (the NATS 2.9 servers this targets have no per-key TTL; the bucket's
//!   `max_age` of a day only reclaims the storage of abandoned entries).
//!   Expiry is judged on each node's clock, so nodes should run NTP.
//!
//! Room names become subject tokens by keeping ASCII letters and digits and
//! writing every other byte as `_XX` (hex), so dots, wildcards (`*`, `>`)
//! and spaces are safe; a token longer than 64 characters is replaced by
//! `-` and the SHA-256 of the name, which no escaped name can start with.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, stream};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sha2::Digest;
use tokio::sync::broadcast;

use super::layer::{
    ChannelLayer, Envelope, History, KnownIds, LayerError, MessageId, first_id, next_live,
};
use super::lock;

/// The subject and stream prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "kiln";

/// How many messages a slow local subscriber may lag behind before the
/// client drops messages for it (and only for it).
const SUBSCRIBER_BUFFER: usize = 1024;

/// Longest wait for the server to accept a connection or answer a request.
const TIMEOUT: Duration = Duration::from_secs(4);

/// The header carrying a live message's id.
const ID_HEADER: &str = "Kiln-Id";

/// A room stream's description: this, then the base of its ids.
const BASE_PREFIX: &str = "kiln room, ids from sequence + ";

/// Escaped names longer than this are hashed instead (stream names become
/// directory names on the server, and subjects travel with every message).
const MAX_TOKEN: usize = 64;

/// How long the presence bucket keeps an entry nobody refreshed or removed.
const PRESENCE_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The channel layer on NATS; see the [module docs](self).
pub struct NatsLayer {
    url: String,
    prefix: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    presence: kv::Store,
    presence_stream: stream::Stream,
    /// The streams of rooms this layer has published to, by token, so a
    /// publish costs no stream lookup; emptied when the client reconnects,
    /// since a restarted server has lost them (and another node may have
    /// made them again, with another base). A std mutex: never held across
    /// an await.
    streams: Arc<Mutex<HashMap<String, stream::Stream>>>,
}

impl fmt::Debug for NatsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsLayer")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NatsLayer {
    /// Connects to the NATS server at `url` (`nats://host:port`, JetStream
    /// enabled) with subjects, streams and the presence bucket under
    /// `prefix` (`kiln` in [`connect`]).
    ///
    /// # Errors
    ///
    /// [`LayerError`] naming the URL when the prefix is not letters, digits,
    /// `-` or `_`, the server does not answer, or JetStream is not enabled.
    ///
    /// [`connect`]: super::connect
    pub async fn connect(url: &str, prefix: &str) -> Result<Arc<Self>, LayerError> {
        let masked = crate::db::mask_password(url);
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(LayerError::new(
                "nats",
                format!("prefix {prefix:?} of {masked}: use letters, digits, `-` or `_`"),
            ));
        }
        let fail = |action: &str, error: &dyn fmt::Display| {
            LayerError::failed("nats", &masked, action, error).hint(
                "check that nats-server runs there \
                     with JetStream (`nats-server -js`) or change channel_layer",
            )
        };
        let streams: Arc<Mutex<HashMap<String, stream::Stream>>> = Arc::default();
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(TIMEOUT)
            .subscription_capacity(SUBSCRIBER_BUFFER)
            .event_callback({
                let streams = Arc::clone(&streams);
                move |event| {
                    if matches!(event, async_nats::Event::Connected) {
                        lock(&streams).clear();
                    }
                    async move { log_event(&event) }
                }
            });
        let client = match tokio::time::timeout(TIMEOUT, options.connect(url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(fail("connect", &error)),
            Err(_) => return Err(fail("connect", &"no answer within 4 s")),
        };
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(TIMEOUT);
        let bucket = format!("{prefix}_presence");
        // The bucket's stream is made here rather than by
        // `create_key_value`, whose account query fails on NATS 2.9; the
        // settings are the ones that call would use for one value per key.
        let presence_stream = jetstream
            .get_or_create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age: PRESENCE_MAX_AGE,
                storage: stream::StorageType::Memory,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|error| fail("create the presence bucket", &error))?;
        let presence = jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|error| fail("open the presence bucket", &error))?;
        Ok(Arc::new(Self {
            url: masked,
            prefix: prefix.to_owned(),
            client,
            jetstream,
            presence,
            presence_stream,
            streams,
        }))
    }

    fn failed(&self, action: &str, error: impl fmt::Display) -> LayerError {
        LayerError::failed("nats", &self.url, action, error)
    }

    fn stream_name(&self, token: &str) -> String {
        format!("{}_room_{token}", self.prefix)
    }

    /// The room's stream, created on first use with its ids' base.
    async fn room_stream(&self, room: &str, token: &str) -> Result<stream::Stream, LayerError> {
        let name = self.stream_name(token);
        let subject = format!("{}.history.{token}", self.prefix);
        let base = first_id(SystemTime::now());
        let created = self
            .jetstream
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject],
                storage: stream::StorageType::Memory,
                description: Some(format!("{BASE_PREFIX}{base}")),
                ..Default::default()
            })
            .await;
        match created {
            Ok(stream) => Ok(stream),
            // Another node made it (with its own base) in between.
            Err(error) => self
                .jetstream
                .get_stream(name)
                .await
                .map_err(|_| self.failed(&format!("open the stream of room {room:?}"), error)),
        }
    }

    /// The room's stream: cached, or created (or found) and cached; `fresh`
    /// skips the cache, after a failure that may mean it was deleted.
    async fn cached_stream(
        &self,
        room: &str,
        token: &str,
        fresh: bool,
    ) -> Result<stream::Stream, LayerError> {
        if !fresh && let Some(stream) = lock(&self.streams).get(token) {
            return Ok(stream.clone());
        }
        let stream = self.room_stream(room, token).await?;
        lock(&self.streams).insert(token.to_owned(), stream.clone());
        Ok(stream)
    }

    /// Appends `payloads` to the room's stream, all in flight together,
    /// and returns the sequence each got (not yet an id), in order.
    async fn append(
        &self,
        room: &str,
        token: &str,
        payloads: &[Bytes],
    ) -> Vec<Result<u64, LayerError>> {
        let subject = format!("{}.history.{token}", self.prefix);
        let action = format!("publish to room {room:?}");
        let mut acks = Vec::with_capacity(payloads.len());
        for payload in payloads {
            acks.push(
                self.jetstream
                    .publish(subject.clone(), payload.clone())
                    .await,
            );
        }
        let mut ids = Vec::with_capacity(acks.len());
        for ack in acks {
            ids.push(match ack {
                Ok(ack) => ack
                    .await
                    .map(|ack| ack.sequence)
                    .map_err(|error| self.failed(&action, error)),
                Err(error) => Err(self.failed(&action, error)),
            });
        }
        ids
    }

    /// Publishes `payloads` to `room` in order: appended to its stream, the
    /// stream trimmed to `keep`, then sent live with their ids.
    async fn publish_all(
        &self,
        room: &str,
        payloads: &[Bytes],
        keep: usize,
    ) -> Vec<Result<MessageId, LayerError>> {
        let token = token(room);
        let mut stream = match self.cached_stream(room, &token, false).await {
            Ok(stream) => stream,
            Err(error) => return payloads.iter().map(|_| Err(error.clone())).collect(),
        };
        let mut sequences = self.append(room, &token, payloads).await;
        if sequences.iter().all(Result::is_err) {
            // The stream may have been deleted behind the cache's back.
            stream = match self.cached_stream(room, &token, true).await {
                Ok(stream) => stream,
                Err(error) => return payloads.iter().map(|_| Err(error.clone())).collect(),
            };
            sequences = self.append(room, &token, payloads).await;
        }
        let keep = u64::try_from(keep).unwrap_or(u64::MAX);
        let newest = sequences
            .iter()
            .filter_map(|sequence| sequence.as_ref().ok())
            .max()
            .copied();
        // While fewer than `keep` messages were ever sent, none can be in
        // excess, which spares the purge request. A failed trim only leaves
        // the history longer than `keep` until the next one: the messages
        // still go out live.
        if newest.is_some_and(|newest| newest > keep)
            && let Err(error) = stream.purge().keep(keep).await
        {
            tracing::warn!(target: "kiln::realtime", room, %error, "nats channel layer: trimming the room's history failed");
        }
        let live = format!("{}.room.{token}", self.prefix);
        let base = base(&stream);
        let mut outcomes = Vec::with_capacity(sequences.len());
        for (sequence, payload) in sequences.into_iter().zip(payloads) {
            outcomes.push(match sequence {
                Ok(sequence) => {
                    let id = base + sequence;
                    let mut headers = HeaderMap::new();
                    headers.insert(ID_HEADER, id.to_string().as_str());
                    self.client
                        .publish_with_headers(live.clone(), headers, payload.clone())
                        .await
                        .map(|()| id)
                        .map_err(|error| self.failed(&format!("publish to room {room:?}"), error))
                }
                Err(error) => Err(error),
            });
        }
        outcomes
    }

    fn presence_key(room: &str, key: &str) -> String {
        format!("{}.{}", token(room), token(key))
    }
}

/// What a room stream's sequences are added to, to make ids: from its
/// description; 0 for a stream made without one.
fn base(stream: &stream::Stream) -> MessageId {
    stream
        .cached_info()
        .config
        .description
        .as_deref()
        .and_then(|description| description.strip_prefix(BASE_PREFIX))
        .and_then(|base| base.parse().ok())
        .unwrap_or(0)
}

/// Moves one room subscription's messages into `sender` until the
/// subscription ends (which ends the room's stream) or the stream is
/// dropped (which unsubscribes).
async fn forward(
    mut subscriber: async_nats::Subscriber,
    sender: broadcast::Sender<Envelope>,
    room: String,
) {
    loop {
        let message = tokio::select! {
            message = subscriber.next() => message,
            () = sender.closed() => return,
        };
        let Some(message) = message else { return };
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(ID_HEADER))
            .and_then(|id| id.as_str().parse().ok());
        let Some(id) = id else {
            tracing::warn!(target: "kiln::realtime", room, "nats channel layer: a message without an id on the room's subject");
            continue;
        };
        let envelope = Envelope {
            room: room.clone(),
            id,
            payload: message.payload,
        };
        if sender.send(envelope).is_err() {
            return;
        }
    }
}

/// Logs what the NATS client reports that costs live messages.
fn log_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::SlowConsumer(subscription) => tracing::warn!(
            target: "kiln::realtime",
            backend = "nats",
            subscription,
            "the NATS client dropped messages of a room subscription whose buffer \
             ({SUBSCRIBER_BUFFER} messages) was full: this node's members of the room miss them"
        ),
        async_nats::Event::Disconnected => tracing::warn!(
            target: "kiln::realtime",
            backend = "nats",
            "disconnected from NATS: live room messages published until it reconnects do not reach this node"
        ),
        async_nats::Event::Connected => {
            tracing::info!(target: "kiln::realtime", backend = "nats", "connected to NATS");
        }
        _ => {}
    }
}

/// `name` as one subject token; see the [module docs](self).
fn token(name: &str) -> String {
    use std::fmt::Write as _;
    if name.is_empty() {
        return "_".to_owned();
    }
    let mut token = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() {
            token.push(char::from(byte));
        } else {
            let _ = write!(token, "_{byte:02X}");
        }
    }
    if token.len() > MAX_TOKEN {
        let digest = sha2::Sha256::digest(name.as_bytes());
        token = String::from("-");
        for byte in digest {
            let _ = write!(token, "{byte:02x}");
        }
    }
    token
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A presence value: expiry (ms since the epoch), the entry's key (tokens
/// cannot always be read back) and the value.
fn encode_presence(expires: u64, key: &str, value: &[u8]) -> Bytes {
    let mut buffer = BytesMut::with_capacity(12 + key.len() + value.len());
    buffer.put_u64(expires);
    buffer.put_u32(u32::try_from(key.len()).unwrap_or(u32::MAX));
    buffer.put_slice(key.as_bytes());
    buffer.put_slice(value);
    buffer.freeze()
}

fn decode_presence(data: &Bytes) -> Option<(u64, String, Bytes)> {
    let expires = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
    let length = usize::try_from(u32::from_be_bytes(data.get(8..12)?.try_into().ok()?)).ok()?;
    let key = std::str::from_utf8(data.get(12..12 + length)?)
        .ok()?
        .to_owned();
    Some((expires, key, data.slice(12 + length..)))
}

impl ChannelLayer for NatsLayer {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn publish<'a>(
        &'a self,
        room: &'a str,
        payload: Bytes,
        keep: usize,
    ) -> BoxFuture<'a, Result<MessageId, LayerError>> {
        Box::pin(async move {
            self.publish_all(room, &[payload], keep)
                .await
                .pop()
                .unwrap_or_else(|| {
                    Err(self.failed(&format!("publish to room {room:?}"), "no outcome"))
                })
        })
    }

    fn publish_batch<'a>(
        &'a self,
        room: &'a str,
        payloads: Vec<Bytes>,
        keep: usize,
    ) -> BoxFuture<'a, Vec<Result<MessageId, LayerError>>> {
        Box::pin(async move { self.publish_all(room, &payloads, keep).await })
    }

    fn subscribe<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Envelope>, LayerError>> {
        Box::pin(async move {
            let action = format!("subscribe to room {room:?}");
            let subscriber = self
                .client
                .subscribe(format!("{}.room.{}", self.prefix, token(room)))
                .await
                .map_err(|error| self.failed(&action, error))?;
            // The server has the subscription once it answers a ping sent
            // after it, so nothing published from now on is missed.
            self.client
                .flush()
                .await
                .map_err(|error| self.failed(&action, error))?;
            // A task of its own moves the messages out of the client's
            // buffer into the room's: a subscriber that falls behind then
            // skips in `next_live`, which counts and logs it, rather than in
            // the client, which cannot say how many it dropped.
            let (sender, receiver) = broadcast::channel(SUBSCRIBER_BUFFER);
            tokio::spawn(forward(subscriber, sender, room.to_owned()));
            let stream = futures_util::stream::unfold(
                (receiver, room.to_owned()),
                |(mut receiver, room)| async move {
                    let envelope = next_live(&mut receiver, "nats", &room).await?;
                    Some((envelope, (receiver, room)))
                },
            );
            Ok(Box::pin(stream) as BoxStream<'static, Envelope>)
        })
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: MessageId,
    ) -> BoxFuture<'a, Result<History, LayerError>> {
        Box::pin(async move {
            let action = format!("read the history of room {room:?}");
            let token = token(room);
            let stream = match self.jetstream.get_stream(self.stream_name(&token)).await {
                Ok(stream) => stream,
                // Nothing was ever published to the room, or the server lost
                // it: an id from it is from before, and what followed is
                // unknown.
                Err(error)
                    if matches!(
                        error.kind(),
                        jetstream::context::GetStreamErrorKind::JetStream(ref code)
                            if code.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                    ) =>
                {
                    return Ok(if KnownIds::default().lost_after(after) {
                        History::Gone
                    } else {
                        History::Messages(Vec::new())
                    });
                }
                Err(error) => return Err(self.failed(&action, error)),
            };
            let base = base(&stream);
            let state = &stream.cached_info().state;
            // Sequences up to this one have left the window.
            let trimmed = state.first_sequence.saturating_sub(1);
            let known = KnownIds {
                dropped_through: if trimmed > 0 { base + trimmed } else { 0 },
                born_after: base,
                newest: base + state.last_sequence,
            };
            if known.lost_after(after) {
                return Ok(History::Gone);
            }
            let first = after.saturating_add(1).saturating_sub(base).max(1);
            let last = state.last_sequence;
            if state.messages == 0 || first > last {
                return Ok(History::Messages(Vec::new()));
            }
            let fetched: Result<Vec<_>, _> = futures_util::stream::iter(first..=last)
                .map(|sequence| stream.get_raw_message(sequence))
                .buffered(32)
                .try_collect()
                .await;
            match fetched {
                Ok(messages) => Ok(History::Messages(
                    messages
                        .into_iter()
                        .map(|message| Envelope {
                            room: room.to_owned(),
                            id: base + message.sequence,
                            payload: message.payload,
                        })
                        .collect(),
                )),
                // A message that was there a moment ago has been trimmed by
                // a publish in between: the window moved past `after`.
                Err(error)
                    if matches!(error.kind(), stream::RawMessageErrorKind::NoMessageFound) =>
                {
                    Ok(History::Gone)
                }
                Err(error) => Err(self.failed(&action, error)),
            }
        })
    }

    fn presence_set<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let data = encode_presence(now_ms().saturating_add(ttl), key, &value);
            self.presence
                .put(Self::presence_key(room, key), data)
                .await
                .map_err(|error| self.failed(&format!("set presence in room {room:?}"), error))?;
            Ok(())
        })
    }

    fn presence_remove<'a>(
        &'a self,
        room: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            self.presence
                .purge(Self::presence_key(room, key))
                .await
                .map_err(|error| self.failed(&format!("remove presence in room {room:?}"), error))
        })
    }

    fn presence_list<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Bytes)>, LayerError>> {
        Box::pin(async move {
            let action = format!("list presence in room {room:?}");
            let filter = format!("$KV.{}.{}.*", self.presence.name, token(room));
            let subjects: Vec<(String, usize)> = self
                .presence_stream
                .info_with_subjects(&filter)
                .await
                .map_err(|error| self.failed(&action, error))?
                .try_collect()
                .await
                .map_err(|error| self.failed(&action, error))?;
            let prefix = format!("$KV.{}.", self.presence.name);
            let now = now_ms();
            let mut entries = Vec::with_capacity(subjects.len());
            for (subject, _) in subjects {
                let Some(kv_key) = subject.strip_prefix(&prefix) else {
                    continue;
                };
                let data = self
                    .presence
                    .get(kv_key)
                    .await
                    .map_err(|error| self.failed(&action, error))?;
                // Removed entries leave a tombstone, which reads as none.
                let Some((expires, key, value)) = data.as_ref().and_then(decode_presence) else {
                    continue;
                };
                if expires > now {
                    entries.push((key, value));
                } else {
                    // Best effort: the next list prunes it otherwise.
                    let _ = self.presence.purge(kv_key).await;
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(entries)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_become_safe_distinct_tokens() {
        assert_eq!(token("lobby"), "lobby");
        assert_eq!(token("a.b c*>"), "a_2Eb_20c_2A_3E");
        assert_eq!(token(""), "_");
        assert_ne!(token("a_2E"), token("a.")); // `_` itself is escaped
        let long = token(&"x".repeat(100));
        assert!(long.starts_with('-') && long.len() == 65, "{long}");
    }

    #[test]
    fn presence_values_round_trip() {
        let data = encode_presence(42, "node/1", b"alice");
        assert_eq!(
            decode_presence(&data),
            Some((42, "node/1".to_owned(), Bytes::from_static(b"alice")))
        );
        assert_eq!(decode_presence(&Bytes::from_static(b"short")), None);
    }
}
