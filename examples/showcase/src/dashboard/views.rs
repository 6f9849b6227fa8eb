//! Views of the `dashboard` app: the page and its event stream.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kiln::deps::axum::Extension;
use kiln::deps::axum::response::IntoResponse;
use kiln::prelude::*;
use kiln::realtime::History;
use kiln::realtime::sse::{self, LastEventId};
use kiln::templates::{context, render};

use super::Metrics;

/// How long a quiet stream waits before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The page: the kept samples as the chart's first points, and the id of
/// the newest, from which the event stream continues.
pub(super) async fn index(
    parts: Parts,
    site: Site,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Result<Response, Error> {
    metrics.start_sampler(&site);
    let newest = metrics.last_id.load(Ordering::Relaxed);
    let mut samples: Vec<serde_json::Value> = Vec::new();
    let mut last_id = 0;
    if newest > 0 {
        // The last KEEP ids at most, and none before the first sample's: a
        // room's history read from before the room had any message would
        // be Gone (the in-process layer's ids start from the clock, and
        // every room takes from one counter).
        let first = metrics.first_id.load(Ordering::Relaxed);
        let after = newest
            .saturating_sub(u64::try_from(super::KEEP).unwrap_or(u64::MAX))
            .max(first.saturating_sub(1));
        // Gone only when ids have gaps (NATS may skip some): the chart then
        // starts empty and fills live.
        if let Ok(History::Messages(kept)) = site
            .channels()
            .layer()
            .history_after(super::ROOM, after)
            .await
        {
            for envelope in kept {
                if let Ok(sample) = serde_json::from_slice(&envelope.payload) {
                    samples.push(sample);
                    last_id = envelope.id;
                }
            }
        }
    }
    // Embedded as JSON text in a data attribute, which the template
    // escapes; the page parses it.
    let samples = serde_json::to_string(&samples).map_err(Error::internal)?;
    render(
        &parts,
        "dashboard/index.html",
        context! { samples, last_id },
    )
}

/// The query string of the stream: where a fresh page resumes (a browser
/// cannot set `Last-Event-ID` on its first request; it sends the header on
/// its reconnects, which takes precedence).
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    last_id: Option<u64>,
}

/// The samples as Server-Sent Events, resuming after `Last-Event-ID`.
pub(super) async fn events(
    site: Site,
    Extension(metrics): Extension<Arc<Metrics>>,
    last_event_id: LastEventId,
    Query(query): Query<EventsQuery>,
) -> Result<impl IntoResponse, Error> {
    metrics.start_sampler(&site);
    let after = last_event_id.0.or(query.last_id).filter(|&id| id > 0);
    sse::room(site.channels().layer(), super::ROOM, after, KEEP_ALIVE).await
}
