//! [`RedisLayer`]: the channel layer on a Redis server shared by every node.
//!
//! Each room has, under the layer's key prefix (`kiln:` by default, so two
//! projects can share a server):
//!
//! - `<prefix>room:{<room>}:seq`, the counter that assigns message ids;
//! - `<prefix>room:{<room>}:born`, where that counter started: the Redis
//!   server's clock in milliseconds times 1,000 when the room's first message
//!   came, as the in-process layer does, so that a room whose keys the server
//!   lost (a restart without persistence, a flush, an eviction) gives ids
//!   above the ones its clients saw, and an id from before is answered
//!   [`History::Gone`] rather than with a history that only looks complete;
//! - `<prefix>room:{<room>}:history`, a stream whose entry ids are the
//!   message ids (`<id>-0`), trimmed to the `keep` newest;
//! - `<prefix>room:{<room>}:dropped`, the id of the newest message trimmed
//!   away, so that `history_after` can answer [`History::Gone`];
//! - `<prefix>room:{<room>}:presence` (a hash of entry values) and
//!   `…:presence:expiry` (a sorted set of the same entries by expiry time);
//! - the pub/sub channel `<prefix>room:{<room>}` for live messages.
//!
//! Publishing is one Lua script (counter, history, trim and `PUBLISH`), so ids
//! and history order agree even with many nodes publishing at once; the
//! `{room}` hash tag keeps a room's keys in one cluster slot. Expiry times are
//! taken from the Redis server's clock, so nodes with skewed clocks agree.
//!
//! Every subscription of a layer shares one RESP3 connection: the first local
//! subscriber of a room sends `SUBSCRIBE`, the last one to leave sends
//! `UNSUBSCRIBE`, and incoming messages are fanned out to local subscribers
//! through a bounded broadcast buffer per room.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ProtocolVersion, PushInfo, PushKind, Script, Value};
use tokio::sync::broadcast;

use super::layer::{ChannelLayer, Envelope, History, KnownIds, LayerError, MessageId, next_live};
use super::lock;

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "kiln:";

/// How many messages a slow local subscriber may lag behind before it skips.
const SUBSCRIBER_BUFFER: usize = 1024;

/// Longest wait for Redis to accept a connection or answer a command.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the room's counter from the server's clock when it has none (see
/// the module docs). Then, for each payload from `ARGV[3]` on, in order:
/// assigns the id, appends to the history stream (recording what the trim
/// drops) and publishes `<id>:<payload>` on the room's channel `ARGV[2]`,
/// keeping `ARGV[1]` messages. Returns the ids. One call publishes a whole
/// batch, atomically, in one round trip.
const PUBLISH: &str = r"
local keep = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local born = string.format('%d', tonumber(t[1]) * 1000000 + math.floor(tonumber(t[2]) / 1000) * 1000)
  redis.call('SET', KEYS[1], born)
  redis.call('SET', KEYS[4], born)
