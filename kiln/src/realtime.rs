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
//! above it is backend-neutral. The wire protocol, close codes and delivery
//! semantics are in `docs/topics/realtime.md`.
//!
//! # Examples
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

mod connection;
mod consumer;
pub mod layer;
mod presence;
mod protocol;
mod rooms;

pub use connection::Socket;
pub use consumer::{ConnectRequest, Consumer, websocket};
pub use layer::{ChannelLayer, Envelope, History, InProcessLayer, LayerError, MessageId};
pub use presence::{Presence, PresenceEntry};
pub use protocol::close;
pub use rooms::{Channels, SendError};
