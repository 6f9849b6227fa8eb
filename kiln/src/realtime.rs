//! Real-time: WebSocket consumers, rooms, presence, acks, recovery, and the
//! channel layer that carries room messages between nodes.
//!
//! - A [`Consumer`] is the app's code for one connection, served by
//!   [`websocket`] as a named route of its app.
//! - Rooms: a connection joins rooms ([`Socket::join`], or the client's
//!   `join` frame); [`Channels`] (an extractor, [`Site::channels`](crate::Site::channels),
//!   [`Socket::channels`]) sends to a room, to all but one connection, or to
//!   one connection on any node.
//! - Presence per room, acks both ways, and recovery of missed messages from
//!   each room's bounded history.
//!
//! The [`layer`] module is the contract every cross-node backend implements
//! (in-process by default; Redis and NATS behind features); everything
//! above it (consumers, rooms, presence diffs, acks, SSE) is backend-neutral.
//! [`connect`] opens the backend that the `channel_layer` setting names. The
//! wire protocol, close codes and delivery semantics are in
//! `docs/topics/realtime.md`.
//!
//! # Examples
//!
//! A consumer, served as a named route of its app:
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::realtime::{ConnectRequest, Consumer, Socket};
//!
//! struct Echo;
//!
//! impl Consumer for Echo {
//!     type Message = serde_json::Value;
//!
//!     async fn connect(_request: &ConnectRequest) -> Result<Self, kiln::Error> {
//!         Ok(Echo)
//!     }
//!
//!     async fn receive(&mut self, socket: &Socket, message: serde_json::Value) -> serde_json::Value {
//!         let _ = socket.send("echo", &message);
//!         serde_json::Value::Null
//!     }
//! }
//!
//! let app = App::new("echo").route("/ws/", "socket", kiln::realtime::websocket::<Echo>());
//! # let _ = app;
//! ```
//!
//! The layer underneath, used directly:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kiln::realtime::LayerError> {
//! use futures_util::StreamExt;
//!
//! let layer = kiln::realtime::connect("memory://").await?;
//! let mut live = layer.subscribe("lobby").await?;
//! let id = layer.publish("lobby", "hello".into(), 100).await?;
//! assert_eq!(live.next().await.map(|message| message.id), Some(id));
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

mod connection;
mod consumer;
pub mod layer;
#[cfg(feature = "nats")]
pub mod nats_layer;
mod presence;
mod protocol;
mod queue;
pub(crate) mod rate;
#[cfg(feature = "redis")]
pub mod redis_layer;
mod rooms;
#[cfg(feature = "socketio")]
pub mod socketio;
pub mod sse;

pub use connection::Socket;
pub use consumer::{ConnectRequest, Consumer, websocket};
pub use layer::{ChannelLayer, Envelope, History, InProcessLayer, LayerError, MessageId};
#[cfg(feature = "nats")]
pub use nats_layer::NatsLayer;
pub use presence::{Presence, PresenceEntry};
pub use protocol::close;
#[cfg(feature = "redis")]
pub use redis_layer::RedisLayer;
pub use rooms::{Channels, SendError};

/// Locks one of the module's std mutexes (maps and queues that nothing
/// awaits while holding). A poisoned lock only means another task panicked
/// mid-update of plain data, which stays usable.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The URL schemes [`connect`] understands, for settings validation.
pub const SCHEMES: [&str; 4] = ["memory://", "redis://", "rediss://", "nats://"];

