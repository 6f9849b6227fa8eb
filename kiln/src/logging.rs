//! Logging with `tracing`: human-readable in debug mode, JSON lines in production.
//!
//! The level comes from the `log_level` setting; `RUST_LOG` overrides it.
//! Each request runs in a span carrying its id, so every line a handler logs
//! can be traced back to the request.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::settings::{LogFormat, Settings};

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
    let _ = if settings.json_logs() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else if settings.log_format == LogFormat::Pretty {
        builder.pretty().try_init()
    } else {
        builder.compact().try_init()
    };
}
