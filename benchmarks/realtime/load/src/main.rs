//! The real-time benchmark's load client (`benchmarks/realtime/run` drives
//! it; benchmarks/realtime/README.md explains the method).
//!
//! - `check`: two members and a sender; exits non-zero, saying why, unless
//!   both members get the sender's message.
//! - `fanout`: N members join room `bench`; one sender sends at each rate of
//!   a ladder for D seconds; one JSON line per rate (deliveries/s, loss,
//!   p50/p99 end-to-end latency, server CPU per delivery).
//! - `slow`: the same at one rate, while one member stops reading; the
//!   server's RSS every second, what the others lost and how the slow one's
//!   connection ended.
//! - `idle`: K connections that joined the room and then only answer pings;
//!   the server's RSS growth per connection.
//!
//! Each message carries a sequence number and its send time (this machine's
//! clock, in microseconds), so a member sees its latency and its gaps.
//! Results are JSON lines on stdout; progress goes to stderr.
//!
//! By hand: `cargo run --release -p rt-load -- fanout --target axum --url ws://127.0.0.1:8000/ws --rates 100,200 --duration 5 --server-pid PID`.

mod protocol;
mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use protocol::{Inbound, Protocol};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(about = "Load client of Kiln's real-time benchmark")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// The protocol: kiln (native), axum or channels (plain JSON), socketio (Engine.IO 4 over WebSocket).
    #[arg(long)]
    target: Protocol,
    /// The WebSocket URL (for socketio, the server's ws://host:port; the path is added).
    #[arg(long)]
    url: String,
    /// The server's process id: its CPU time (and its children's) and RSS are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Source addresses 127.0.0.1..=127.0.0.N, used in turn (a (source, destination) pair has ~28,000 ports).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Connections opened at once while members join.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum Mode {
    /// Two members and a sender: does one message reach both?
    Check(Target),
    /// The fan-out ladder.
    Fanout {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Sender rates, messages per second.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "50,100,200,300,500,700,1000,1500,2000"
        )]
        rates: Vec<u32>,
        /// Seconds each rate is sent for.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Stop the ladder after this many rates in a row missed the goal (loss < 0.1%, p99 < 100 ms).
        #[arg(long, default_value_t = 2)]
        stop_after: u32,
    },
    /// One member stops reading during a fan-out.
    Slow {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Bytes of padding in each message: enough that what the slow
        /// member misses outgrows the kernel's socket buffers (4 MiB here).
        #[arg(long, default_value_t = 1024)]
        pad: usize,
    },
    /// K idle connections, each joined to the room.
    Idle {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 19_500)]
        connections: usize,
        /// Seconds to wait, connected, before reading the server's RSS.
        #[arg(long, default_value_t = 10)]
        settle: u64,
    },
}

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.mode {
            Mode::Check(target) => check(&target).await,
            Mode::Fanout {
                target,
                members,
                rates,
                duration,
                stop_after,
            } => fanout(&target, members, &rates, duration, stop_after).await,
            Mode::Slow {
                target,
                members,
                rate,
                duration,
                pad,
            } => slow(&target, members, rate, duration, pad).await,
            Mode::Idle {
                target,
                connections,
                settle,
            } => idle(&target, connections, settle).await,
        }
    })
}

/// Microseconds since the Unix epoch: the send stamp and the receive clock.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// Opens connection `index`, from source address 127.0.0.(1 + index % sources);
/// `small_window` shrinks its receive buffer, so that a member that stops
/// reading backs up into the server soon instead of into this kernel.
async fn open(target: &Target, index: usize, small_window: bool) -> Result<Ws, Error> {
    let url = target.target.url(&target.url);
    let authority = url
        .split("//")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("{url} is not a ws://host:port/... URL"))?;
    let server: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{authority} is not an IP address and port"))?;
    let socket = TcpSocket::new_v4()?;
    let last = u8::try_from(index % usize::from(target.sources.max(1)))? + 1;
    socket.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
        0,
    ))?;
    if small_window {
        socket.set_recv_buffer_size(4096)?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await?;
    target.target.handshake(&mut ws).await?;
    Ok(ws)
}

