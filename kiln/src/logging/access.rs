//! The access log: one line per request, written off the request path.
//!
//! A request's line is formatted on the worker that served it and appended
//! to that worker's buffer; a writer thread takes the buffers and writes
//! each in one `write(2)`, at most every 20 ms. Emitting it as a `tracing` event through
//! the fmt layer instead cost more than the rest of Kiln's stack put
//! together: JSON formatting through serde plus one `write(2)` per request
//! behind std's stderr lock, which the workers contend for (see
//! `benchmarks/README.md`). A queue of one allocation per line, freed on the
//! writer thread (tracing-appender's `non_blocking`), cost more than a
//! buffer's short lock. One buffer per worker rather than one shared by all
//! keeps each worker's lock and buffer in its own core's cache: the writer
//! touches them once per batch, where a shared buffer moved between cores
//! on nearly every request. The price is the order of lines: those of one
//! batch are grouped by worker, so lines from different workers can be out
//! of order by up to a batch's 20 ms (each carries its timestamp). The
//! writer swaps a buffer for the one it wrote last, emptied, so that neither
//! is grown again from nothing for every batch.
//!
//! When 4 MiB of lines are waiting in a worker's buffer, because whatever
//! reads stderr cannot keep up, further lines are dropped and counted, and
//! the writer reports the count with its next batch: a slow log reader never
//! delays a response. `runserver` writes the lines still waiting before it
//! exits ([`flush`]).
//!
//! In debug mode the writer is not started (see `logging::init`): lines are
//! `tracing` events, written at once, in order with the other log lines.
//!
//! The lines have the fields and format of Kiln's other log lines (`target`
//! `kiln::request`), so one parser reads both. When Kiln did not install the
//! global subscriber (an application that brings its own, or tests), the
//! access log is an ordinary `tracing` event with the same fields instead.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};

use crate::http::RequestId;

/// Bytes of lines that may wait for the writer in one worker's buffer; past
/// this, lines are dropped.
const MAX_PENDING: usize = 4 << 20;
/// How long the writer waits after a batch before it takes the next: lines
/// reach the log at most this late, and the workers wake it at most this often.
const GATHER: Duration = Duration::from_millis(20);
/// The capacity a written batch's buffer keeps for the next one: a 20 ms
/// batch at 100,000 requests per second is about 400 KiB.
const KEPT_CAPACITY: usize = 1 << 20;

static WRITER: OnceLock<Writer> = OnceLock::new();

struct Writer {
    json: bool,
    /// The buffer of every thread that has logged a request, in the order
    /// they first did.
    buffers: Mutex<Vec<Buffer>>,
    /// The buffer of the batch being written, empty between batches; held
    /// while a batch is taken and written, so batches keep their order.
    writing: Mutex<Vec<u8>>,
    thread: Thread,
}

/// A thread's lines waiting for the writer: the thread's handle and the writer's.
type Buffer = Arc<Mutex<Pending>>;

/// Lines waiting for the writer.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Pending {
    /// Appends `line` unless the buffer is full; says whether it was empty
    /// (the writer may be parked and need waking).
    fn push(&mut self, line: &[u8]) -> bool {
        let was_empty = self.bytes.is_empty();
        if self.bytes.len() + line.len() > MAX_PENDING {
            self.dropped += 1;
        } else {
            self.bytes.extend_from_slice(line);
        }
        was_empty
    }
}

/// A poisoned lock only means a thread panicked while holding it; the
/// buffer is still a valid `Vec`, so logging goes on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts the writer thread; called in production once Kiln's own subscriber is installed.
pub(super) fn start(json: bool) {
    // Kiln's filter is fixed once installed (it is not reloaded), so whether
    // access lines are wanted is decided here, once, rather than through
    // the subscriber for every request. Without the writer, `record` emits
    // `tracing` events, which that filter then drops.
    if WRITER.get().is_some() || !tracing::enabled!(target: "kiln::request", tracing::Level::INFO) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("kiln-access-log".to_owned())
        .spawn(write_batches);
    match spawned {
        Ok(handle) => {
            let _ = WRITER.set(Writer {
                json,
                buffers: Mutex::default(),
                writing: Mutex::default(),
                thread: handle.thread().clone(),
            });
            handle.thread().unpark();
        }
        Err(error) => {
            tracing::warn!(%error, "cannot start the access log writer; access lines go through tracing");
        }
    }
}

/// Writes every access line recorded so far. `runserver` calls it before
/// exiting so the last requests are in the log.
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        writer.write_pending();
    }
}

