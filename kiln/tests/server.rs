//! The server over real sockets: malformed requests, slow clients,
//! connection limits and graceful shutdown.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::net::SocketAddr;
use std::time::Duration;

use kiln::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Sends the shutdown signal; the server finishes in the background.
    fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown (if not done yet) and waits for the server to return.
    async fn stop(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn slow(Path(ms): Path<u64>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

async fn panics() -> &'static str {
    panic!("boom");
}

async fn ready_later(site: Site) -> String {
    tokio::time::sleep(Duration::from_millis(400)).await;
    format!("ready={}", site.is_ready())
}

async fn name(Path(name): Path<String>) -> String {
    name
}

/// Streams three chunks, 250 ms apart.
async fn trickle() -> Response {
    let chunks = futures_util::stream::unfold(0u8, |sent| async move {
        if sent == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        Some((Ok::<_, std::io::Error>(format!("chunk{sent};")), sent + 1))
    });
    kiln::deps::axum::body::Body::from_stream(chunks).into_response()
}

/// Switches to a protocol that echoes four bytes back.
async fn echo_upgrade(mut request: Request) -> Response {
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buffer = [0u8; 4];
            if io.read_exact(&mut buffer).await.is_ok() {
                let _ = io.write_all(&buffer).await;
            }
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, "echo")],
    )
        .into_response()
}

async fn start(extra: &str) -> Running {
    let project = Project::new("srv")
        .route("/", "index", get(|| async { "index" }))
        .route("/slow/{ms:int}", "slow", get(slow))
        .route("/panics", "panics", get(panics))
        .route("/name/{name}", "name", get(name))
        .route("/upgrade", "upgrade", get(echo_upgrade))
        .route("/trickle", "trickle", get(trickle))
        // A raw-socket client, not a browser: no CSRF cookie to send.
        .route(
            "/echo",
            "echo",
            post(|body: String| async move { body }).csrf_exempt(),
        )
        .route("/ready-later", "ready_later", get(ready_later));
    // `t` is the Host the raw-socket tests send.
    let settings = Settings::from_toml(&format!(
        "debug = true\nallowed_hosts = [\"t\", \"127.0.0.1\", \"localhost\"]\n{extra}"
    ))
    .unwrap();
    let (site, router) = project.build(settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(kiln::server::serve(listener, site, router, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// Sends raw bytes and reads until the server closes or `wait` passes.
async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut buffer)).await;
    String::from_utf8_lossy(&buffer).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn fetch(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    raw(addr, request.as_bytes(), Duration::from_secs(5)).await
}

/// A connection that has been served `GET /` and is kept alive.
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buffer[..n])), 200);
    stream
}

/// Fails unless the server closes `stream` (with a 408 answer or none)
/// within 5 s (a guard, not a measure).
async fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
    let closed = match &read {
        Ok(Ok(n)) => *n == 0 || status_of(&String::from_utf8_lossy(&buffer[..*n])) == 408,
        Ok(Err(_)) => true,
        Err(_) => false,
    };
    assert!(closed, "{what} kept open: {read:?}");
}

#[tokio::test]
async fn malformed_request_lines_and_headers_get_400() {
    let server = start("").await;
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    ] {
        let response = raw(server.addr, request, Duration::from_secs(5)).await;
        let status = status_of(&response);
        assert!((400..500).contains(&status), "{request:?} -> {response:?}");
    }
    // The server is unharmed.
    assert_eq!(status_of(&fetch(server.addr, "/").await), 200);
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_dot_dot_in_paths_are_4xx() {
    let server = start("").await;
    let utf8 = fetch(server.addr, "/name/%FF%FE").await;
    assert_eq!(status_of(&utf8), 400, "{utf8}");
    for path in [
        "/../../etc/passwd",
        "/name/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/name/..%2f..%2fetc",
    ] {
        let response = fetch(server.addr, path).await;
        assert_eq!(status_of(&response), 400, "{path} -> {response}");
        assert!(!response.contains("root:"), "{path} leaked a file");
    }
    assert_eq!(status_of(&fetch(server.addr, "/name/caf%C3%A9").await), 200);
    server.stop().await;
}

#[tokio::test]
async fn unknown_methods_are_4xx() {
    let server = start("").await;
    let response = raw(
        server.addr,
        b"BREW / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&response), 405, "{response}");
    let response = raw(
        server.addr,
        b"BREW /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&response), 404, "{response}");
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let server = start("request_body_limit = 1024").await;
    let body = "x".repeat(4096);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = raw(server.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 413, "{response}");
    server.stop().await;
}

#[tokio::test]
async fn panicking_handler_answers_500_and_server_keeps_serving() {
    let server = start("").await;
    assert_eq!(status_of(&fetch(server.addr, "/panics").await), 500);
    assert_eq!(status_of(&fetch(server.addr, "/").await), 200);
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    // Slowloris: a client that trickles its headers is disconnected.
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    assert_closed(&mut stream, "connection past the header timeout").await;
    server.stop().await;
}

#[tokio::test]
async fn silent_connections_are_dropped() {
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_closed(&mut stream, "silent connection").await;
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = kept_alive(server.addr).await;
    // Now idle: the server must not hold the connection forever.
    assert_closed(&mut stream, "idle connection").await;
    server.stop().await;
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_are_cut_off() {
    // Each piece arrives well within the limit; the head as a whole does not.
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut cut_off = false;
    while started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b"X-Slow: yes\r\n").await.is_err() {
            cut_off = true;
            break;
        }
        let mut buffer = [0u8; 256];
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buffer)).await
        {
            cut_off = matches!(read, Ok(0) | Err(_))
                || status_of(&String::from_utf8_lossy(&buffer[..read.unwrap_or(0)])) == 408;
            break;
        }
    }
    assert!(cut_off, "trickled headers kept the connection open for 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_late_second_request_on_a_kept_alive_connection_is_cut_off() {
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = kept_alive(server.addr).await;
    // Half a head, then nothing.
    stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    assert_closed(&mut stream, "connection past the header timeout").await;
    server.stop().await;
}

