//! Cross-node latency: `--members` clients on one node join a room, a
//! sender on another node (or the same one, for the in-process baseline)
//! broadcasts `--rate` messages a second, each carrying the time it was
//! sent; every member records when it read each. Sender and members are in
//! this one process, so one monotonic clock times both ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::client;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The node the sender broadcasts through (ws://IP:PORT/ws/).
    #[arg(long)]
    sender: String,
    /// The node the members are connected to.
    #[arg(long)]
    members_at: String,
    /// How many members.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Messages per second from the sender.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// How long the sender sends (after a one-second warm-up that is not counted).
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// The label of the result row (the layer's name).
    #[arg(long, default_value = "")]
    label: String,
    /// The room.
    #[arg(long, default_value = "bench")]
    room: String,
}

/// The frames a member reads; only room messages carry `data`.
#[derive(Deserialize)]
struct Frame {
    t: String,
    #[serde(default)]
    data: Option<Stamp>,
}

#[derive(Deserialize)]
struct Stamp {
    seq: u64,
    sent_us: u64,
    #[serde(default)]
    warm: bool,
}

/// What every member read: (member, seq, latency in µs).
type Reads = Arc<Mutex<Vec<(u32, u64, u64)>>>;

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// How a member's connection ended, if it did before the run stopped it.
type Ended = Option<String>;

async fn member(
    mut ws: client::Ws,
    index: u32,
    clock: Instant,
    reads: Reads,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return None,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Some(frame.map_or_else(
                    || "close without a code".to_owned(),
                    |frame| format!("close {} {}", u16::from(frame.code), frame.reason),
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Some(format!("error: {error}")),
            None => return Some("connection ended without a close frame".to_owned()),
        };
        let now = micros(clock);
        let Ok(Frame {
            t,
            data: Some(stamp),
        }) = serde_json::from_str::<Frame>(&text)
        else {
            continue;
        };
        if t == "msg" && !stamp.warm {
            let latency = now.saturating_sub(stamp.sent_us);
            reads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((index, stamp.seq, latency));
        }
    }
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let sender_addr = client::target(&args.sender)?;
    let members_addr = client::target(&args.members_at)?;
    let clock = Instant::now();
    let reads: Reads = Arc::default();
    let (stop_tx, stop) = watch::channel(false);
    eprintln!(
        "{}: {} members on {}, sender on {}",
        args.label, args.members, args.members_at, args.sender
    );
    let mut members = JoinSet::new();
    for index in 0..args.members {
        let mut ws =
            client::connect(&args.members_at, members_addr, client::source(index, 8)).await?;
        client::join(&mut ws, &args.room).await?;
        let index = u32::try_from(index).map_err(|error| error.to_string())?;
        members.spawn(member(ws, index, clock, Arc::clone(&reads), stop.clone()));
    }
    let mut sender = client::connect(&args.sender, sender_addr, client::source(0, 8)).await?;
    let period = Duration::from_secs(1) / args.rate.max(1);
    let warm = u64::from(args.rate);
    let total = warm + u64::from(args.rate) * u64::from(args.seconds);
    eprintln!(
        "{}: sending {} msg/s for 1 s of warm-up and {} s measured",
        args.label, args.rate, args.seconds
    );
    let sending_started = clock.elapsed();
    let mut tick = tokio::time::interval(period);
    for seq in 0..total {
        tick.tick().await;
        let frame = json!({ "t": "msg", "data": { "type": "say", "room": args.room, "data": {
            "seq": seq, "sent_us": micros(clock), "warm": seq < warm,
        } } });
        client::send(&mut sender, &frame).await?;
        // Read past the sender's own frames without waiting (pings).
        while let Some(Some(_)) = futures_util::FutureExt::now_or_never(sender.next()) {}
    }
    let sending = clock.elapsed();
    // Deliveries still in flight: wait until every member has every message,
    // or until nothing has arrived for 5 s (what is still missing then is
    // lost, not late), or 120 s at most.
    let sent = total - warm;
    let expected = sent * args.members as u64;
    let count = || {
        reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len() as u64
    };
    let cap = Instant::now() + Duration::from_secs(120);
    let (mut last, mut last_change) = (count(), Instant::now());
    while Instant::now() < cap && last_change.elapsed() < Duration::from_secs(5) {
        let got = count();
        if got >= expected {
            break;
        }
        if got != last {
            (last, last_change) = (got, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = clock.elapsed() - sending;
    let _ = stop_tx.send(true);
    let mut ended: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    while let Some(end) = members.join_next().await {
        if let Ok(Some(how)) = end {
            *ended.entry(how).or_default() += 1;
        }
    }
    eprintln!(
        "{}: sending took {:.1} s (planned {} s), draining {:.1} s; members cut off: {}",
        args.label,
        (sending - sending_started).as_secs_f64(),
        1 + args.seconds,
        drained.as_secs_f64(),
        if ended.is_empty() {
            "none".to_owned()
        } else {
            format!("{ended:?}")
        }
    );
    let reads = std::mem::take(
        &mut *reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let mut unique: Vec<(u32, u64)> = reads.iter().map(|&(m, seq, _)| (m, seq)).collect();
    unique.sort_unstable();
    unique.dedup();
    let received = unique.len() as u64;
    let duplicates = reads.len() as u64 - received;
    let mut latencies: Vec<u64> = reads.iter().map(|&(_, _, latency)| latency).collect();
    latencies.sort_unstable();
    let loss = 100.0 * expected.saturating_sub(received) as f64 / expected.max(1) as f64;
    eprintln!(
        "{}: {received}/{expected} delivered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.label,
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or(0)),
    );
    println!(
        "| {} | {} | {} | {sent} | {expected} | {received} | {loss:.3}% | {duplicates} | {:.2} | {:.2} | {:.2} |",
        args.label,
        args.rate,
        args.members,
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or(0)),
    );
    Ok(())
}
