//! The live dashboard on a real port: its page, and its Server-Sent Events
//! read by a streaming HTTP client (ids, resume with `Last-Event-ID`).

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

#[path = "support/server.rs"]
pub mod server;

use serde_json::Value;
use server::{GUARD, Server};

/// An open event stream.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event that is not a comment: its id and its data as JSON.
    async fn next(&mut self) -> (u64, Value) {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(|value| value.trim_start().to_owned())
                };
                if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                    return (id.parse().unwrap(), serde_json::from_str(&data).unwrap());
                }
            }
            let chunk = tokio::time::timeout(GUARD, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn the_page_renders_with_its_stream_url() {
    let server = Server::start().await;
    let page = reqwest::get(server.http("/dashboard/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let events = server.client.reverse("dashboard:events", ());
    assert!(
        page.contains(&format!("data-events=\"{events}\"")),
        "{page}"
    );
    assert!(page.contains("<canvas id=\"chart\""), "{page}");
    // No script from elsewhere: the chart is drawn by the app's own script.
    assert!(!page.contains("<script src=\"http"), "{page}");
    assert!(
        page.contains("src=\"/static/dashboard/chart.js\""),
        "{page}"
    );
    let script = reqwest::get(server.http("/static/dashboard/chart.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("new EventSource("));
    // Once samples exist, the page draws them and resumes after the newest.
    let mut events = Events::open(&server.http(&events), None).await;
    let (id, _) = events.next().await;
    let page = reqwest::get(server.http("/dashboard/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last_id: u64 = page
        .split("data-last-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(last_id >= id, "{last_id} < {id}");
    assert!(
        page.contains("requests_per_second"),
        "the samples are embedded: {page}"
    );
}

#[tokio::test]
async fn the_stream_yields_samples_with_increasing_ids() {
    let server = Server::start().await;
    let mut events = Events::open(&server.http("/dashboard/events/"), None).await;
    let (first, sample) = events.next().await;
    let (second, _) = events.next().await;
    assert!(second > first, "{first} then {second}");
    for key in ["time", "requests_per_second", "websockets"] {
        assert!(sample[key].is_number(), "{key}: {sample}");
    }
    assert!(sample["stored"]["chat_messages"].is_number(), "{sample}");
    assert!(sample["stored"]["votes"].is_number(), "{sample}");
    // Later samples count the requests made meanwhile (this stream, at least).
    let mut counted = 0;
    for _ in 0..10 {
        reqwest::get(server.http("/healthz")).await.unwrap();
        counted = events.next().await.1["requests_per_second"]
            .as_u64()
            .unwrap();
        if counted > 0 {
            break;
        }
    }
    assert!(counted > 0, "requests are never counted");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_resumes_with_the_next_sample() {
    let server = Server::start().await;
    let url = server.http("/dashboard/events/");
    let mut events = Events::open(&url, None).await;
    let (first, _) = events.next().await;
    let (second, _) = events.next().await;
    let (third, _) = events.next().await;
    drop(events);
    // The header, as a browser's EventSource sends it when it reconnects...
    let mut resumed = Events::open(&url, Some(&first.to_string())).await;
    assert_eq!(resumed.next().await.0, second);
    assert_eq!(resumed.next().await.0, third);
    // ...or the query string, as the page's first request carries it.
    let mut resumed = Events::open(&format!("{url}?last_id={second}"), None).await;
    assert_eq!(resumed.next().await.0, third);
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400() {
    let server = Server::start().await;
    let response = reqwest::Client::new()
        .get(server.http("/dashboard/events/"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
