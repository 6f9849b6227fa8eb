//! The real-time benchmark's baseline (`benchmarks/realtime/run`): bare axum
//! WebSockets and one `tokio::sync::broadcast` channel, what an axum user
//! writes for one room without a framework.
//!
//! The protocol is plain JSON text frames: `{"join":"bench"}` subscribes the
//! connection (answered `{"joined":"bench"}`); any other text frame is sent,
//! as it came, to every subscribed connection.
//!
//! By hand: `cargo run --release -p rt-axum -- 127.0.0.1:8000`.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::sync::broadcast;

/// Messages a member may fall behind by before it is closed (Kiln's default
/// send queue is 256 too).
const LAG: usize = 256;
/// The close code Kiln uses for a member that reads too slowly.
const TOO_SLOW: u16 = 4001;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let (room, _) = broadcast::channel::<Utf8Bytes>(LAG);
    let app = Router::new().route("/ws", get(upgrade)).with_state(room);
    // Kiln, Node's http server and most real-time servers send each frame at
    // once; `axum::serve` leaves Nagle's algorithm on unless asked. With it
    // on, the kernel holds small frames back for up to a delayed ACK (40 ms),
    // which saves CPU and costs latency: the same socket option on both sides
    // keeps the comparison about the framework.
    let listener = tokio::net::TcpListener::bind(&address)
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app).await
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(room): State<broadcast::Sender<Utf8Bytes>>,
) -> Response {
    // tungstenite's default read buffer is 128 KiB per connection.
    ws.read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| connection(socket, room))
}

async fn connection(mut socket: WebSocket, room: broadcast::Sender<Utf8Bytes>) {
    let mut member: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) if text.as_str() == r#"{"join":"bench"}"# => {
                    member = Some(room.subscribe());
                    if socket.send(Message::Text(r#"{"joined":"bench"}"#.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    // No receiver yet is not an error: the message is lost.
                    let _ = room.send(text);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            outgoing = async { member.as_mut().expect("guarded by the if below").recv().await }, if member.is_some() => match outgoing {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let frame = CloseFrame { code: TOO_SLOW, reason: "too slow".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
