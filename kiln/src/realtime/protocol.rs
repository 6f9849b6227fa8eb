//! The wire protocol: JSON text frames with a `"t"` (type) field, and the
//! close codes Kiln uses. `docs/topics/realtime.md` is the description
//! clients follow; this file is the one place that encodes it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::layer::MessageId;

/// Close codes Kiln sends, beside the standard ones tungstenite uses itself.
pub mod close {
    /// A normal close (the consumer or the server chose to end the connection).
    pub const NORMAL: u16 = 1000;
    /// The client sent more messages than `realtime_rate_limit` allows.
    pub const RATE_LIMITED: u16 = 1008;
    /// A message larger than `realtime_max_message_size`.
    pub const TOO_BIG: u16 = 1009;
    /// Nothing (not even a pong) came from the client within
    /// `realtime_idle_timeout`.
    pub const IDLE_TIMEOUT: u16 = 4000;
    /// The connection's send queue (`realtime_send_queue`) was full: the
    /// client reads slower than messages arrive for it.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// The server is shutting down or the channel layer failed.
    pub const GOING_AWAY: u16 = 1001;
}

/// A frame a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    /// Join a room, optionally recovering what came after `last_id`.
    Join {
        room: String,
        #[serde(default)]
        last_id: Option<MessageId>,
        #[serde(default)]
        ack: Option<u64>,
    },
    /// Leave a room.
    Leave {
        room: String,
        #[serde(default)]
        ack: Option<u64>,
    },
    /// A message for the consumer's `receive`.
    Msg {
        #[serde(default)]
        data: Value,
        #[serde(default)]
        ack: Option<u64>,
    },
    /// The client's answer to a server emit that asked for an ack.
    Ack {
        ack: u64,
        #[serde(default)]
        data: Value,
    },
}

/// Why a client frame was refused; the `code` of an `error` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// Not JSON, or JSON without a known shape.
    BadJson,
    /// A `"t"` Kiln does not know.
    UnknownType,
    /// `data` does not match the consumer's message type.
    BadMessage,
    /// The consumer refused the join.
    Forbidden,
    /// The channel layer failed (the room could not be joined or recovered).
    Unavailable,
    /// A room name that is empty, too long or reserved (`__` prefix).
    BadRoom,
}

impl ErrorCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownType => "unknown_type",
            Self::BadMessage => "bad_message",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::BadRoom => "bad_room",
        }
    }
}

/// Parses a client text frame, telling malformed JSON from an unknown type.
pub(crate) fn parse_client(text: &str) -> Result<ClientFrame, (ErrorCode, String)> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(error) => {
            let value: Value = serde_json::from_str(text)
                .map_err(|error| (ErrorCode::BadJson, error.to_string()))?;
            match value.get("t").and_then(Value::as_str) {
                Some(t) if !matches!(t, "join" | "leave" | "msg" | "ack") => Err((
                    ErrorCode::UnknownType,
                    format!("unknown frame type `{t}`: use join, leave, msg or ack"),
                )),
                None => Err((
                    ErrorCode::BadJson,
                    "a frame is a JSON object with a \"t\" field".to_owned(),
                )),
                Some(_) => Err((ErrorCode::BadJson, error.to_string())),
            }
        }
    }
}

/// Longest room name accepted from a client.
const MAX_ROOM_LEN: usize = 200;

/// Room names starting with `__` are Kiln's own (per-node and presence rooms).
pub(crate) fn check_room(room: &str) -> Result<(), String> {
    if room.is_empty() || room.len() > MAX_ROOM_LEN {
        Err(format!(
            "a room name has 1 to {MAX_ROOM_LEN} bytes, not {}",
            room.len()
        ))
    } else if room.starts_with("__") {
        Err("room names starting with `__` are reserved".to_owned())
    } else {
        Ok(())
    }
}

/// A frame the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum ServerFrame<'a> {
    Joined {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
    Left {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
    Msg {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
        event: &'a str,
        /// Already JSON: copied into the frame as it is.
        data: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
    Ack {
        ack: u64,
        data: &'a Value,
    },
    Resync {
        room: &'a str,
    },
    PresenceState {
        room: &'a str,
        entries: &'a [super::presence::PresenceEntry],
    },
    Presence {
        room: &'a str,
        joins: &'a [super::presence::PresenceEntry],
        leaves: &'a [super::presence::PresenceEntry],
    },
    Error {
        code: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
}

impl ServerFrame<'_> {
    /// The frame as JSON text. Serializing these plain structs cannot fail;
    /// an empty object is sent if it ever did.
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A room message as it travels through the channel layer: the layer assigns
/// the id, so the frame a client gets is built when it arrives. `data` stays
/// JSON text from the sender's serialization to the client's frame: a node
/// checks it is well-formed but never builds a `Value` tree of it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Published {
    pub(crate) event: String,
    pub(crate) data: Box<RawValue>,
    /// A connection that must not get it (send to all but the sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) except: Option<String>,
    /// For the per-node room: the one connection that gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_frames_and_names_what_is_wrong() {
        assert!(matches!(
            parse_client(r#"{"t":"join","room":"a","last_id":3}"#),
            Ok(ClientFrame::Join {
                last_id: Some(3),
                ..
            })
        ));
        assert_eq!(
            parse_client("{nope").err().map(|e| e.0),
            Some(ErrorCode::BadJson)
        );
        assert_eq!(
            parse_client(r#"{"t":"dance"}"#).err().map(|e| e.0),
            Some(ErrorCode::UnknownType)
        );
        assert_eq!(
            parse_client(r#"{"t":"join"}"#).err().map(|e| e.0),
            Some(ErrorCode::BadJson)
        );
        assert_eq!(
            parse_client("[1]").err().map(|e| e.0),
            Some(ErrorCode::BadJson)
        );
    }

    #[test]
    fn reserved_and_oversized_rooms_are_refused() {
        assert!(check_room("lobby").is_ok());
        assert!(check_room("").is_err());
        assert!(check_room("__node.x").is_err());
        assert!(check_room(&"a".repeat(201)).is_err());
    }
}
