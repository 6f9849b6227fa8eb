//! The HTTP server: accepts connections, serves HTTP/1.1 and HTTP/2 through
//! hyper, bounds what a client can hold, and shuts down gracefully.
//!
//! Kiln runs its own accept loop rather than `axum::serve` because it needs
//! a header-read timeout (slowloris protection), a connection limit and a
//! first-byte timeout, none of which `axum::serve` exposes.
//!
//! # Examples
//!
//! ```no_run
//! use kiln::prelude::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let project = Project::new("demo").route("/", "index", get(|| async { "hi" }));
//! let (site, service) = project.build(Settings::from_toml("")?)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! kiln::server::serve(listener, site, service, kiln::server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

mod drain;
mod header_deadline;
#[cfg(feature = "socketio")]
mod read_tap;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, Method, Response, StatusCode};
use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use self::drain::Drain;
use self::header_deadline::{ClockedBody, ClockedIo, HeaderClock};
#[cfg(feature = "socketio")]
pub(crate) use self::read_tap::ReadTap;
use crate::http::SiteService;
use crate::project::Site;

/// Serves `service` (from [`Project::build`](crate::Project::build)) on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish, closes realtime connections
/// (WebSockets with 1001), waits for every connection, upgraded ones
/// included, to end (up to `shutdown_timeout`) and returns.
///
/// # Errors
///
/// Only when the listener's address cannot be read; accept errors are logged
/// and retried, since they concern one client (or a momentary lack of file descriptors).
pub async fn serve(
    listener: TcpListener,
    site: Site,
    service: SiteService,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let settings = site.settings();
    let header_timeout = settings.header_read_timeout.0;
    // hyper's HTTP/1 and HTTP/2 servers are used directly rather than
    // hyper-util's auto builder: the first bytes, read below for the
    // first-byte timeout, already tell the protocol, and the auto builder's
    // detection wraps every read of the connection.
    let mut http1 = http1::Builder::new();
    // The header-read timeout is Kiln's own (`header_deadline`): hyper's
    // allocates and registers a timer for every request. Without a timer,
    // hyper sets none of its own.
    http1.header_read_timeout(None).keep_alive(true);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    let builders = Arc::new((http1, http2));
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let drain = Arc::new(Drain::default());
    // Every connection task holds a sender; the receiver sees the channel
    // close once the last one has ended.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    // Stop accepting once the signal came and the drain period is over. The
    // site reports not ready from the signal on, so that load balancers that
    // poll /readyz move traffic away while connections are still accepted.
    let drain_period = settings.shutdown_drain.0;
    let drain_site = site.clone();
    let shutdown = async move {
        shutdown.await;
        drain_site.set_ready(false);
        if !drain_period.is_zero() {
            tracing::info!(
                target: "kiln::server",
                "shutdown signal: /readyz answers 503; still accepting for {}",
                crate::settings::Seconds(drain_period)
            );
            tokio::time::sleep(drain_period).await;
        }
    };
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE or a client that reset before accept: wait a
                    // little so a descriptor shortage does not spin the loop.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let builders = Arc::clone(&builders);
        let drain = Arc::clone(&drain);
        // Socket.IO's WebSocket transport is read by socketioxide, so its
        // rate limit watches the connection's bytes (see read_tap).
        #[cfg(feature = "socketio")]
        let tap = ReadTap::default();
        let slot = ConnectionSlot {
            _permit: permit,
            _open: open_tx.clone(),
            #[cfg(feature = "socketio")]
            tap: tap.clone(),
        };
        tokio::spawn(async move {
            // A client that connects and sends nothing is dropped here,
            // before hyper (which needs bytes to tell the protocol) is involved.
            let Some(protocol) = first_bytes_within(&stream, header_timeout).await else {
                return;
            };
            let clock = HeaderClock::new(header_timeout, protocol == Protocol::Http1);
            let io = TokioIo::new(ClockedIo::new(stream, slot, Arc::clone(&clock)));
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                clock.request_started();
                // hyper hands the connection over after a 101 answer, or a
                // 2xx to CONNECT; it then carries no more requests.
                let connect = request.method() == Method::CONNECT;
                let mut request = request.map(Body::new);
                let extensions = request.extensions_mut();
                *extensions = presized_extensions(std::mem::take(extensions));
                extensions.insert(ConnectInfo(peer));
                // Only a WebSocket handshake (an `Upgrade`, or HTTP/2's
                // CONNECT) can use the tap: other requests are spared an extension.
                #[cfg(feature = "socketio")]
                if connect || request.headers().contains_key(axum::http::header::UPGRADE) {
                    request.extensions_mut().insert(tap.clone());
                }
                with_clock(service.serve(request), Arc::clone(&clock), connect)
            });
            let (http1, http2) = &*builders;
            let served = match protocol {
                Protocol::Http1 => {
                    drain
                        .serve(http1.serve_connection(io, service).with_upgrades())
                        .await
                }
                Protocol::Http2 => drain.serve(http2.serve_connection(io, service)).await,
            };
            if let Err(error) = served {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }

    drop(listener);
    site.set_ready(false);
    let timeout = site.settings().shutdown_timeout.0;
    tracing::info!(
        target: "kiln::server",
        "shutting down: no new connections; waiting up to {}s for open connections (WebSockets included)",
        timeout.as_secs()
    );
    drain.start();
    // Upgraded connections are no longer hyper's to drain: the realtime
    // ones are told to go away, then waited for like the rest.
    site.close_realtime();
    drop(open_tx);
    tokio::select! {
        _ = open_rx.recv() => tracing::info!(target: "kiln::server", "all connections closed"),
        () = tokio::time::sleep(timeout) => tracing::warn!(target: "kiln::server", "shutdown timeout reached; closing remaining connections"),
    }
    Ok(())
}

