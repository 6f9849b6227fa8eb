//! Server-Sent Events: a room of the channel layer, or any stream, as a
//! `text/event-stream` response.
//!
//! [`room`] streams a room: each message is an event whose `id` is the
//! message id, so a browser's `EventSource` sends it back as
//! `Last-Event-ID` when it reconnects, and the stream resumes from the
//! room's history with exactly the messages missed. When they have already
//! left the history window the first event is a `resync` event: the client
//! must reload its state from its source of truth, then live events follow.
//! [`stream`] turns any [`Stream`] of [`Event`]s into a response (a live
//! dashboard, progress of a job). Both send a keep-alive comment
//! (`: keep-alive`) after `keep_alive` without an event, so proxies do not
//! close an idle stream.
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use kiln::prelude::*;
//! use kiln::realtime::ChannelLayer;
//! use kiln::realtime::sse::{self, LastEventId};
//!
//! async fn events(
//!     layer: axum::extract::State<Arc<dyn ChannelLayer>>,
//!     Path(room): Path<String>,
//!     last_event_id: LastEventId,
//! ) -> Result<impl axum::response::IntoResponse, Error> {
//!     sse::room(&layer, &room, last_event_id.0, Duration::from_secs(15)).await
//! }
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::request::Parts;

use super::layer::{ChannelLayer, Envelope, History, MessageId};

pub use axum::response::sse::{Event, KeepAlive, Sse};

/// The event sent when the messages after `Last-Event-ID` are no longer kept.
pub const RESYNC_EVENT: &str = "resync";

/// The shortest keep-alive interval; shorter ones are raised to it.
pub const MIN_KEEP_ALIVE: Duration = Duration::from_millis(100);

/// An SSE response of `events`, with a keep-alive comment after
/// `keep_alive` of silence (at least [`MIN_KEEP_ALIVE`]).
pub fn stream<S>(
    events: S,
    keep_alive: Duration,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    S: Stream<Item = Event> + Send + 'static,
{
    // A zero interval would send comments as fast as the socket takes them.
    let interval = keep_alive.max(MIN_KEEP_ALIVE);
    Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(interval).text("keep-alive"))
}

/// The live messages of `room` as SSE events (`id` = message id, `data` =
/// the payload as UTF-8), after the messages kept since `last_event_id` when
/// it is given, or a `resync` event when they are gone.
///
/// The live subscription starts before the history is read, and live
/// messages the history already delivered are skipped by id, so a message
/// published during the switch is sent exactly once.
///
/// # Errors
///
/// 503 Service Unavailable when the channel layer fails (its error is
/// logged, not shown).
pub async fn room(
    layer: &Arc<dyn ChannelLayer>,
    room: &str,
    last_event_id: Option<MessageId>,
    keep_alive: Duration,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>, crate::Error> {
    let unavailable = |error| {
        crate::Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the live event stream is unavailable; try again later",
        )
        .with_source(error)
    };
    let live = layer.subscribe(room).await.map_err(unavailable)?;
    let (backlog, delivered_through) = match last_event_id {
        None => (Vec::new(), 0),
        Some(after) => match layer
            .history_after(room, after)
            .await
            .map_err(unavailable)?
        {
            History::Messages(messages) => {
                let through = messages.last().map_or(after, |message| message.id);
                (messages.iter().map(message_event).collect(), through)
            }
            History::Gone => (vec![Event::default().event(RESYNC_EVENT).data(room)], 0),
        },
    };
    let live = live.filter_map(move |message| {
        let fresh = message.id > delivered_through;
        std::future::ready(fresh.then(|| message_event(&message)))
    });
    Ok(stream(
        futures_util::stream::iter(backlog).chain(live),
        keep_alive,
    ))
}

fn message_event(message: &Envelope) -> Event {
    // SSE lines end at CR or LF; axum splits data on LF only.
    let data = String::from_utf8_lossy(&message.payload)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    Event::default().id(message.id.to_string()).data(data)
}

/// The `Last-Event-ID` request header as a message id; `None` when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<MessageId>);

/// A `Last-Event-ID` header that is not a message id: 400 Bad Request.
#[derive(Debug)]
pub struct LastEventIdRejection;

impl LastEventIdRejection {
    /// 400 Bad Request.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl IntoResponse for LastEventIdRejection {
    fn into_response(self) -> Response {
        (
            self.status(),
            "Last-Event-ID must be the id of an event this stream sent (a number)",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = LastEventIdRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("last-event-id") else {
            return Ok(Self(None));
        };
        let text = value.to_str().map_err(|_| LastEventIdRejection)?.trim();
        if text.is_empty() {
            return Ok(Self(None));
        }
        text.parse()
            .map(|id| Self(Some(id)))
            .map_err(|_| LastEventIdRejection)
    }
}