#[tokio::test]
async fn requests_slower_than_the_header_timeout_are_served() {
    // The header timeout bounds the head, not the handler: a request served
    // for longer keeps its connection, which then serves the next request.
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET /slow/700 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        let response = String::from_utf8_lossy(&buffer[..n]);
        assert_eq!(status_of(&response), 200, "{response}");
        assert!(response.ends_with("slept 700"), "{response}");
    }
    // Nor a response body streamed for longer.
    let response = fetch(server.addr, "/trickle").await;
    assert!(response.contains("chunk2;"), "{response}");
    server.stop().await;
}

/// A connection switched to the echo protocol of `/upgrade`.
async fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buffer[..n])), 101);
    stream
}

/// Fails unless the upgraded `stream` still echoes (which ends it).
async fn assert_echoes(stream: &mut TcpStream) {
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn upgraded_connections_are_not_bound_by_the_header_timeout() {
    let server = start("header_read_timeout = \"300ms\"").await;
    let mut stream = upgraded(server.addr).await;
    // Quiet for longer than the header timeout: the other protocol decides.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_echoes(&mut stream).await;
    server.stop().await;
}

/// hyper's connection ends when it hands the socket over; the socket must
/// still hold its place under `max_connections` until it closes.
#[tokio::test]
async fn upgraded_connections_count_against_max_connections() {
    let server = start("max_connections = 1").await;
    let mut upgraded = upgraded(server.addr).await;
    // The echo ends the upgraded connection, which frees its place.
    assert_a_second_client_waits_for(&server, assert_echoes(&mut upgraded)).await;
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_waits_for_upgraded_connections() {
    let mut server = start("shutdown_timeout = \"60s\"").await;
    let mut upgraded = upgraded(server.addr).await;
    server.begin_shutdown();
    // A negative check: a server that does not wait returns at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !server.task.is_finished(),
        "serve returned while an upgraded connection was open"
    );
    assert_echoes(&mut upgraded).await;
    // Well before shutdown_timeout: it returned because the connection ended.
    server.stop().await;
}

#[tokio::test]
async fn connection_limit_makes_extra_clients_wait() {
    let server = start("max_connections = 1").await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    assert!(first.read(&mut buffer).await.unwrap() > 0);
    assert_a_second_client_waits_for(&server, async { drop(first) }).await;
    server.stop().await;
}

/// Under `max_connections = 1`: fails unless a second client waits, unserved,
/// until `release` ends the connection that holds the place.
async fn assert_a_second_client_waits_for(server: &Running, release: impl Future<Output = ()>) {
    let second = tokio::spawn(fetch(server.addr, "/"));
    // A negative check: a client served wrongly is answered within milliseconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "second client served beyond max_connections"
    );
    release.await;
    let response = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&response), 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = start("").await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { fetch(addr, "/slow/600").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.begin_shutdown();
    let response = in_flight.await.unwrap();
    assert_eq!(status_of(&response), 200, "{response}");
    assert!(response.ends_with("slept 600"));
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn site_stops_being_ready_as_soon_as_shutdown_begins() {
    let mut server = start("").await;
    let addr = server.addr;
    // The handler reports readiness after shutdown has begun; /readyz reads the same flag.
    let in_flight = tokio::spawn(async move { fetch(addr, "/ready-later").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.begin_shutdown();
    let response = in_flight.await.unwrap();
    assert!(response.ends_with("ready=false"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn during_the_drain_readyz_fails_but_new_connections_are_served() {
    let mut server = start("shutdown_drain = \"700ms\"").await;
    let addr = server.addr;
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = fetch(addr, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    let index = fetch(addr, "/").await;
    assert!(
        index.starts_with("HTTP/1.1 200") && index.ends_with("index"),
        "{index}"
    );
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the drain"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    // The default header-read timeout (much longer than the test's wait)
    // would otherwise keep the idle connection, and the shutdown, waiting.
    let mut server = start("").await;
    let mut stream = kept_alive(server.addr).await;
    server.begin_shutdown();
    assert_closed(&mut stream, "idle connection after shutdown began").await;
    server.stop().await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_and_drained() {
    let mut server = start("").await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{}/name/h2", server.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"h2");
    // On shutdown the server sends GOAWAY and closes the idle connection.
    server.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("HTTP/2 connection kept open after shutdown began")
        .unwrap()
        .unwrap();
    server.stop().await;
}
