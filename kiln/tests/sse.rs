//! Server-Sent Events over a real port, read by a streaming HTTP client:
//! ids, `Last-Event-ID` resume, keep-alive comments, `resync` when the
//! history window has moved on (or the process restarted), and a plain stream.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use kiln::realtime::sse::{self, Event, LastEventId};
use kiln::realtime::{ChannelLayer, InProcessLayer};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    layer: Arc<dyn ChannelLayer>,
    keep_alive: Duration,
}

async fn room_events(
    State(state): State<AppState>,
    Path(room): Path<String>,
    last_event_id: LastEventId,
) -> Result<impl IntoResponse, kiln::Error> {
    sse::room(&state.layer, &room, last_event_id.0, state.keep_alive).await
}

async fn ticks() -> impl IntoResponse {
    let events = futures_util::stream::iter(
        (1..=3).map(|n| Event::default().event("tick").data(n.to_string())),
    );
    sse::stream(events, Duration::from_secs(30))
}

/// A server on a free port; returns its base URL and the layer behind it.
async fn serve(keep_alive: Duration) -> (String, Arc<dyn ChannelLayer>) {
    let layer: Arc<dyn ChannelLayer> = InProcessLayer::new();
    let app = Router::new()
        .route("/rooms/{room}/events", get(room_events))
        .route("/ticks", get(ticks))
        .with_state(AppState {
            layer: Arc::clone(&layer),
            keep_alive,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), layer)
}

/// One parsed SSE block: its fields in order (`("id", "3")`, `("", "keep-alive")`
/// for a comment).
type Block = Vec<(String, String)>;

struct Client {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    /// Opens the stream; the server has subscribed once the headers arrive.
    async fn open(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{url}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn block(&mut self) -> Block {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let text: String = self.buffer.drain(..end + 2).collect();
                return text[..end]
                    .lines()
                    .map(|line| {
                        let (field, value) = line.split_once(':').unwrap_or((line, ""));
                        (field.to_owned(), value.trim_start().to_owned())
                    })
                    .collect();
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event within the wait")
                .expect("the stream stays readable")
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event that is not a comment, as (`id`, `event`, `data`).
    async fn event(&mut self) -> (Option<String>, Option<String>, String) {
        loop {
            let block = self.block().await;
            if block.iter().all(|(field, _)| field.is_empty()) {
                continue;
            }
            let get = |name: &str| {
                block
                    .iter()
                    .find(|(field, _)| field == name)
                    .map(|(_, value)| value.clone())
            };
            let data = block
                .iter()
                .filter(|(field, _)| field == "data")
                .map(|(_, value)| value.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            return (get("id"), get("event"), data);
        }
    }
}

#[tokio::test]
async fn room_events_arrive_with_message_ids() {
    let (base, layer) = serve(Duration::from_secs(30)).await;
    let mut client = Client::open(&format!("{base}/rooms/lobby/events"), None).await;
    let first = layer
        .publish("lobby", "hello".into(), 10)
        .await
        .expect("publish");
    let second = layer
        .publish("lobby", "two\nlines".into(), 10)
        .await
        .expect("publish");
    assert_eq!(
        client.event().await,
        (Some(first.to_string()), None, "hello".to_owned())
    );
    assert_eq!(
        client.event().await,
        (Some(second.to_string()), None, "two\nlines".to_owned())
    );
}

#[tokio::test]
async fn last_event_id_resumes_with_exactly_the_missed_messages() {
    let (base, layer) = serve(Duration::from_secs(30)).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            layer
                .publish("chat", n.to_string().into(), 100)
                .await
                .expect("publish"),
        );
    }
    let seen = ids[1].to_string();
    let mut client = Client::open(&format!("{base}/rooms/chat/events"), Some(&seen)).await;
    let live = layer
        .publish("chat", "6".into(), 100)
        .await
        .expect("publish");
    let mut received = Vec::new();
    for _ in 0..4 {
        let (id, _, data) = client.event().await;
        received.push((id.unwrap_or_default(), data));
    }
    let expected: Vec<(String, String)> = ids[2..]
        .iter()
        .chain([&live])
        .zip(["3", "4", "5", "6"])
        .map(|(id, data)| (id.to_string(), data.to_owned()))
        .collect();
    assert_eq!(
        received, expected,
        "missed ones once, then live, no duplicate"
    );
    // Nothing else is pending: the next event is the next live message.
    let after = layer
        .publish("chat", "7".into(), 100)
        .await
        .expect("publish");
    assert_eq!(client.event().await.0, Some(after.to_string()));
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments() {
    let (base, _layer) = serve(Duration::from_millis(100)).await;
    let mut client = Client::open(&format!("{base}/rooms/quiet/events"), None).await;
    let block = client.block().await;
    assert_eq!(block, vec![(String::new(), "keep-alive".to_owned())]);
}

#[tokio::test]
async fn a_resume_beyond_the_history_window_gets_a_resync_event() {
    let (base, layer) = serve(Duration::from_secs(30)).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            layer
                .publish("busy", n.to_string().into(), 2)
                .await
                .expect("publish"),
        );
    }
    let seen = ids[0].to_string();
    let mut client = Client::open(&format!("{base}/rooms/busy/events"), Some(&seen)).await;
    let (id, event, _) = client.event().await;
    assert_eq!((id, event.as_deref()), (None, Some(sse::RESYNC_EVENT)));
    let live = layer.publish("busy", "6".into(), 2).await.expect("publish");
    assert_eq!(client.event().await.0, Some(live.to_string()), "then live");
}

#[tokio::test]
async fn a_resume_after_a_restart_on_the_in_process_layer_gets_resync_then_live_events() {
    // The browser's last id is from the process before the restart; the new
    // one's in-process layer kept nothing.
    let (_, before) = serve(Duration::from_secs(30)).await;
    let mut seen = 0;
    for n in 1..=3 {
        seen = before
            .publish("restarted", n.to_string().into(), 10)
            .await
            .expect("publish");
    }
    let (base, after) = serve(Duration::from_secs(30)).await;
    let mut client = Client::open(
        &format!("{base}/rooms/restarted/events"),
        Some(&seen.to_string()),
    )
    .await;
    let (id, event, _) = client.event().await;
    assert_eq!((id, event.as_deref()), (None, Some(sse::RESYNC_EVENT)));
    let live = after
        .publish("restarted", "4".into(), 10)
        .await
        .expect("publish");
    assert_eq!(client.event().await.0, Some(live.to_string()), "then live");
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400() {
    let (base, _layer) = serve(Duration::from_secs(30)).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/rooms/lobby/events"))
        .header("Last-Event-ID", "../../etc")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("a body");
    assert!(body.contains("Last-Event-ID"), "{body}");
}

#[tokio::test]
async fn any_stream_can_be_served_as_events() {
    let (base, _layer) = serve(Duration::from_secs(30)).await;
    let mut client = Client::open(&format!("{base}/ticks"), None).await;
    for n in 1..=3 {
        assert_eq!(
            client.event().await,
            (None, Some("tick".to_owned()), n.to_string())
        );
    }
}
