//! Per-connection rate limits: the token bucket Kiln's WebSockets and
//! Socket.IO connections share (`realtime_rate_limit` messages a second on
//! average, `realtime_rate_burst` at once), and the [`FrameMeter`] that
//! applies it to a WebSocket whose frames Kiln does not read itself.
//!
//! Socket.IO's WebSocket transport is socketioxide's: its frames never pass
//! through Kiln's code, only the bytes do, through the server's connection
//! IO (see `server::ReadTap`). The meter reads the frame headers in those
//! bytes (RFC 6455, section 5.2) and counts each complete data message, the
//! way Kiln's own reader counts a `Message::Text` or `Message::Binary`.
//! Payloads are skipped, never copied.

use std::time::Instant;

/// A token bucket: `rate` messages per second on average, `burst` at once.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes a token; false when there is none (`rate` 0 never limits).
    pub(crate) fn take(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where the meter is in the client's byte stream.
#[cfg(feature = "socketio")]
#[derive(Debug)]
enum Position {
    /// Reading a frame header: `have` of its bytes so far.
    Header { bytes: [u8; 14], have: usize },
    /// Skipping the rest of a frame's payload.
    Payload(u64),
}

/// The start of a frame: no header byte read yet.
#[cfg(feature = "socketio")]
const FRAME_START: Position = Position::Header {
    bytes: [0; 14],
    have: 0,
};

/// Counts the data messages a client sends on a WebSocket, from the raw
/// bytes, against a [`RateLimit`].
#[cfg(feature = "socketio")]
#[derive(Debug)]
pub(crate) struct FrameMeter {
    limit: RateLimit,
    position: Position,
    /// Set once the limit was exceeded or the bytes stopped being frames.
    tripped: bool,
}

/// Why [`FrameMeter::feed`] stopped the connection.
#[cfg(feature = "socketio")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trip {
    /// More messages than the rate limit allows.
    RateLimited,
    /// Bytes that are not a client's WebSocket frames (unmasked, or an
    /// unknown opcode): the meter can no longer count them.
    NotFrames,
}

#[cfg(feature = "socketio")]
impl FrameMeter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            limit: RateLimit::new(rate, burst.max(1)),
            position: FRAME_START,
            tripped: false,
        }
    }

    /// Reads `bytes`, the next ones the client sent; `Err` once the client
    /// went over the limit (and on every later call).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Trip> {
        if self.tripped {
            return Err(Trip::RateLimited);
        }
        while !bytes.is_empty() {
            match &mut self.position {
                Position::Payload(remaining) => {
                    let skip = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *remaining -= u64::try_from(skip).unwrap_or(u64::MAX);
                    bytes = &bytes[skip..];
                    if *remaining == 0 {
                        self.position = FRAME_START;
                    }
                }
                Position::Header {
                    bytes: header,
                    have,
                } => {
                    header[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    let Some(needed) = header_len(&header[..*have]) else {
                        continue;
                    };
                    if *have < needed {
                        continue;
                    }
                    let header = &header[..needed];
                    let opcode = header[0] & 0x0F;
                    let fin = header[0] & 0x80 != 0;
                    // Client frames are masked; data opcodes 0-2, control 8-10.
                    if header[1] & 0x80 == 0 || !matches!(opcode, 0..=2 | 8..=10) {
                        self.tripped = true;
                        return Err(Trip::NotFrames);
                    }
                    if fin && opcode <= 2 && !self.limit.take() {
                        self.tripped = true;
                        return Err(Trip::RateLimited);
                    }
                    let length = payload_len(header);
                    self.position = if length == 0 {
                        FRAME_START
                    } else {
                        Position::Payload(length)
                    };
                }
            }
        }
        Ok(())
    }
}

/// The length of a client frame's header, once its first two bytes are in.
#[cfg(feature = "socketio")]
fn header_len(start: &[u8]) -> Option<usize> {
    let second = *start.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

/// The payload length a complete header announces.
#[cfg(feature = "socketio")]
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => header[2..10]
            .iter()
            .fold(0, |length, &byte| (length << 8) | u64::from(byte)),
        short => u64::from(short),
    }
}

#[cfg(all(test, feature = "socketio"))]
mod tests {
    use super::*;

    /// A masked client frame (the mask is all zeros: the payload is plain).
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            short @ 0..=125 => bytes.push(0x80 | u8::try_from(short).unwrap_or(0)),
            medium @ 126..=65535 => {
                bytes.push(0x80 | 126);
                bytes.extend(u16::try_from(medium).unwrap_or(0).to_be_bytes());
            }
            long => {
                bytes.push(0x80 | 127);
                bytes.extend(u64::try_from(long).unwrap_or(u64::MAX).to_be_bytes());
            }
        }
        bytes.extend([0; 4]);
        bytes.extend(payload);
        bytes
    }

    #[test]
    fn counts_whole_messages_not_control_frames_or_fragments() {
        // A burst of 3: three messages pass, the fourth trips.
        let mut meter = FrameMeter::new(1, 3);
        let mut stream = Vec::new();
        stream.extend(frame(true, 1, b"42[\"a\"]"));
        stream.extend(frame(true, 9, b"")); // a ping
        stream.extend(frame(false, 1, &[b'x'; 300])); // a fragmented message...
        stream.extend(frame(true, 0, &[b'y'; 70_000])); // ...ends here
        stream.extend(frame(true, 2, b"\x01\x02"));
        // Fed in awkward pieces: headers and payloads split across reads.
        for piece in stream.chunks(7) {
            assert_eq!(meter.feed(piece), Ok(()));
        }
        assert_eq!(
            meter.feed(&frame(true, 1, b"one too many")),
            Err(Trip::RateLimited)
        );
        assert_eq!(meter.feed(b""), Err(Trip::RateLimited), "it stays tripped");
    }

    #[test]
    fn bytes_that_are_not_client_frames_trip_it() {
        let mut meter = FrameMeter::new(100, 100);
        // Unmasked, as only a server sends.
        assert_eq!(meter.feed(&[0x81, 0x01, b'x']), Err(Trip::NotFrames));
        let mut meter = FrameMeter::new(100, 100);
        assert_eq!(meter.feed(&[0x83, 0x80, 0, 0, 0, 0]), Err(Trip::NotFrames));
    }

    #[test]
    fn rate_zero_never_limits() {
        let mut meter = FrameMeter::new(0, 1);
        for _ in 0..1000 {
            assert_eq!(meter.feed(&frame(true, 1, b"2")), Ok(()));
        }
    }
}
