//! The access log: one line per request, written off the request path.
//!
//! A request's line is formatted on the worker that served it and handed to a
//! writer thread over a bounded queue; every 20 ms at most, the thread writes
//! whatever has queued up in one `write(2)`. Emitting it as a `tracing` event through the fmt
//! layer instead cost more than the rest of Kiln's stack put together: JSON
//! formatting through serde plus one `write(2)` per request behind std's
//! stderr lock, which the workers contend for (see `benchmarks/RESULTS.md`).
//!
//! When the queue is full, because whatever reads stderr cannot keep up, the
//! line is dropped and counted, and the writer reports the count with its
//! next batch: a slow log reader never delays a response.
//!
//! The lines have the fields and format of Kiln's other log lines (`target`
//! `kiln::request`), so one parser reads both. When Kiln did not install the
//! global subscriber (an application that brings its own, or tests), the
//! access log is an ordinary `tracing` event with the same fields instead.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};

use crate::http::RequestId;

/// Lines that may wait for the writer; past this they are dropped.
const QUEUE_LINES: usize = 16 * 1024;
/// The writer stops collecting and writes once a batch is this large.
const BATCH_BYTES: usize = 64 * 1024;
/// How long the writer waits after a batch before it looks for more: lines
/// reach the log at most this late, and the workers wake it at most this often.
const GATHER: Duration = Duration::from_millis(20);

static WRITER: OnceLock<Writer> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

struct Writer {
    queue: SyncSender<Message>,
    json: bool,
}

/// Starts the writer thread; called once Kiln's own subscriber is installed.
pub(super) fn start(json: bool) {
    WRITER.get_or_init(|| {
        let (queue, lines) = std::sync::mpsc::sync_channel(QUEUE_LINES);
        let spawned = std::thread::Builder::new()
            .name("kiln-access-log".to_owned())
            .spawn(move || write_batches(&lines, json));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the access log writer; access lines go through tracing");
        }
        Writer { queue, json }
    });
}

/// Waits (up to a second) until every access line queued so far is written.
/// `runserver` calls it before exiting so the last requests are in the log.
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        if writer.queue.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Logs one request, if the `kiln::request` target is enabled at INFO.
pub(crate) fn record(
    method: &Method,
    path: &str,
    status: StatusCode,
    latency: Duration,
    id: &RequestId,
) {
    if !tracing::enabled!(target: "kiln::request", tracing::Level::INFO) {
        return;
    }
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let Some(writer) = WRITER.get() else {
        tracing::info!(
            target: "kiln::request",
            method = %method,
            path,
            status = status.as_u16(),
            latency_us,
            request_id = %id,
        );
        return;
    };
    let line = Line {
        method: method.as_str(),
        path,
        status: status.as_u16(),
        latency_us,
        request_id: id.as_str(),
    };
    let bytes = if writer.json {
        line.json(SystemTime::now())
    } else {
        line.text(SystemTime::now())
    };
    match writer.queue.try_send(Message::Line(bytes)) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The fields of one access line.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_us: u64,
    request_id: &'a str,
}

impl Line<'_> {
    /// The JSON form, keyed like the fmt layer's JSON events.
    fn json(&self, now: SystemTime) -> Vec<u8> {
        let mut out = String::with_capacity(160 + self.path.len());
        out.push_str("{\"timestamp\":\"");
        push_timestamp(&mut out, now);
        out.push_str("\",\"level\":\"INFO\",\"method\":");
        push_json_string(&mut out, self.method);
        out.push_str(",\"path\":");
        push_json_string(&mut out, self.path);
        out.push_str(",\"status\":");
        out.push_str(itoa::Buffer::new().format(self.status));
        out.push_str(",\"latency_us\":");
        out.push_str(itoa::Buffer::new().format(self.latency_us));
        // Request ids are `[A-Za-z0-9._-]` (see `RequestId`): nothing to escape.
        out.push_str(",\"request_id\":\"");
        out.push_str(self.request_id);
        out.push_str("\",\"target\":\"kiln::request\"}\n");
        out.into_bytes()
    }

    /// The human form, like the fmt layer's compact lines.
    fn text(&self, now: SystemTime) -> Vec<u8> {
        let mut out = String::with_capacity(128 + self.path.len());
        push_timestamp(&mut out, now);
        let _ = writeln!(
            out,
            "  INFO kiln::request: method={} path={:?} status={} latency_us={} request_id={}",
            self.method, self.path, self.status, self.latency_us, self.request_id
        );
        out.into_bytes()
    }
}

