//! Logging with `tracing`: human-readable in debug mode, JSON lines in production.
//!
//! The level comes from the `log_level` setting; `RUST_LOG` overrides it.
//! Every line logged while a request is served carries its `request_id`
//! ([`WithRequestId`]), so it can be traced back to the request. In
//! production the access log has its own writer, off the request path
//! ([`access`]).

use std::io::IsTerminal;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FmtSpan, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::http::RequestId;

use crate::settings::{LogFormat, Settings};

mod access;

pub use access::flush;
pub(crate) use access::record as access;

/// Installs the global subscriber for `settings`. A second call (tests that
/// build several projects) keeps the first subscriber.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or collector gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        // When stderr is closed or full (a supervisor that stopped reading),
        // tracing's own fallback `eprintln!` would panic inside the request;
        // a lost log line must never cost a response.
        .log_internal_errors(false);
    let installed = if settings.json_logs() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .map_event_format(WithRequestId::json)
            .try_init()
    } else if settings.log_format == LogFormat::Pretty {
        builder
            .pretty()
            .map_event_format(WithRequestId::text)
            .try_init()
    } else {
        builder
            .compact()
            .map_event_format(WithRequestId::text)
            .try_init()
    };
    if installed.is_ok() {
        // Only with Kiln's own subscriber (an application that installed its
        // own gets the access log as `tracing` events, where it expects
        // them), and only in production: in debug mode the access lines go
        // through the subscriber too, at once and in order with the others.
        if !settings.debug {
            access::start(settings.json_logs());
        }
        log_panics();
    }
}

/// Reports panics as log events (a JSON line in production, with the
/// request id when a view panicked) instead of the default hook's plain text
/// on stderr, which log collectors would not parse. The server goes on: the
/// core service turns a view's panic into a 500.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic payload that is not text)");
        let location = info
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line()))
            .unwrap_or_default();
        // Captured only when RUST_BACKTRACE asks for it; a `None` field is left out.
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
            .then(|| tracing::field::display(backtrace));
        tracing::error!(target: "kiln::panic", location, backtrace, "panicked: {message}");
    }));
}

/// Adds `request_id` to every event logged while a request is served, from
/// the task-local [`RequestId::current`].
///
/// A per-request `tracing` span would do the same, but creating and entering
/// one cost more than the rest of Kiln's request path (callgrind, see
/// `benchmarks/README.md`); the task-local is set for every request anyway.
/// Events that name their own `request_id`, and tasks a view spawns without
/// [`RequestId::scope`], are left as they are.
struct WithRequestId<F> {
    format: F,
    json: bool,
}

impl<F> WithRequestId<F> {
    fn json(format: F) -> Self {
        Self { format, json: true }
    }

    fn text(format: F) -> Self {
        Self {
            format,
            json: false,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let id = RequestId::current()
            .filter(|_| !event.fields().any(|field| field.name() == "request_id"));
        let Some(id) = id else {
            return self.format.format_event(ctx, writer, event);
        };
        // Formatted into a buffer to add the field; such lines lose colours
        // (tracing-subscriber keeps a buffer's colour switch private).
        let mut line = String::new();
        self.format
            .format_event(ctx, Writer::new(&mut line), event)?;
        if self.json {
            if let Some(rest) = line.strip_prefix('{') {
                return write!(writer, "{{\"request_id\":\"{id}\",{rest}");
            }
        } else if let Some(rest) = line.strip_suffix('\n') {
            return writeln!(writer, "{rest} request_id={id}");
        }
        writer.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<String> {
        String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn log_inside_and_outside(id: &RequestId) {
        id.clone()
            .scope(async { tracing::warn!(answer = 42, "inside") })
            .await;
        id.clone()
            .scope(async { tracing::warn!(request_id = "own", "named") })
            .await;
        tracing::warn!("outside");
    }

    #[tokio::test]
    async fn json_events_inside_a_request_carry_its_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .map_event_format(WithRequestId::json)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let id = RequestId::new();
        log_inside_and_outside(&id).await;
        let events: Vec<serde_json::Value> = lines(&captured)
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(events[0]["request_id"], id.as_str());
        assert_eq!(events[0]["answer"], 42);
        assert_eq!(events[1]["request_id"], "own");
        assert!(events[2].get("request_id").is_none(), "{}", events[2]);
    }

    #[tokio::test]
    async fn text_events_inside_a_request_carry_its_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .compact()
            .map_event_format(WithRequestId::text)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let id = RequestId::new();
        log_inside_and_outside(&id).await;
        let lines = lines(&captured);
        assert!(
            lines[0].ends_with(&format!("request_id={id}")),
            "{}",
            lines[0]
        );
        assert!(!lines[1].contains(id.as_str()), "{}", lines[1]);
        assert!(!lines[2].contains("request_id"), "{}", lines[2]);
    }
}