/// Opens the channel layer at `url`:
///
/// - `memory://`: a new [`InProcessLayer`] (one process is the whole
///   project; each call gives a separate layer, so open it once);
/// - `redis://host:port/db` (or `rediss://`): a `RedisLayer` (cargo feature
///   `redis`);
/// - `nats://host:port`: a `NatsLayer` on JetStream (cargo feature `nats`).
///
/// A `prefix` query parameter (`redis://127.0.0.1/?prefix=shop:`,
/// `nats://127.0.0.1?prefix=shop`) namespaces the keys, channels, subjects
/// and streams, so two projects can share a server; the default is `kiln:`
/// for Redis and `kiln` for NATS.
///
/// # Errors
///
/// [`LayerError`] for an unknown scheme, a backend this build lacks (with
/// the cargo feature to add), or a server that cannot be reached (naming the
/// URL, password masked).
pub async fn connect(url: &str) -> Result<Arc<dyn ChannelLayer>, LayerError> {
    let (url, prefix) = split_prefix(url);
    // Only the Redis and NATS layers take a prefix.
    #[cfg(not(any(feature = "redis", feature = "nats")))]
    drop(prefix);
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "memory" => Ok(InProcessLayer::new()),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(RedisLayer::connect(
            &url,
            prefix.as_deref().unwrap_or(redis_layer::DEFAULT_PREFIX),
        )
        .await?),
        #[cfg(feature = "nats")]
        "nats" => Ok(NatsLayer::connect(
            &url,
            prefix.as_deref().unwrap_or(nats_layer::DEFAULT_PREFIX),
        )
        .await?),
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(missing_feature(&url, "redis")),
        #[cfg(not(feature = "nats"))]
        "nats" => Err(missing_feature(&url, "nats")),
        _ => Err(LayerError::new(
            "connect",
            format!(
                "unknown channel layer URL {:?}; use memory://, redis://host:port or \
                 nats://host:port",
                crate::db::mask_password(&url)
            ),
        )),
    }
}

#[cfg(not(all(feature = "redis", feature = "nats")))]
fn missing_feature(url: &str, feature: &str) -> LayerError {
    LayerError::new(
        "connect",
        format!(
            "channel_layer {:?} needs Kiln's `{feature}` cargo feature, which this build \
             lacks; build with --features {feature} (features = [\"{feature}\"] on the kiln \
             dependency) or use \"memory://\"",
            crate::db::mask_password(url)
        ),
    )
}

/// Checks `channel_layer` at boot: a known scheme whose backend this build
/// has. Whether the server answers is only known when connecting.
pub(crate) fn check_settings(
    settings: &crate::Settings,
) -> Result<(), (&'static str, String, &'static str)> {
    let url = &settings.channel_layer;
    let shown = crate::db::mask_password(url);
    if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return Err((
            "channel_layer",
            format!("`{shown}` is not a channel layer URL"),
            "use memory://, redis://host:port or nats://host:port",
        ));
    }
    if url.starts_with("redis") && !cfg!(feature = "redis") {
        return Err((
            "channel_layer",
            format!("`{shown}` needs Kiln's `redis` cargo feature, which this build lacks"),
            "build with --features redis (features = [\"redis\"] on the kiln dependency), or use memory://",
        ));
    }
    if url.starts_with("nats") && !cfg!(feature = "nats") {
        return Err((
            "channel_layer",
            format!("`{shown}` needs Kiln's `nats` cargo feature, which this build lacks"),
            "build with --features nats (features = [\"nats\"] on the kiln dependency), or use memory://",
        ));
    }
    Ok(())
}

/// Takes the `prefix` query parameter out of `url`, which the backends'
/// own URL parsers would not understand.
fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("prefix=") {
            Some(value) => {
                prefix = Some(
                    percent_encoding::percent_decode_str(value)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), prefix)
    } else {
        (format!("{base}?{}", rest.join("&")), prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_taken_out_of_the_url() {
        assert_eq!(
            split_prefix("redis://h:1/0?prefix=shop%3A&protocol=resp3"),
            (
                "redis://h:1/0?protocol=resp3".to_owned(),
                Some("shop:".to_owned())
            )
        );
        assert_eq!(split_prefix("nats://h:1"), ("nats://h:1".to_owned(), None));
        assert_eq!(
            split_prefix("nats://h:1?prefix=a"),
            ("nats://h:1".to_owned(), Some("a".to_owned()))
        );
    }

    #[test]
    fn settings_reject_an_unknown_channel_layer() {
        let error = crate::Settings::from_toml("channel_layer = \"kafka://x\"")
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("channel_layer"), "{error}");
        assert!(error.contains("nats://host:port"), "{error}");
        let settings = crate::Settings::from_toml("channel_layer = \"nats://127.0.0.1:4222\"");
        assert_eq!(
            settings
                .map(|settings| settings.channel_layer)
                .ok()
                .as_deref(),
            Some("nats://127.0.0.1:4222").filter(|_| cfg!(feature = "nats"))
        );
    }

    #[tokio::test]
    async fn unknown_scheme_is_a_clear_error() {
        let error = connect("kafka://127.0.0.1:9092")
            .await
            .err()
            .map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.contains("unknown channel layer URL"), "{error}");
        assert!(error.contains("memory://"), "{error}");
    }
}