/// Opens a connection and joins room `bench` (waits for the server's answer).
async fn join(target: &Target, index: usize, small_window: bool) -> Result<Ws, Error> {
    let mut ws = open(target, index, small_window).await?;
    ws.send(Message::text(target.target.join_frame())).await?;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Err("no answer to the join within 10 s".into()),
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => match target.target.parse(&text) {
                    Inbound::Joined => return Ok(ws),
                    Inbound::Ping => ws.send(Message::text("3")).await?,
                    _ => {}
                },
                Some(Ok(Message::Close(frame))) => return Err(format!("closed while joining: {}", describe_close(frame.as_ref())).into()),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => return Err("the connection ended while joining".into()),
            }
        }
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    frame.map_or_else(
        || "close without a code".to_owned(),
        |frame| {
            format!(
                "close {} {:?}",
                u16::from(frame.code),
                frame.reason.as_str()
            )
        },
    )
}

/// What one member saw since the last collection.
struct Tally {
    latency: Histogram<u64>,
    received: u64,
    /// How the connection ended, if it did.
    ended: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            received: 0,
            ended: None,
        }
    }
}

/// The members of a fan-out and the sequence numbers the current rate counts.
struct Room {
    tallies: Vec<Arc<Mutex<Tally>>>,
    /// Messages with a lower sequence number belong to an earlier rate.
    counted_from: Arc<AtomicU64>,
}

impl Room {
    /// Joins `members` members, `concurrency` at a time; `stalled` (an index)
    /// joins, then never reads again.
    async fn join(
        target: &Target,
        members: usize,
        stalled: Option<usize>,
    ) -> Result<(Self, Option<Ws>), Error> {
        let started = Instant::now();
        let limit = Arc::new(Semaphore::new(target.concurrency));
        let mut joins = Vec::with_capacity(members);
        for index in 0..members {
            let limit = Arc::clone(&limit);
            let target = target.clone();
            joins.push(tokio::spawn(async move {
                let _permit = limit.acquire().await;
                join(&target, index, Some(index) == stalled).await
            }));
        }
        let counted_from = Arc::new(AtomicU64::new(u64::MAX));
        let mut tallies = Vec::with_capacity(members);
        let mut stalled_ws = None;
        for (index, handle) in joins.into_iter().enumerate() {
            let ws = handle
                .await?
                .map_err(|error| format!("member {index} could not join: {error}"))?;
            if Some(index) == stalled {
                stalled_ws = Some(ws);
                continue;
            }
            let tally = Arc::new(Mutex::new(Tally::new()));
            tokio::spawn(member(
                target.target,
                ws,
                Arc::clone(&tally),
                Arc::clone(&counted_from),
            ));
            tallies.push(tally);
        }
        eprintln!(
            "  {members} members joined in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok((
            Self {
                tallies,
                counted_from,
            },
            stalled_ws,
        ))
    }

    /// Sums and resets every member's tally.
    fn collect(&self) -> (Histogram<u64>, u64, Vec<String>) {
        let mut latency = Tally::new().latency;
        let mut received = 0;
        let mut ended = Vec::new();
        for tally in &self.tallies {
            let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = latency.add(&tally.latency);
            received += tally.received;
            tally.latency.reset();
            tally.received = 0;
            if let Some(how) = tally.ended.take() {
                ended.push(how);
            }
        }
        (latency, received, ended)
    }

    fn received(&self) -> u64 {
        self.tallies
            .iter()
            .map(|tally| {
                tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .received
            })
            .sum()
    }
}

/// A member: reads every frame, answers Engine.IO pings, and tallies the
/// room messages of the current rate.
async fn member(
    protocol: Protocol,
    mut ws: Ws,
    tally: Arc<Mutex<Tally>>,
    counted_from: Arc<AtomicU64>,
) {
    let ended = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match protocol.parse(&text) {
                Inbound::Tick { seq, ts } if seq >= counted_from.load(Ordering::Relaxed) => {
                    let latency = now_us().saturating_sub(ts).max(1);
                    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    tally.received += 1;
                    let _ = tally.latency.record(latency);
                }
                Inbound::Ping if ws.send(Message::text("3")).await.is_err() => {
                    break "the pong could not be sent".to_owned();
                }
                _ => {}
            },
            Some(Ok(Message::Close(frame))) => break describe_close(frame.as_ref()),
            Some(Ok(_)) => {}
            Some(Err(error)) => break format!("error: {error}"),
            None => break "ended".to_owned(),
        }
    };
    tally.lock().unwrap_or_else(PoisonError::into_inner).ended = Some(ended);
}

