//! The targets' wire protocols: how to connect, join room `bench`, send a
//! tick and read one back.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::{Error, Ws};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// Kiln's native protocol (docs/topics/realtime.md, "The wire protocol").
    Kiln,
    /// `{"join":"bench"}` / `{"joined":"bench"}`, then ticks as plain JSON.
    Axum,
    /// The same plain JSON, served by Django Channels.
    Channels,
    /// Socket.IO 4 (Engine.IO 4) over a WebSocket only.
    Socketio,
}

/// A frame from the server, as far as the benchmark cares.
pub(crate) enum Inbound {
    Joined,
    /// An Engine.IO ping (`2`): answer `3`.
    Ping,
    Tick {
        seq: u64,
        ts: u64,
    },
    Other,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Kiln => "kiln",
            Self::Axum => "axum",
            Self::Channels => "channels",
            Self::Socketio => "socketio",
        }
    }

    pub(crate) fn url(self, base: &str) -> String {
        match self {
            Self::Socketio => format!(
                "{}/socket.io/?EIO=4&transport=websocket",
                base.trim_end_matches('/')
            ),
            _ => base.to_owned(),
        }
    }

    /// Socket.IO: Engine.IO's open packet `0{...}`, then `40` connects the
    /// main namespace, answered `40{"sid":...}`.
    pub(crate) async fn handshake(self, ws: &mut Ws) -> Result<(), Error> {
        let Self::Socketio = self else { return Ok(()) };
        let open = next_text(ws).await?;
        if !open.starts_with("0{") {
            return Err(format!("expected Engine.IO's open packet, got {open:?}").into());
        }
        ws.send(Message::text("40")).await?;
        loop {
            let frame = next_text(ws).await?;
            if frame.starts_with("40") {
                return Ok(());
            }
            if frame.starts_with("44") {
                return Err(format!("the namespace refused the connection: {frame}").into());
            }
        }
    }

    pub(crate) fn join_frame(self) -> &'static str {
        match self {
            Self::Kiln => r#"{"t":"join","room":"bench"}"#,
            Self::Axum | Self::Channels => r#"{"join":"bench"}"#,
            Self::Socketio => r#"42["join","bench"]"#,
        }
    }

    /// A tick; `pad` (plain ASCII) goes last, so that members find `seq`
    /// and `ts` without scanning it.
    pub(crate) fn tick_frame(self, seq: u64, ts: u64, pad: &str) -> String {
        let tick = if pad.is_empty() {
            format!(r#"{{"seq":{seq},"ts":{ts}}}"#)
        } else {
            format!(r#"{{"seq":{seq},"ts":{ts},"pad":"{pad}"}}"#)
        };
        match self {
            Self::Kiln => format!(r#"{{"t":"msg","data":{tick}}}"#),
            Self::Axum | Self::Channels => tick,
            Self::Socketio => format!(r#"42["msg",{tick}]"#),
        }
    }

    pub(crate) fn parse(self, text: &str) -> Inbound {
        let joined = match self {
            Self::Kiln => text.starts_with(r#"{"t":"joined""#),
            Self::Axum | Self::Channels => text.starts_with(r#"{"joined""#),
            Self::Socketio => {
                if text == "2" {
                    return Inbound::Ping;
                }
                text.starts_with(r#"42["joined""#)
            }
        };
        if joined {
            return Inbound::Joined;
        }
        match (
            number_after(text, r#""seq""#),
            number_after(text, r#""ts""#),
        ) {
            (Some(seq), Some(ts)) => Inbound::Tick { seq, ts },
            _ => Inbound::Other,
        }
    }
}

/// The unsigned integer after `key` and its colon (Python's json writes a
/// space after it), read without a JSON parser: members parse millions.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start_matches([':', ' ']);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

async fn next_text(ws: &mut Ws) -> Result<String, Error> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed during the handshake: {frame:?}").into());
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err("the connection ended during the handshake".into()),
        }
    }
}