/// The response future hyper holds for a request: `response`, then the
/// header clock stopped for a connection that leaves HTTP (a 101 answer, or
/// a 2xx to CONNECT) and the body clocked.
///
/// `map` rather than an `async` block: a block keeps the future it captured
/// and the one it awaits in separate places, which doubled what hyper moves
/// into its slot on every request (2,416 bytes around a 1,200-byte future
/// in a release build, measured with `size_of_val`).
fn with_clock(
    response: impl Future<Output = Response<Body>> + Send,
    clock: Arc<HeaderClock>,
    connect: bool,
) -> impl Future<Output = Result<Response<ClockedBody>, Infallible>> + Send {
    response.map(move |response| {
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS || (connect && status.is_success()) {
            clock.stop();
        }
        Ok(response.map(|body| ClockedBody::new(body, clock)))
    })
}

/// A request's extensions with room for the four every routed request
/// gets (`ConnectInfo`, Kiln's request context, axum's `MatchedPath` and
/// path parameters), holding `given` (what hyper put there: an upgrade
/// handle, HTTP/2's protocol).
///
/// The extensions' table is allocated for three entries on the first
/// insert and grows (a second allocation and a rehash) on the fourth. A
/// clone of an empty table keeps the original's size, so every request
/// starts from a clone of one that once held four entries: hashbrown's
/// `reserve_rehash` (about 310 instructions a request) became the clone
/// (about 120; callgrind, benchmarks/README.md "Fourth pass").
fn presized_extensions(given: Extensions) -> Extensions {
    static EMPTY: LazyLock<Extensions> = LazyLock::new(|| {
        let mut extensions = Extensions::new();
        extensions.insert(0u8);
        extensions.insert(0u16);
        extensions.insert(0u32);
        extensions.insert(0u64);
        extensions.clear();
        extensions
    });
    let mut extensions = EMPTY.clone();
    extensions.extend(given);
    extensions
}

/// What a connection holds for as long as its socket is open: a place
/// under `max_connections`, and a sender of the channel graceful shutdown
/// waits on.
///
/// The slot lives in the socket's IO rather than in the connection's task:
/// after a 101 answer (a WebSocket) or a CONNECT, hyper's connection future
/// ends and hands the IO to whoever took the upgrade, so a slot held by the
/// task would be released while the upgraded connection still runs. In the
/// IO it is dropped with the socket, whoever owns it by then, and it costs
/// nothing per request. (A guard in every request's extensions, for the
/// upgrade code to take, was rejected: it boxes a value per request and
/// covers only the upgrade paths that know to take it.)
#[derive(Debug)]
struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    _open: mpsc::Sender<()>,
    #[cfg(feature = "socketio")]
    tap: ReadTap,
}

