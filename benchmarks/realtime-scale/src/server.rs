//! The server under test: Kiln in production mode, one consumer.

use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Socket};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The channel layer: memory://, redis://127.0.0.1:6379 or nats://127.0.0.1:4222.
    #[arg(long, default_value = "memory://")]
    layer: String,
    /// Where to listen (port 0: any free port, printed when ready).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// `realtime_max_connections` and `max_connections`.
    #[arg(long, default_value_t = 20_000)]
    max_connections: usize,
    /// `realtime_read_buffer`, when given (otherwise Kiln's default).
    #[arg(long)]
    read_buffer: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BenchIn {
    /// Broadcast `data` to `room` (event `said`); the reply is the message id.
    Say { room: String, data: Value },
}

/// Joins rooms through the wire protocol; speaks only to broadcast.
struct Bench;

impl Consumer for Bench {
    type Message = BenchIn;

    async fn connect(_request: &ConnectRequest) -> Result<Self, kiln::Error> {
        Ok(Self)
    }

    async fn receive(&mut self, socket: &Socket, message: BenchIn) -> Value {
        let BenchIn::Say { room, data } = message;
        match socket.broadcast(&room, "said", &data).await {
            Ok(id) => json!({ "id": id }),
            Err(error) => json!({ "error": error.to_string() }),
        }
    }
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let layer = kiln::realtime::connect(&args.layer)
        .await
        .map_err(|error| error.to_string())?;
    let project = Project::new("realtime_scale").channel_layer(layer).route(
        "/ws/",
        "bench",
        kiln::realtime::websocket::<Bench>(),
    );
    // Production mode, with the limits a benchmark needs raised: the sender
    // sends faster than the default per-connection rate limit (50/s), and
    // the idle run holds more than 10,000 connections.
    let mut toml = format!(
        "debug = false\n\
         secret_key = \"realtime-scale-benchmark-key-not-a-secret-0123456789\"\n\
         allowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\
         max_connections = {max}\n\
         realtime_max_connections = {max}\n\
         realtime_rate_limit = 0\n",
        max = args.max_connections
    );
    if let Some(size) = &args.read_buffer {
        toml.push_str(&format!("realtime_read_buffer = \"{size}\"\n"));
    }
    let settings = Settings::from_toml(&toml).map_err(|error| error.to_string())?;
    let (site, service) = project.build(settings).map_err(|error| error.to_string())?;
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.addr))?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    println!("LISTENING {addr} {}", std::process::id());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    kiln::server::serve(listener, site, service, shutdown)
        .await
        .map_err(|error| error.to_string())
}
