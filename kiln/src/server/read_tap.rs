//! A handle on a connection's reads, for the one protocol Kiln serves but
//! does not parse itself: Socket.IO's WebSocket transport, whose frames
//! socketioxide reads from the upgraded connection. Every WebSocket
//! handshake carries its connection's [`ReadTap`]; the Socket.IO endpoint installs a
//! [`FrameMeter`] on it, and from then on the connection's IO (through its
//! slot, see `header_deadline::ReadWatch`) shows the meter every byte the
//! client sends, and the connection is cut when the meter trips (the client
//! went over `realtime_rate_limit`).
//!
//! Without a meter, a read costs one atomic load more.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use crate::realtime::rate::{FrameMeter, Trip};

/// The read side of one connection, in its requests' extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadTap(Arc<OnceLock<Mutex<FrameMeter>>>);

impl ReadTap {
    /// Meters the connection's reads from now on (the first meter stays).
    pub(crate) fn install(&self, meter: FrameMeter) {
        let _ = self.0.set(Mutex::new(meter));
    }

    /// Shows the meter, if one is installed, the bytes just read; `Err`
    /// once it tripped.
    pub(super) fn watch(&self, read: &[u8]) -> io::Result<()> {
        let Some(meter) = self.0.get() else {
            return Ok(());
        };
        let mut meter = meter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Err(trip) = meter.feed(read) else {
            return Ok(());
        };
        let reason = match trip {
            Trip::RateLimited => "the client sent more than realtime_rate_limit allows",
            Trip::NotFrames => "the client sent bytes that are not WebSocket frames",
        };
        tracing::warn!(target: "kiln::realtime", "a Socket.IO WebSocket is cut off: {reason}");
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, reason))
    }
}