impl header_deadline::ReadWatch for ConnectionSlot {
    #[cfg(feature = "socketio")]
    fn watch(&mut self, read: &[u8]) -> std::io::Result<()> {
        self.tap.watch(read)
    }
}

/// The protocol a connection's first bytes announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Waits until the client has sent enough to tell HTTP/1 from HTTP/2, within
/// `limit`; `None` when it did not, or closed the connection.
///
/// hyper needs these bytes to choose the protocol, so a client that connects
/// and sends nothing (or a partial HTTP/2 preface) would otherwise hold the
/// connection forever. `peek` leaves the bytes for hyper.
async fn first_bytes_within(stream: &TcpStream, limit: std::time::Duration) -> Option<Protocol> {
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buffer = [0u8; H2_PREFACE.len()];
        loop {
            match stream.peek(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) if n == buffer.len() => {
                    return Some(if buffer == H2_PREFACE {
                        Protocol::Http2
                    } else {
                        Protocol::Http1
                    });
                }
                Ok(n) if !H2_PREFACE.starts_with(&buffer[..n]) => return Some(Protocol::Http1),
                // A partial preface: wait for the rest (rare; only HTTP/2 clients send it).
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.ok().flatten()
}

/// Binds `addr`, with a message that says what to do when it fails.
///
/// # Errors
///
/// [`BootError::Bind`](crate::project::BootError::Bind) when the port is taken,
/// the address is not local, or binding is not allowed.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::project::BootError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let fix = match source.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "another process is using port {}; stop it, or run on another port: runserver --addr {}:{}",
                addr.port(),
                addr.ip(),
                addr.port().wrapping_add(1).max(1024)
            ),
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges; use a port such as 8000".to_owned()
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "that address is not on this machine; use 127.0.0.1 or 0.0.0.0".to_owned()
            }
            _ => "check the `host` and `port` settings".to_owned(),
        };
        crate::project::BootError::Bind { addr, source, fix }
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presized_extensions_keep_what_hyper_put_there() {
        assert!(presized_extensions(Extensions::new()).is_empty());
        let mut given = Extensions::new();
        given.insert(7u8);
        let mut extensions = presized_extensions(given);
        assert_eq!(extensions.get::<u8>(), Some(&7));
        extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 80))));
        assert_eq!(extensions.len(), 2);
    }

    /// hyper moves each request's future into its connection's slot, so its
    /// size is copied on every request: wrapping the site's future must not
    /// hold it twice, as an `async` block that awaits a captured future does.
    #[test]
    fn the_clocked_response_future_holds_the_sites_future_once() {
        let site_future = async {
            let padding = [0u8; 1024];
            tokio::task::yield_now().await;
            std::hint::black_box(padding);
            Response::new(Body::empty())
        };
        let site_size = std::mem::size_of_val(&site_future);
        let clock = HeaderClock::new(std::time::Duration::from_secs(1), true);
        let clocked = with_clock(site_future, clock, false);
        let clocked_size = std::mem::size_of_val(&clocked);
        assert!(
            clocked_size < site_size + 64,
            "{clocked_size} bytes around a {site_size}-byte future"
        );
    }

    #[tokio::test]
    async fn the_clocked_response_stops_the_clock_only_for_a_connection_that_leaves_http() {
        for (status, connect, stops) in [
            (StatusCode::OK, false, false),
            (StatusCode::SWITCHING_PROTOCOLS, false, true),
            (StatusCode::OK, true, true),
            (StatusCode::BAD_GATEWAY, true, false),
        ] {
            let clock = HeaderClock::new(std::time::Duration::from_secs(1), true);
            let response = async move {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = status;
                response
            };
            let Ok(clocked) = with_clock(response, Arc::clone(&clock), connect).await;
            assert_eq!(clocked.status(), status);
            assert_eq!(clock.is_stopped(), stops, "{status}, CONNECT: {connect}");
        }
    }
}