end
local ids = {}
for i = 3, #ARGV do
  local id = redis.call('INCR', KEYS[1])
  local sid = string.format('%d', id)
  if keep == 0 then
    redis.call('SET', KEYS[3], sid)
  else
    local excess = redis.call('XLEN', KEYS[2]) + 1 - keep
    if excess > 0 then
      local gone = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', excess)
      redis.call('SET', KEYS[3], string.match(gone[#gone][1], '^(%d+)'))
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', keep, sid .. '-0', 'p', ARGV[i])
  end
  redis.call('PUBLISH', ARGV[2], sid .. ':' .. ARGV[i])
  ids[#ids + 1] = id
end
if keep == 0 then redis.call('DEL', KEYS[2]) end
return ids
";

/// The dropped-through id, where the ids started, the newest id and the
/// entries from `ARGV[1]` on, read together.
const HISTORY: &str = r"
local function id(key) return redis.call('GET', key) or '0' end
return {id(KEYS[2]), id(KEYS[3]), id(KEYS[4]), redis.call('XRANGE', KEYS[1], ARGV[1], '+')}
";

/// Sets an entry with its expiry on the server's clock; both keys live at
/// least as long as their longest-lived entry, so an abandoned room vanishes.
const PRESENCE_SET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return 1
";

/// Prunes expired entries, then returns the rest as a flat key/value list.
const PRESENCE_LIST: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, key in ipairs(expired) do redis.call('HDEL', KEYS[1], key) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('HGETALL', KEYS[1])
";

/// The channel layer on Redis; see the [module docs](self).
pub struct RedisLayer {
    prefix: String,
    commands: ConnectionManager,
    live: Arc<Live>,
    scripts: Scripts,
}

/// The shared subscribing connection and the local subscribers it feeds;
/// shared with every [`Subscription`], which may outlive a borrow of the
/// layer.
struct Live {
    url: String,
    pubsub: ConnectionManager,
    /// Serialises `SUBSCRIBE`/`UNSUBSCRIBE`, so that a subscriber never sees
    /// its room half-subscribed. A Tokio mutex: it is held across the command.
    subscribing: tokio::sync::Mutex<()>,
    rooms: Arc<Registry>,
}

/// The local subscribers of each subscribed channel. A std mutex: it is
/// taken by Redis's push callback, which must not block, and never held
/// across an await.
type Registry = Mutex<Rooms>;

/// Channel name -> (room name, the room's local fan-out).
type Rooms = HashMap<Vec<u8>, (String, broadcast::Sender<Envelope>)>;

/// A history stream entry: its id (`<message id>-0`) and fields (`p`, payload).
type StreamEntry = (String, Vec<Vec<u8>>);

struct Scripts {
    publish: Script,
    history: Script,
    presence_set: Script,
    presence_list: Script,
}

impl fmt::Debug for RedisLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLayer")
            .field("url", &self.live.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLayer {
    /// Connects to the Redis server at `url` (`redis://host:port/db`) with
    /// keys and channels under `prefix` (`kiln:` in [`connect`]).
    ///
    /// # Errors
    ///
    /// [`LayerError`] naming the URL when it is not a Redis URL or the
    /// server does not answer within a few seconds.
    ///
    /// [`connect`]: super::connect
    pub async fn connect(url: &str, prefix: &str) -> Result<Arc<Self>, LayerError> {
        let masked = crate::db::mask_password(url);
        let fail = |action: &str, error: &dyn fmt::Display| {
            LayerError::failed("redis", &masked, action, error).hint(
                "check that Redis runs there \
                     (`redis-cli -u <url> ping`) or change channel_layer",
            )
        };
        let client = redis::Client::open(url).map_err(|error| fail("open the URL", &error))?;
        // Push messages (pub/sub) need RESP3 on the subscribing connection.
        let info = client.get_connection_info().clone();
        let resp3 = info.clone().set_redis_settings(
            info.redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3),
        );
        let pubsub_client =
            redis::Client::open(resp3).map_err(|error| fail("open the URL", &error))?;

        let rooms: Arc<Registry> = Arc::default();
        let dispatch = Arc::clone(&rooms);
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT))
                .set_number_of_retries(1)
        };
        let pubsub_config =
            config()
                .set_automatic_resubscription()
                .set_push_sender(move |push: PushInfo| {
                    deliver(&dispatch, push);
                    Ok::<(), redis::aio::SendError>(())
                });
        let connect = async {
            let commands = ConnectionManager::new_with_config(client, config()).await?;
            let pubsub = ConnectionManager::new_with_config(pubsub_client, pubsub_config).await?;
            Ok::<_, redis::RedisError>((commands, pubsub))
        };
        let (commands, pubsub) = match tokio::time::timeout(TIMEOUT * 2, connect).await {
            Ok(Ok(connections)) => connections,
            Ok(Err(error)) => return Err(fail("connect", &error)),
            Err(_) => return Err(fail("connect", &"no answer within 4 s")),
        };
        Ok(Arc::new(Self {
            live: Arc::new(Live {
                url: masked,
                pubsub,
                subscribing: tokio::sync::Mutex::new(()),
                rooms,
            }),
            prefix: prefix.to_owned(),
            commands,
            scripts: Scripts {
                publish: Script::new(PUBLISH),
                history: Script::new(HISTORY),
                presence_set: Script::new(PRESENCE_SET),
                presence_list: Script::new(PRESENCE_LIST),
            },
        }))
    }

    fn key(&self, room: &str, suffix: &str) -> String {
        format!("{}room:{{{room}}}:{suffix}", self.prefix)
    }

    fn channel(&self, room: &str) -> String {
        format!("{}room:{{{room}}}", self.prefix)
    }

    fn failed(&self, action: &str, error: impl fmt::Display) -> LayerError {
        self.live.failed(action, error)
    }

    /// Publishes `payloads` to `room` in one script call; their ids in order.
    async fn publish_all(
        &self,
        room: &str,
        payloads: &[Bytes],
        keep: usize,
    ) -> Result<Vec<MessageId>, LayerError> {
        let mut invocation = self.scripts.publish.prepare_invoke();
        invocation
            .key(self.key(room, "seq"))
            .key(self.key(room, "history"))
            .key(self.key(room, "dropped"))
            .key(self.key(room, "born"))
            .arg(keep)
            .arg(self.channel(room));
        for payload in payloads {
            invocation.arg(payload.as_ref());
        }
        invocation
            .invoke_async(&mut self.commands.clone())
            .await
            .map_err(|error| self.failed(&format!("publish to room {room:?}"), error))
    }
}

impl Live {
    fn failed(&self, action: &str, error: impl fmt::Display) -> LayerError {
        LayerError::failed("redis", &self.url, action, error)
    }

    async fn subscribe(
        self: &Arc<Self>,
        room: &str,
        channel: String,
    ) -> Result<Subscription, LayerError> {
        let channel = channel.into_bytes();
        let _guard = self.subscribing.lock().await;
        let existing = lock(&self.rooms)
            .get(&channel)
            .map(|(_, sender)| sender.subscribe());
        let receiver = match existing {
            Some(receiver) => receiver,
            None => {
                let (sender, receiver) = broadcast::channel(SUBSCRIBER_BUFFER);
                lock(&self.rooms).insert(channel.clone(), (room.to_owned(), sender));
                if let Err(error) = self.pubsub.clone().subscribe(&channel).await {
                    lock(&self.rooms).remove(&channel);
                    return Err(self.failed(&format!("subscribe to room {room:?}"), error));
                }
                receiver
            }
        };
        Ok(Subscription {
            live: Arc::clone(self),
            channel,
            room: room.to_owned(),
            receiver: Some(receiver),
        })
    }

    /// Unsubscribes from `channel` when its last local subscriber has gone.
    async fn release(&self, channel: Vec<u8>) {
        let _guard = self.subscribing.lock().await;
        let unused = {
            let mut rooms = lock(&self.rooms);
            let unused = rooms
                .get(&channel)
                .is_some_and(|(_, sender)| sender.receiver_count() == 0);
            if unused {
                rooms.remove(&channel);
            }
            unused
        };
        if unused && let Err(error) = self.pubsub.clone().unsubscribe(&channel).await {
            // The registry no longer routes the channel, so a leftover
            // subscription only costs traffic until the next reconnect.
            tracing::warn!(%error, "redis channel layer: UNSUBSCRIBE failed");
        }
    }
}

/// Routes one push message (`[channel, "<id>:<payload>"]`) to the room's
/// local subscribers; anything else (confirmations, disconnects) is ignored.
fn deliver(rooms: &Registry, push: PushInfo) {
    if push.kind != PushKind::Message {
        return;
    }
    let [Value::BulkString(channel), Value::BulkString(message)] = push.data.as_slice() else {
        return;
    };
    let Some((id, payload)) = parse_message(message) else {
        tracing::warn!("redis channel layer: a message without an id on its channel");
        return;
    };
    if let Some((room, sender)) = lock(rooms).get(channel.as_slice()) {
        // Lagging receivers skip; nobody listening is not an error.
        let _ = sender.send(Envelope {
            room: room.clone(),
            id,
            payload: Bytes::copy_from_slice(payload),
        });
    }
}

fn parse_message(message: &[u8]) -> Option<(MessageId, &[u8])> {
    let colon = message.iter().position(|&byte| byte == b':')?;
    let id = std::str::from_utf8(&message[..colon]).ok()?.parse().ok()?;
    Some((id, &message[colon + 1..]))
}

/// One local subscriber; dropping it lets the layer unsubscribe the room.
struct Subscription {
    live: Arc<Live>,
    channel: Vec<u8>,
    room: String,
    receiver: Option<broadcast::Receiver<Envelope>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The receiver must be gone before the count is read.
        drop(self.receiver.take());
        let live = Arc::clone(&self.live);
        let channel = std::mem::take(&mut self.channel);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { live.release(channel).await });
        }
    }
}

