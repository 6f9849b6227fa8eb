//! A small client of Kiln's wire protocol (`docs/topics/realtime.md`),
//! shared by both measurements.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// The longest a connect or a join may take before the run fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// `ws://host:port/path` split into the address to connect to and the URL.
pub(crate) fn target(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url:?} is not a ws:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .parse()
        .map_err(|_| format!("{url:?}: use ws://IP:PORT/path (an IP address, not a name)"))
}

/// The `n`-th of `sources` loopback source addresses: 127.0.0.2, .3, ...
/// Each address has its own range of ephemeral ports, so that tens of
/// thousands of connections to one server port do not run out of them.
pub(crate) fn source(n: usize, sources: usize) -> IpAddr {
    let last = u8::try_from(2 + n % sources.max(1)).unwrap_or(2);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Opens a WebSocket to `url` from `from`, with a small read buffer (the
/// client's memory is not what is measured, but it shares the machine).
pub(crate) async fn connect(url: &str, addr: SocketAddr, from: IpAddr) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|error| describe("socket", &error))?;
    socket
        .bind(SocketAddr::new(from, 0))
        .map_err(|error| describe(&format!("bind {from}"), &error))?;
    let connecting = async {
        let stream = socket
            .connect(addr)
            .await
            .map_err(|error| describe(&format!("connect to {addr}"), &error))?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0);
        tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map(|(ws, _)| ws)
            .map_err(|error| format!("WebSocket handshake with {url}: {error}"))
    };
    tokio::time::timeout(STEP_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("connecting to {url} took over {STEP_TIMEOUT:?}"))?
}

/// An I/O error, with the fix for the one a large run meets.
fn describe(what: &str, error: &std::io::Error) -> String {
    if error.raw_os_error() == Some(24) {
        format!(
            "{what}: {error}; raise the open-file limit first (`ulimit -n $(ulimit -Hn)`; the run script does)"
        )
    } else {
        format!("{what}: {error}")
    }
}

pub(crate) async fn send(ws: &mut Ws, frame: &Value) -> Result<(), String> {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .map_err(|error| format!("send: {error}"))
}

/// Joins `room` and waits for the server's `joined` answer.
pub(crate) async fn join(ws: &mut Ws, room: &str) -> Result<(), String> {
    send(ws, &json!({ "t": "join", "room": room })).await?;
    let waiting = async {
        while let Some(message) = ws.next().await {
            let message = message.map_err(|error| format!("while joining: {error}"))?;
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                match frame["t"].as_str() {
                    Some("joined") => return Ok(()),
                    Some("error") => return Err(format!("join refused: {text}")),
                    _ => {}
                }
            }
        }
        Err("the server closed the connection while joining".to_owned())
    };
    tokio::time::timeout(STEP_TIMEOUT, waiting)
        .await
        .map_err(|_| format!("no `joined` answer within {STEP_TIMEOUT:?}"))?
}
