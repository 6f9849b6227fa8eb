//! Kiln's side of the real-time benchmark (`benchmarks/realtime/run`): a
//! consumer, written as docs/topics/realtime.md teaches, that relays what the
//! sender sends to room `bench`. Members join the room with the native
//! protocol's `{"t":"join","room":"bench"}`; the sender does not join.
//!
//! By hand: `KILN_DEBUG=false KILN_SECRET_KEY=$(openssl rand -hex 32) KILN_ALLOWED_HOSTS='["127.0.0.1"]' cargo run --release -p rt-kiln`,
//! then `cargo run --release -p rt-load -- check --target kiln --url ws://127.0.0.1:8000/ws/`.

use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Socket};

/// What the sender sends: `{"t":"msg","data":{"seq":1,"ts":...}}`, with a
/// `pad` string in the slow consumer test. It is relayed with the same
/// fields, so members read it as the other targets' members do.
#[derive(Deserialize, Serialize)]
struct Tick {
    seq: u64,
    ts: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pad: String,
}

/// A connection needs no state: every member is anonymous.
struct Relay;

impl Consumer for Relay {
    type Message = Tick;

    async fn connect(_request: &ConnectRequest) -> Result<Self, kiln::Error> {
        Ok(Relay)
    }

    async fn receive(&mut self, socket: &Socket, tick: Tick) -> serde_json::Value {
        // A failed broadcast (the layer is in-process: only at shutdown) is
        // seen by the load client as loss.
        let _ = socket.broadcast("bench", "m", &tick).await;
        serde_json::Value::Null
    }
}

#[kiln::main]
fn main() -> Project {
    kiln::project!().mount(
        "/",
        App::new("bench").route("/ws/", "socket", kiln::realtime::websocket::<Relay>()),
    )
}
