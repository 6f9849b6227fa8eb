//! A tokio-tungstenite client of Kiln's realtime wire protocol
//! (`docs/topics/realtime.md`), for the tests that run servers.
//!
//! A test file includes it with `#[path = "support/ws.rs"] pub mod ws;`.
//! Every wait is bounded by [`GUARD`] only so that a broken feature fails
//! instead of hanging; nothing depends on timing.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single wait may take before the test fails.
pub const GUARD: Duration = Duration::from_secs(20);

/// One client connection.
#[derive(Debug)]
pub struct Client {
    /// The socket, for tests that send raw frames.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    /// Frames that came while [`Client::request`] waited for its answer,
    /// kept for the next reads: a room message and the ack of the request
    /// that sent it may come in either order.
    early: std::collections::VecDeque<Value>,
}

impl Client {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self::new(ws)
    }

    /// A client on an already connected socket.
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            next_ack: 0,
            early: std::collections::VecDeque::new(),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame (control frames are skipped).
    pub async fn recv(&mut self) -> Value {
        match self.early.pop_front() {
            Some(frame) => frame,
            None => self.recv_socket().await,
        }
    }

    /// The next JSON frame from the socket itself.
    async fn recv_socket(&mut self) -> Value {
        // One deadline for the whole wait: skipped pings must not extend it.
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("connection ended")
                .unwrap();
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Frames until one that `wanted` accepts, which is returned.
    pub async fn until(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let frame = self.recv().await;
            if wanted(&frame) {
                return frame;
            }
        }
    }

    /// Sends a message asking for an ack and returns the ack's data.
    pub async fn request(&mut self, data: Value) -> Value {
        self.next_ack += 1;
        let ack = self.next_ack;
        self.send(json!({ "t": "msg", "data": data, "ack": ack }))
            .await;
        let reply = self
            .answer(|f| f["ack"] == ack && (f["t"] == "ack" || f["t"] == "error"))
            .await;
        assert_eq!(reply["t"], "ack", "{reply}");
        reply["data"].clone()
    }

    /// The first frame from the socket that `is_answer` accepts: the
    /// server's answer to a request. The frames before it (room messages and
    /// presence the request caused may overtake it) are kept for `recv`.
    async fn answer(&mut self, is_answer: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.recv_socket().await;
            if is_answer(&frame) {
                return frame;
            }
            self.early.push_back(frame);
        }
    }

    /// Joins `room` and returns the server's answer (`joined` or `error`).
    pub async fn join(&mut self, room: &str, last_id: Option<u64>) -> Value {
        self.next_ack += 1;
        let ack = self.next_ack;
        let mut frame = json!({ "t": "join", "room": room, "ack": ack });
        if let Some(last_id) = last_id {
            frame["last_id"] = json!(last_id);
        }
        self.send(frame).await;
        self.answer(|f| f["ack"] == ack).await
    }

    /// The next room message of `room`.
    pub async fn room_msg(&mut self, room: &str) -> Value {
        self.until(|f| f["t"] == "msg" && f["room"] == room).await
    }

    /// Reads until the server closes; the close code, if it sent a frame.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("not closed in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Fails unless the connection still answers requests (as `user`) and
    /// nothing else was sent to it before the answer.
    pub async fn assert_alive(&mut self, user: &str) {
        self.next_ack += 1;
        let ack = self.next_ack;
        self.send(json!({ "t": "msg", "data": { "type": "whoami" }, "ack": ack }))
            .await;
        let reply = self.recv().await;
        assert_eq!(
            (&reply["t"], &reply["ack"]),
            (&json!("ack"), &json!(ack)),
            "{reply}"
        );
        assert_eq!(reply["data"]["user"], user);
    }

    pub async fn whoami(&mut self) -> String {
        let me = self.request(json!({ "type": "whoami" })).await;
        me["id"].as_str().unwrap().to_owned()
    }
}

/// Polls `condition` until it holds (failing after [`GUARD`]).
pub async fn wait_until(condition: impl AsyncFn() -> bool) {
    tokio::time::timeout(GUARD, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition not reached in time");
}
