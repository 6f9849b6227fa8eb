//! Real-time: WebSocket consumers, rooms, presence, acks, recovery, SSE, and
//! the channel layer that carries room messages between nodes.
//!
//! The [`layer`] module is the contract every cross-node backend implements
//! (in-process by default; Redis and NATS behind features); everything
//! above it (consumers, rooms, presence diffs, acks, SSE) is backend-neutral.

pub mod layer;

pub use layer::{ChannelLayer, Envelope, History, InProcessLayer, LayerError, MessageId};