impl ChannelLayer for RedisLayer {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish<'a>(
        &'a self,
        room: &'a str,
        payload: Bytes,
        keep: usize,
    ) -> BoxFuture<'a, Result<MessageId, LayerError>> {
        Box::pin(async move {
            let ids = self.publish_all(room, &[payload], keep).await?;
            ids.first()
                .copied()
                .ok_or_else(|| self.failed(&format!("publish to room {room:?}"), "no id returned"))
        })
    }

    fn publish_batch<'a>(
        &'a self,
        room: &'a str,
        payloads: Vec<Bytes>,
        keep: usize,
    ) -> BoxFuture<'a, Vec<Result<MessageId, LayerError>>> {
        Box::pin(async move {
            match self.publish_all(room, &payloads, keep).await {
                Ok(ids) if ids.len() == payloads.len() => ids.into_iter().map(Ok).collect(),
                Ok(ids) => {
                    let error =
                        format!("{} ids returned for {} messages", ids.len(), payloads.len());
                    payloads
                        .iter()
                        .map(|_| Err(self.failed(&format!("publish to room {room:?}"), &error)))
                        .collect()
                }
                // One script call: the whole batch failed together.
                Err(error) => payloads.iter().map(|_| Err(error.clone())).collect(),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Envelope>, LayerError>> {
        Box::pin(async move {
            let subscription = self.live.subscribe(room, self.channel(room)).await?;
            let stream = futures_util::stream::unfold(subscription, |mut subscription| async {
                let receiver = subscription.receiver.as_mut()?;
                let envelope = next_live(receiver, "redis", &subscription.room).await?;
                Some((envelope, subscription))
            });
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
            let start = format!("{}-0", after.saturating_add(1));
            let (dropped, born, newest, entries): (String, String, String, Vec<StreamEntry>) = self
                .scripts
                .history
                .key(self.key(room, "history"))
                .key(self.key(room, "dropped"))
                .key(self.key(room, "born"))
                .key(self.key(room, "seq"))
                .arg(start)
                .invoke_async(&mut self.commands.clone())
                .await
                .map_err(|error| self.failed(&action, error))?;
            let parse = |id: String| {
                id.parse::<MessageId>()
                    .map_err(|error| self.failed(&action, error))
            };
            let known = KnownIds {
                dropped_through: parse(dropped)?,
                born_after: parse(born)?,
                newest: parse(newest)?,
            };
            if known.lost_after(after) {
                return Ok(History::Gone);
            }
            let mut messages = Vec::with_capacity(entries.len());
            for (entry_id, mut fields) in entries {
                let id = entry_id
                    .split('-')
                    .next()
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| self.failed(&action, format!("bad entry id {entry_id:?}")))?;
                // Fields are `["p", payload]`.
                let payload = fields.pop().unwrap_or_default();
                messages.push(Envelope {
                    room: room.to_owned(),
                    id,
                    payload: Bytes::from(payload),
                });
            }
            Ok(History::Messages(messages))
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
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let _: i64 = self
                .scripts
                .presence_set
                .key(self.key(room, "presence"))
                .key(self.key(room, "presence:expiry"))
                .arg(key)
                .arg(value.as_ref())
                .arg(ttl_ms)
                .invoke_async(&mut self.commands.clone())
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
            let () = redis::pipe()
                .atomic()
                .hdel(self.key(room, "presence"), key)
                .ignore()
                .zrem(self.key(room, "presence:expiry"), key)
                .ignore()
                .query_async(&mut self.commands.clone())
                .await
                .map_err(|error| {
                    self.failed(&format!("remove presence in room {room:?}"), error)
                })?;
            Ok(())
        })
    }

    fn presence_list<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Bytes)>, LayerError>> {
        Box::pin(async move {
            let entries: Vec<(String, Vec<u8>)> = self
                .scripts
                .presence_list
                .key(self.key(room, "presence"))
                .key(self.key(room, "presence:expiry"))
                .invoke_async(&mut self.commands.clone())
                .await
                .map_err(|error| self.failed(&format!("list presence in room {room:?}"), error))?;
            let mut entries: Vec<(String, Bytes)> = entries
                .into_iter()
                .map(|(key, value)| (key, Bytes::from(value)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(entries)
        })
    }
}