impl Writer {
    /// Takes the waiting lines and writes them; says whether there were any.
    fn write_pending(&self) -> bool {
        let mut batch = lock(&self.writing);
        // A copy of the list, so that a thread logging its first line does
        // not wait for the writes.
        let buffers = lock(&self.buffers).clone();
        let mut wrote = false;
        for buffer in &buffers {
            let dropped = {
                let mut pending = lock(buffer);
                std::mem::swap(&mut pending.bytes, &mut *batch);
                std::mem::take(&mut pending.dropped)
            };
            if batch.is_empty() && dropped == 0 {
                continue;
            }
            if dropped > 0 {
                dropped_notice(&mut batch, dropped, self.json, SystemTime::now());
            }
            // A lost log line must never cost a response, nor stop the writer.
            let _ = std::io::stderr().lock().write_all(&batch);
            batch.clear();
            batch.shrink_to(KEPT_CAPACITY);
            wrote = true;
        }
        drop(buffers);
        // The buffer of a thread that has ended is only the list's now;
        // forgotten once written, so that threads that come and go do not
        // grow the list.
        lock(&self.buffers)
            .retain(|buffer| Arc::strong_count(buffer) > 1 || !lock(buffer).bytes.is_empty());
        wrote
    }

    /// A new buffer for the calling thread, in the writer's list.
    fn register(&self) -> Buffer {
        let buffer = Buffer::default();
        lock(&self.buffers).push(Arc::clone(&buffer));
        buffer
    }
}

/// The writer thread: writes what has gathered, waits, and parks when idle
/// (the first line after a pause wakes it).
fn write_batches() {
    // `start` publishes the writer, then unparks this thread.
    let writer = loop {
        match WRITER.get() {
            Some(writer) => break writer,
            None => std::thread::park(),
        }
    };
    loop {
        if writer.write_pending() {
            std::thread::sleep(GATHER);
        } else {
            std::thread::park();
        }
    }
}

/// A worker's buffers for its access lines.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    clock: TimestampCache,
    /// Set on the thread's first line.
    pending: Option<Buffer>,
}

thread_local! {
    /// Each worker formats its lines here, so a line costs no allocation.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Logs one request, if the `kiln::request` target is enabled at INFO.
pub(crate) fn record(
    method: &Method,
    path: &str,
    status: StatusCode,
    latency: Duration,
    id: &RequestId,
) {
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
        request_id: id.as_bytes(),
    };
    SCRATCH.with_borrow_mut(
        |Scratch {
             line: out,
             clock,
             pending,
         }| {
            out.clear();
            if writer.json {
                line.json(out, clock, SystemTime::now());
            } else {
                line.text(out, clock, SystemTime::now());
            }
            let pending = pending.get_or_insert_with(|| writer.register());
            let was_empty = lock(pending).push(out);
            if was_empty {
                writer.thread.unpark();
            }
        },
    );
}

/// The fields of one access line.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_us: u64,
    request_id: &'a [u8],
}

impl Line<'_> {
    /// The JSON form, keyed like the fmt layer's JSON events.
    fn json(&self, out: &mut Vec<u8>, clock: &mut TimestampCache, now: SystemTime) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        clock.push(out, now);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"method\":");
        push_json_string(out, self.method);
        out.extend_from_slice(b",\"path\":");
        push_json_string(out, self.path);
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b",\"latency_us\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.latency_us).as_bytes());
        // Request ids are `[A-Za-z0-9._-]` (see `RequestId`): nothing to escape.
        out.extend_from_slice(b",\"request_id\":\"");
        out.extend_from_slice(self.request_id);
        out.extend_from_slice(b"\",\"target\":\"kiln::request\"}\n");
    }

    /// The human form, like the fmt layer's compact lines.
    fn text(&self, out: &mut Vec<u8>, clock: &mut TimestampCache, now: SystemTime) {
        clock.push(out, now);
        let _ = writeln!(
            out,
            "  INFO kiln::request: method={} path={:?} status={} latency_us={} request_id={}",
            self.method,
            self.path,
            self.status,
            self.latency_us,
            self.request_id.escape_ascii()
        );
    }
}

