//! Memory per idle connection: the server's resident set
//! (`VmRSS` in `/proc/PID/status`) before and after N connections that
//! each joined one room and then stay idle (answering the server's pings).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::client;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server's WebSocket endpoint, e.g. ws://127.0.0.1:8000/ws/.
    #[arg(long)]
    url: String,
    /// The server's process id, whose memory is read.
    #[arg(long)]
    pid: u32,
    /// Total connections at each measurement, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "5000,19500")]
    steps: Vec<usize>,
    /// How many loopback source addresses (127.0.0.2 upward) to spread over.
    #[arg(long, default_value_t = 8)]
    sources: usize,
    /// Connections opened (and closed) before the baseline, so that the
    /// baseline includes what the first connections set up once.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// The room every connection joins.
    #[arg(long, default_value = "idle")]
    room: String,
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS line in {path}"))
}

/// The RSS once it has stopped moving (two readings a second apart within
/// 0.5%), or after 15 readings.
async fn settled_rss(pid: u32) -> Result<u64, String> {
    let mut last = rss_kib(pid)?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss_kib(pid)?;
        if now.abs_diff(last) * 200 <= last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Opens connections `from..to`, joins each to the room, and leaves a task
/// per connection reading it (so that pings are answered) in `held`.
async fn open(
    args: &Args,
    range: std::ops::Range<usize>,
    held: &mut JoinSet<()>,
    closed: &Arc<AtomicUsize>,
) -> Result<(), String> {
    let addr = client::target(&args.url)?;
    let mut opening = JoinSet::new();
    let total = range.len();
    let mut done = 0;
    let mut next = range.start;
    loop {
        while next < range.end && opening.len() < args.concurrency {
            let url = args.url.clone();
            let room = args.room.clone();
            let from = client::source(next, args.sources);
            opening.spawn(async move {
                let mut ws = client::connect(&url, addr, from).await?;
                client::join(&mut ws, &room).await?;
                Ok::<_, String>(ws)
            });
            next += 1;
        }
        let Some(joined) = opening.join_next().await else {
            break;
        };
        let mut ws = joined.map_err(|error| error.to_string())??;
        let closed = Arc::clone(closed);
        held.spawn(async move {
            // Reading answers the server's pings; anything else is ignored.
            while let Some(Ok(_)) = ws.next().await {}
            closed.fetch_add(1, Ordering::Relaxed);
        });
        done += 1;
        if done % 1000 == 0 || done == total {
            eprintln!("  {} connections open", range.start + done);
        }
    }
    Ok(())
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let closed = Arc::new(AtomicUsize::new(0));
    if args.warmup > 0 {
        eprintln!("warm-up: {} connections, opened then closed", args.warmup);
        let mut warm = JoinSet::new();
        open(&args, 0..args.warmup, &mut warm, &closed).await?;
        warm.shutdown().await;
        // Let the server see the closes and free what it can.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    closed.store(0, Ordering::Relaxed);
    let before = settled_rss(args.pid).await?;
    eprintln!("server RSS before: {before} KiB");
    println!("| connections | server RSS (KiB) | RSS − baseline (KiB) | per connection (KiB) |");
    println!("| ---: | ---: | ---: | ---: |");
    println!("| 0 | {before} | 0 | — |");
    let mut held = JoinSet::new();
    let mut open_now = 0;
    for &step in &args.steps {
        if step <= open_now {
            return Err(format!(
                "--steps must increase: {step} after {open_now} (e.g. 5000,19500)"
            ));
        }
        // Connections open past the previous step use the sources in turn.
        open(&args, open_now..step, &mut held, &closed).await?;
        open_now = step;
        let after = settled_rss(args.pid).await?;
        let lost = closed.load(Ordering::Relaxed);
        if lost > 0 {
            return Err(format!(
                "{lost} of {step} connections were closed by the server while idle"
            ));
        }
        let grown = after.saturating_sub(before);
        let per = grown as f64 / step as f64;
        eprintln!("{step} connections: RSS {after} KiB, {per:.2} KiB per connection");
        println!("| {step} | {after} | {grown} | {per:.2} |");
    }
    held.shutdown().await;
    Ok(())
}
