//! Kiln's realtime at scale, measured from outside the server:
//!
//! - `server`: a Kiln project in production mode with one consumer at
//!   `/ws/` (a client joins rooms with the wire protocol's `join` frame and
//!   broadcasts with `{"type":"say","room":...,"data":...}`);
//! - `idle`: opens many idle WebSocket connections to a server, each joined
//!   to one room, and reports the server's resident memory per connection;
//! - `crossnode`: members on one node, a sender on another (or the same),
//!   fixed-rate timestamped messages; end-to-end latency and loss.
//!
//! `benchmarks/realtime-scale/run` builds it, starts and stops the servers
//! and writes `RESULTS.md`; by hand:
//! `cargo run --release -p realtime-scale -- server --layer memory://`,
//! then `cargo run --release -p realtime-scale -- idle --url ws://ADDR/ws/ --pid PID`.

use clap::{Parser, Subcommand};

mod client;
mod crossnode;
mod idle;
mod server;

#[derive(Parser)]
#[command(about = "Kiln's realtime at scale: idle memory and cross-node latency")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the benchmark project; prints `LISTENING <addr> <pid>` when ready.
    Server(server::Args),
    /// Hold idle connections and report the server's memory per connection.
    Idle(idle::Args),
    /// Fixed-rate messages from a sender to members; latency and loss.
    Crossnode(crossnode::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Idle(args) => idle::run(args).await,
            Command::Crossnode(args) => crossnode::run(args).await,
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