/// The sender: `rate` messages a second for `seconds`, numbered from `first`;
/// returns how many it sent. It reads too (pings, and anything the server
/// answers), in a task of its own.
struct Sender {
    protocol: Protocol,
    sink: futures_util::stream::SplitSink<Ws, Message>,
    /// Engine.IO pings seen by the reading task, answered between sends
    /// (the sink is not shared).
    pings: tokio::sync::mpsc::Receiver<()>,
    /// Padding carried by every message (the slow consumer test's bytes).
    pad: String,
}

impl Sender {
    async fn open(target: &Target, pad: usize) -> Result<Self, Error> {
        // The last source address, so that it never waits behind members.
        let ws = open(target, usize::from(target.sources.max(1)) - 1, false).await?;
        let (sink, mut stream) = ws.split();
        let (ping, pings) = tokio::sync::mpsc::channel::<()>(4);
        let protocol = target.target;
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame
                    && matches!(protocol.parse(&text), Inbound::Ping)
                {
                    let _ = ping.try_send(());
                }
            }
        });
        Ok(Self {
            protocol,
            sink,
            pings,
            pad: "x".repeat(pad),
        })
    }

    async fn send(&mut self, first: u64, rate: u32, seconds: u64) -> Result<u64, Error> {
        let start = Instant::now();
        let total = u64::from(rate) * seconds;
        let mut sent = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while sent < total {
            tick.tick().await;
            // Catch up with the schedule: at 2,000/s a 1 ms tick sends two.
            let due =
                (start.elapsed().as_micros() * u128::from(rate) / 1_000_000).min(u128::from(total));
            let due = u64::try_from(due)?;
            if due <= sent {
                continue;
            }
            while sent < due {
                let frame = self.protocol.tick_frame(first + sent, now_us(), &self.pad);
                self.sink.feed(Message::text(frame)).await?;
                sent += 1;
            }
            self.sink.flush().await?;
            while self.pings.try_recv().is_ok() {
                self.sink.send(Message::text("3")).await?;
            }
        }
        Ok(sent)
    }
}