/// Appends `text` as a JSON string literal (log text can be attacker-controlled).
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    /// The bytes JSON requires escaped in a string: controls, `"` and `\`.
    /// A table lookup per byte, since every path of every request is checked.
    const ESCAPED: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 0x20 {
            table[byte] = true;
            byte += 1;
        }
        table[b'"' as usize] = true;
        table[b'\\' as usize] = true;
        table
    };
    if !text.bytes().any(|b| ESCAPED[usize::from(b)]) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    // Anything to escape goes through serde_json, which knows every case.
    match serde_json::to_string(text) {
        Ok(quoted) => out.extend_from_slice(quoted.as_bytes()),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

/// Formats timestamps as RFC 3339 in UTC with microseconds, as tracing's fmt
/// layer writes them. The date and time to the second are formatted once
/// per second (per worker, each keeps its own).
#[derive(Default)]
struct TimestampCache {
    second: Option<u64>,
    text: String,
}

impl TimestampCache {
    fn push(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_epoch.as_secs();
        if self.second != Some(seconds) {
            let (year, month, day) = civil_from_days(seconds / 86_400);
            let of_day = seconds % 86_400;
            self.text = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60,
            );
            self.second = Some(seconds);
        }
        out.extend_from_slice(self.text.as_bytes());
        let mut micros = since_epoch.subsec_micros();
        let mut digits = *b"000000Z";
        for digit in digits[..6].iter_mut().rev() {
            // `micros % 10` is a single digit.
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out.extend_from_slice(&digits);
    }
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

fn dropped_notice(out: &mut Vec<u8>, count: u64, json: bool, now: SystemTime) {
    let message =
        format!("{count} access log line(s) dropped: the log reader is slower than the traffic");
    let mut clock = TimestampCache::default();
    if json {
        out.extend_from_slice(b"{\"timestamp\":\"");
        clock.push(out, now);
        out.extend_from_slice(b"\",\"level\":\"WARN\",\"message\":");
        push_json_string(out, &message);
        out.extend_from_slice(b",\"target\":\"kiln::request\"}\n");
    } else {
        clock.push(out, now);
        let _ = writeln!(out, "  WARN kiln::request: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(clock: &mut TimestampCache, now: SystemTime) -> String {
        let mut out = Vec::new();
        clock.push(&mut out, now);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut clock = TimestampCache::default();
        // 2024-02-29T23:59:59.123456Z: a leap day, the last second of the day.
        let leap = UNIX_EPOCH + Duration::new(1_709_251_199, 123_456_000);
        assert_eq!(timestamp(&mut clock, leap), "2024-02-29T23:59:59.123456Z");
        // The same second again (from the cache), then the next one.
        let later = leap + Duration::from_micros(876_500);
        assert_eq!(timestamp(&mut clock, later), "2024-02-29T23:59:59.999956Z");
        let next = leap + Duration::from_micros(876_544);
        assert_eq!(timestamp(&mut clock, next), "2024-03-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(&mut clock, UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        let y2k = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(timestamp(&mut clock, y2k), "2000-03-01T00:00:00.000000Z");
    }

    #[test]
    fn json_lines_parse_and_escape_hostile_paths() {
        let line = Line {
            method: "GET",
            path: "/a\"b\\c\n",
            status: 404,
            latency_us: 17,
            request_id: b"abc",
        };
        let mut clock = TimestampCache::default();
        let mut bytes = Vec::new();
        line.json(&mut bytes, &mut clock, UNIX_EPOCH);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        let event: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(event["path"], "/a\"b\\c\n");
        assert_eq!(event["status"], 404);
        assert_eq!(event["latency_us"], 17);
        assert_eq!(event["request_id"], "abc");
        assert_eq!(event["target"], "kiln::request");
        assert_eq!(event["timestamp"], "1970-01-01T00:00:00.000000Z");
        let mut text = Vec::new();
        line.text(&mut text, &mut clock, UNIX_EPOCH);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_instead_of_growing() {
        let mut pending = Pending::default();
        assert!(
            pending.push(b"first\n"),
            "an empty buffer needs the writer woken"
        );
        assert!(!pending.push(b"second\n"));
        let big = vec![b'x'; MAX_PENDING];
        pending.push(&big);
        assert_eq!(pending.bytes, b"first\nsecond\n");
        assert_eq!(pending.dropped, 1);
    }

    #[test]
    fn dropped_lines_are_reported_as_valid_json() {
        let mut notice = Vec::new();
        dropped_notice(&mut notice, 3, true, UNIX_EPOCH);
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
        let mut out = Vec::new();
        push_json_string(&mut out, "/plain/path");
        assert_eq!(out, b"\"/plain/path\"");
        out.clear();
        push_json_string(&mut out, "a\"b\\c\n\u{1}");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}");
    }
}
