//! The server under test: Kiln in production mode, one consumer.

use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Socket};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// How the consumer sends each message to the room: `broadcast` (waits
    /// for the channel layer and replies with the id) or `queued`
    /// (`broadcast_queued`: returns once queued on the node).
    #[arg(long, default_value = "broadcast")]
    send: Send,
    /// Print, every 2 s while it changes, how many broadcasts the consumer
    /// made, how many failed, and how long they waited for the layer.
    #[arg(long)]
    stats: bool,
}

/// What `--stats` prints: broadcasts made, failed, and their total and
/// longest wait in microseconds.
static BROADCASTS: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static WAITED_US: AtomicU64 = AtomicU64::new(0);
static LONGEST_US: AtomicU64 = AtomicU64::new(0);

async fn print_stats() {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let broadcasts = BROADCASTS.load(Ordering::Relaxed);
        if broadcasts == last {
            continue;
        }
        last = broadcasts;
        let waited = WAITED_US.load(Ordering::Relaxed);
        eprintln!(
            "STATS broadcasts {broadcasts} failed {} mean wait {:.2} ms longest {:.2} ms",
            FAILED.load(Ordering::Relaxed),
            waited as f64 / broadcasts.max(1) as f64 / 1000.0,
            LONGEST_US.swap(0, Ordering::Relaxed) as f64 / 1000.0,
        );
    }
}

/// How the consumer sends to the room (`--send`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Send {
    Broadcast,
    Queued,
}

/// The `--send` choice, read by every connection's consumer.
static QUEUED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
        let started = std::time::Instant::now();
        let sent = if QUEUED.load(Ordering::Relaxed) {
            socket
                .broadcast_queued(&room, "said", &data)
                .await
                .map(|()| 0)
        } else {
            socket.broadcast(&room, "said", &data).await
        };
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        BROADCASTS.fetch_add(1, Ordering::Relaxed);
        WAITED_US.fetch_add(waited, Ordering::Relaxed);
        LONGEST_US.fetch_max(waited, Ordering::Relaxed);
        match sent {
            Ok(id) => json!({ "id": id }),
            Err(error) => {
                FAILED.fetch_add(1, Ordering::Relaxed);
                json!({ "error": error.to_string() })
            }
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
    // Kiln's warnings (a dropped message, a slow member closed) go to stderr.
    kiln::logging::init(&settings);
    QUEUED.store(args.send == Send::Queued, Ordering::Relaxed);
    if args.stats {
        tokio::spawn(print_stats());
    }
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