/// Waits until `expected` deliveries arrived or nothing new came for 2 s
/// (at most 10 s).
async fn drain(room: &Room, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = room.received();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && last < expected {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = room.received();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
}

async fn check(target: &Target) -> Result<(), Error> {
    let (room, _) = Room::join(target, 2, None).await?;
    let mut sender = Sender::open(target, 0).await?;
    room.counted_from.store(1, Ordering::Relaxed);
    sender.send(1, 1, 1).await?;
    drain(&room, 2).await;
    let (_, received, ended) = room.collect();
    if received != 2 {
        let ended = if ended.is_empty() {
            String::new()
        } else {
            format!(" (members' connections: {})", ended.join("; "))
        };
        return Err(format!(
            "{received} of 2 members received the sender's message within the wait{ended}"
        )
        .into());
    }
    println!(
        "{}",
        json!({ "mode": "check", "target": target.target.name(), "ok": true })
    );
    Ok(())
}

async fn fanout(
    target: &Target,
    members: usize,
    rates: &[u32],
    seconds: u64,
    stop_after: u32,
) -> Result<(), Error> {
    let (room, _) = Room::join(target, members, None).await?;
    let mut sender = Sender::open(target, 0).await?;
    let mut next_seq = 1;
    let mut misses = 0;
    for &rate in rates {
        room.counted_from.store(next_seq, Ordering::Relaxed);
        let cpu_before = target.server_pid.map(server::cpu_ticks);
        let started = Instant::now();
        let sent = sender.send(next_seq, rate, seconds).await?;
        let expected = sent * u64::try_from(room.tallies.len())?;
        drain(&room, expected).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_before
            .zip(target.server_pid.map(server::cpu_ticks))
            .map(|(before, after)| after.saturating_sub(before));
        next_seq += sent;
        let (latency, received, ended) = room.collect();
        let loss = 1.0 - received as f64 / expected.max(1) as f64;
        let cpu_us = cpu.map(|ticks| server::ticks_to_us(ticks) / received.max(1) as f64);
        let p50 = latency.value_at_quantile(0.50) as f64 / 1000.0;
        let p99 = latency.value_at_quantile(0.99) as f64 / 1000.0;
        let ok = loss < 0.001 && p99 < 100.0 && received > 0;
        let line = json!({
            "mode": "fanout", "target": target.target.name(), "members": room.tallies.len(), "rate": rate,
            "seconds": seconds, "sent": sent, "expected": expected, "received": received,
            // Over the sending time: what the room sustained.
            "deliveries_per_s": received as f64 / seconds as f64,
            "loss": loss, "p50_ms": p50, "p99_ms": p99, "max_ms": latency.max() as f64 / 1000.0,
            "cpu_us_per_delivery": cpu_us, "wall_s": elapsed, "members_closed": ended.len(),
            "closes": ended.iter().take(3).collect::<Vec<_>>(), "ok": ok,
        });
        eprintln!(
            "  rate {rate}/s: {:.0} deliveries/s, loss {:.3}%, p50 {p50:.1} ms, p99 {p99:.1} ms, cpu {} us/delivery{}",
            received as f64 / seconds as f64,
            loss * 100.0,
            cpu_us.map_or("?".to_owned(), |us| format!("{us:.2}")),
            if ended.is_empty() {
                String::new()
            } else {
                format!(", {} members closed", ended.len())
            }
        );
        println!("{line}");
        misses = if ok { 0 } else { misses + 1 };
        if misses >= stop_after {
            break;
        }
    }
    Ok(())
}

async fn slow(
    target: &Target,
    members: usize,
    rate: u32,
    seconds: u64,
    pad: usize,
) -> Result<(), Error> {
    let pid = target
        .server_pid
        .ok_or("slow needs --server-pid (its RSS is the result)")?;
    // Member 0 joins, then is never read again: it keeps its socket open.
    let (room, stalled) = Room::join(target, members, Some(0)).await?;
    let mut stalled = stalled.ok_or("the stalled member did not join")?;
    let mut sender = Sender::open(target, pad).await?;
    room.counted_from.store(1, Ordering::Relaxed);
    let rss_start = server::rss_kib(pid);
    let samples = Arc::new(Mutex::new(vec![rss_start]));
    let sampling = {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(server::rss_kib(pid));
            }
        })
    };
    let sent = sender.send(1, rate, seconds).await?;
    let expected = sent * u64::try_from(room.tallies.len())?;
    drain(&room, expected).await;
    sampling.abort();
    let rss_end = server::rss_kib(pid);
    let (latency, received, ended) = room.collect();
    // What reached the stalled member's socket, and how it ended.
    let mut buffered = 0u64;
    let fate = loop {
        match tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
            Err(_) => break "still open (nothing closed it)".to_owned(),
            Ok(Some(Ok(Message::Text(text)))) => {
                if matches!(target.target.parse(&text), Inbound::Tick { .. }) {
                    buffered += 1;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => break describe_close(frame.as_ref()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => break format!("error: {error}"),
            Ok(None) => break "ended without a close frame".to_owned(),
        }
    };
    let samples = samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let line = json!({
        "mode": "slow", "target": target.target.name(), "members": members, "rate": rate, "seconds": seconds, "pad": pad,
        "rss_start_kib": rss_start, "rss_peak_kib": samples.iter().copied().max().unwrap_or(rss_start).max(rss_end),
        "rss_end_kib": rss_end, "rss_samples_kib": samples,
        "others_expected": expected, "others_received": received,
        "others_loss": 1.0 - received as f64 / expected.max(1) as f64,
        "others_p99_ms": latency.value_at_quantile(0.99) as f64 / 1000.0, "others_closed": ended.len(),
        "stalled_got": buffered, "stalled_fate": fate,
    });
    eprintln!("  slow consumer: {line}");
    println!("{line}");
    Ok(())
}

async fn idle(target: &Target, connections: usize, settle: u64) -> Result<(), Error> {
    let pid = target
        .server_pid
        .ok_or("idle needs --server-pid (its RSS is the result)")?;
    let rss_before = server::rss_kib(pid);
    let (room, _) = Room::join(target, connections, None).await?;
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let rss_after = server::rss_kib(pid);
    let (_, _, ended) = room.collect();
    let held = connections - ended.len();
    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 / held.max(1) as f64;
    let line = json!({
        "mode": "idle", "target": target.target.name(), "connections": connections, "held": held,
        "rss_before_kib": rss_before, "rss_after_kib": rss_after, "kib_per_connection": per_conn,
        "closes": ended.iter().take(3).collect::<Vec<_>>(),
    });
    eprintln!("  idle: {line}");
    println!("{line}");
    Ok(())
}
