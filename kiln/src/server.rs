//! The HTTP server: accepts connections, serves HTTP/1.1 and HTTP/2 through
//! hyper, bounds what a client can hold, and shuts down gracefully.
//!
//! Kiln runs its own accept loop rather than `axum::serve` because it needs
//! hyper's header-read timeout (slowloris protection), a connection limit and
//! a first-byte timeout, none of which `axum::serve` exposes.
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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::SiteService;
use crate::project::Site;

/// Serves `service` (from [`Project::build`](crate::Project::build)) on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish (up to `shutdown_timeout`) and returns.
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    // Stop accepting once the signal came and the drain period is over. The
    // site reports not ready from the signal on, so that load balancers that
    // poll /readyz move traffic away while connections are still accepted.
    let drain = settings.shutdown_drain.0;
    let drain_site = site.clone();
    let shutdown = async move {
        shutdown.await;
        drain_site.set_ready(false);
        if !drain.is_zero() {
            tracing::info!(
                target: "kiln::server",
                "shutdown signal: /readyz answers 503; still accepting for {}",
                crate::settings::Seconds(drain)
            );
            tokio::time::sleep(drain).await;
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
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header-read timer starts only once the protocol is known;
            // a client that connects and sends nothing is dropped here instead.
            if !first_bytes_within(&stream, header_timeout).await {
                return;
            }
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                // Not boxed: hyper keeps the request's future in place.
                let response = service.serve(request);
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    site.set_ready(false);
    let timeout = site.settings().shutdown_timeout.0;
    tracing::info!(
        target: "kiln::server",
        "shutting down: no new connections; waiting up to {}s for in-flight requests",
        timeout.as_secs()
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(target: "kiln::server", "all connections closed"),
        () = tokio::time::sleep(timeout) => tracing::warn!(target: "kiln::server", "shutdown timeout reached; closing remaining connections"),
    }
    Ok(())
}

/// Waits until the client has sent enough to tell HTTP/1 from HTTP/2, within `limit`.
///
/// hyper's header-read timer only starts once the protocol is known, so a
/// client that connects and sends nothing (or a partial HTTP/2 preface) would
/// otherwise hold the connection forever. `peek` leaves the bytes for hyper.
async fn first_bytes_within(stream: &TcpStream, limit: std::time::Duration) -> bool {
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buffer = [0u8; H2_PREFACE.len()];
        loop {
            match stream.peek(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n == buffer.len() || !H2_PREFACE.starts_with(&buffer[..n]) => return true,
                // A partial preface: wait for the rest (rare; only HTTP/2 clients send it).
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
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
