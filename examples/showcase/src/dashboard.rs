//! The `dashboard` app: a live chart of the server, fed by Server-Sent Events.
//!
//! A background task samples the server every second (requests per second,
//! open WebSocket connections, chat messages and poll votes stored) and
//! publishes each sample to the channel-layer room [`ROOM`], which keeps the
//! last [`KEEP`] samples. The page renders the kept samples, then follows
//! the room with `EventSource` from the newest one it drew: its events carry
//! the samples' ids, so a browser that reconnects sends `Last-Event-ID` and
//! gets exactly the samples it missed.
//!
//! Kiln has no start-up hook for background tasks yet, so the sampler starts
//! with the first dashboard request and runs as long as the process. Each
//! process samples itself: with several processes sharing a channel layer,
//! give each its own room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kiln::deps::axum::extract::State;
use kiln::deps::axum::middleware::Next;
use kiln::prelude::*;

mod sampler;
mod urls;
mod views;

/// The channel-layer room the samples are published to.
pub const ROOM: &str = "dashboard.samples";

/// How many samples the room keeps: two minutes, which is both what the
/// page draws and how far back a reconnecting browser resumes.
pub const KEEP: usize = 120;

/// How often the server is sampled.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the dashboard counts, shared by the request counter (a project-wide
/// middleware, [`count_request`]) and the sampler.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    /// The id of the newest sample published (0 before the first).
    last_id: AtomicU64,
    /// The id of the first sample published (0 before it). Ids are not
    /// consecutive (the layer may number other rooms' messages in between,
    /// or start them from the clock), so the page reads the history from
    /// no earlier than this.
    first_id: AtomicU64,
    sampler: OnceLock<()>,
}

impl Metrics {
    /// New counters, for one project.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Requests served since the project started.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Starts the sampler of `site` unless it runs already.
    fn start_sampler(self: &Arc<Self>, site: &Site) {
        self.sampler.get_or_init(|| {
            kiln::deps::tokio::spawn(sampler::run(Arc::clone(self), site.clone()));
        });
    }
}

/// Counts every request of the project; apply it with
/// `axum::middleware::from_fn_with_state(metrics, count_request)`.
pub async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

/// The app, mounted at `/dashboard` by the project.
#[must_use]
pub fn app(metrics: &Arc<Metrics>) -> App {
    App::new("dashboard")
        .templates(kiln::templates_dir!("src/dashboard/templates"))
        .urls(urls::urls())
        .layer(kiln::deps::axum::Extension(Arc::clone(metrics)))
}