/// Appends `text` as a JSON string literal (log text can be attacker-controlled).
fn push_json_string(out: &mut String, text: &str) {
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    // Anything to escape goes through serde_json, which knows every case.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// RFC 3339 in UTC with microseconds, as tracing's fmt layer writes it. The
/// date and time to the second are formatted once per second and thread.
fn push_timestamp(out: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let (year, month, day) = civil_from_days(seconds / 86_400);
            let of_day = seconds % 86_400;
            text.clear();
            let _ = write!(
                text,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60,
            );
            *cached = seconds;
        }
        out.push_str(text);
    });
    let micros = since_epoch.subsec_micros();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    for _ in digits.len()..6 {
        out.push('0');
    }
    out.push_str(digits);
    out.push('Z');
}

/// The calendar date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The writer thread: blocks for a line, gathers what else is queued, writes it at once.
fn write_batches(lines: &Receiver<Message>, json: bool) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut acks = Vec::new();
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => batch.extend_from_slice(&line),
                Message::Flush(ack) => acks.push(ack),
            }
            next = if batch.len() < BATCH_BYTES {
                lines.try_recv().ok()
            } else {
                None
            };
        }
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            batch.extend_from_slice(&dropped_notice(dropped, json, SystemTime::now()));
        }
        // A lost log line must never cost a response, nor stop the writer.
        let _ = std::io::stderr().lock().write_all(&batch);
        batch.clear();
        let flushed = !acks.is_empty();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        // Let lines gather before the next batch. Blocking in `recv` right
        // away would make nearly every request's `try_send` wake this thread:
        // a futex call and a context switch per request, on the workers.
        if !flushed {
            std::thread::sleep(GATHER);
        }
    }
}

fn dropped_notice(count: u64, json: bool, now: SystemTime) -> Vec<u8> {
    let message =
        format!("{count} access log line(s) dropped: the log reader is slower than the traffic");
    let mut out = String::new();
    if json {
        out.push_str("{\"timestamp\":\"");
        push_timestamp(&mut out, now);
        out.push_str("\",\"level\":\"WARN\",\"message\":");
        push_json_string(&mut out, &message);
        out.push_str(",\"target\":\"kiln::request\"}\n");
    } else {
        push_timestamp(&mut out, now);
        let _ = writeln!(out, "  WARN kiln::request: {message}");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        // 2024-02-29T23:59:59.123456Z: a leap day, the last second of the day.
        push_timestamp(
            &mut out,
            UNIX_EPOCH + Duration::new(1_709_251_199, 123_456_000),
        );
        assert_eq!(out, "2024-02-29T23:59:59.123456Z");
        out.clear();
        push_timestamp(&mut out, UNIX_EPOCH);
        assert_eq!(out, "1970-01-01T00:00:00.000000Z");
        out.clear();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(951_868_800));
        assert_eq!(out, "2000-03-01T00:00:00.000000Z");
    }

    #[test]
    fn json_lines_parse_and_escape_hostile_paths() {
        let line = Line {
            method: "GET",
            path: "/a\"b\\c\n",
            status: 404,
            latency_us: 17,
            request_id: "abc",
        };
        let bytes = line.json(UNIX_EPOCH);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        let event: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(event["path"], "/a\"b\\c\n");
        assert_eq!(event["status"], 404);
        assert_eq!(event["latency_us"], 17);
        assert_eq!(event["request_id"], "abc");
        assert_eq!(event["target"], "kiln::request");
        assert_eq!(event["timestamp"], "1970-01-01T00:00:00.000000Z");
        let text = String::from_utf8(line.text(UNIX_EPOCH)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn dropped_lines_are_reported_as_valid_json() {
        let notice = dropped_notice(3, true, UNIX_EPOCH);
        let event: serde_json::Value = serde_json::from_slice(&notice).unwrap();
        assert_eq!(event["level"], "WARN");
        assert!(
            event["message"]
                .as_str()
                .unwrap()
                .starts_with("3 access log line(s) dropped")
        );
    }

    #[test]
    fn strings_are_escaped_only_when_needed() {
        let mut out = String::new();
        push_json_string(&mut out, "/plain/path");
        assert_eq!(out, "\"/plain/path\"");
        out.clear();
        push_json_string(&mut out, "a\"b\\c\n\u{1}");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}");
    }
}
