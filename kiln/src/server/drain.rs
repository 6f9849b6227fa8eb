//! Graceful shutdown of the open connections: when the server stops, each
//! connection finishes the request it is serving and closes; an idle
//! keep-alive connection closes at once.
//!
//! hyper-util's `GracefulShutdown` does the same for its own connection
//! types, but it cannot watch hyper's upgradeable HTTP/1 connection (its
//! trait is sealed), which the server uses directly since it already knows
//! the protocol from the first bytes; and it polls a watch channel, under a
//! lock, every time the connection is polled. Here a connection looks at an
//! atomic flag instead, and is woken once, when the drain begins.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server's side: tells every connection to finish.
#[derive(Debug, Default)]
pub(super) struct Drain {
    started: AtomicBool,
    notify: Arc<Notify>,
}

impl Drain {
    /// Asks every connection, open or opened later, to finish.
    pub(super) fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Serves `connection` to its end; once the drain starts, the
    /// connection is asked to finish its request in flight and close.
    pub(super) async fn serve<C: Drainable>(self: Arc<Self>, connection: C) -> C::Output {
        let mut connection = std::pin::pin!(connection);
        let started = Started {
            notified: Box::pin(Arc::clone(&self.notify).notified_owned()),
            drain: self,
            registered: false,
        };
        tokio::select! {
            biased;
            output = connection.as_mut() => return output,
            () = started => {}
        }
        connection.as_mut().drain();
        connection.await
    }
}

/// Resolves when the drain has started.
struct Started {
    drain: Arc<Drain>,
    /// Created before the flag is first read, so a drain that starts in
    /// between still completes it.
    notified: Pin<Box<OwnedNotified>>,
    /// Whether `notified` holds the task's waker. A connection's task keeps
    /// one waker, so it is registered once and only the flag is read on
    /// later polls.
    registered: bool,
}

impl Future for Started {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.drain.started.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !this.registered {
            this.registered = true;
            return this.notified.as_mut().poll(cx);
        }
        Poll::Pending
    }
}

/// A connection that can be asked to finish and close.
pub(super) trait Drainable: Future {
    /// Finish the request in flight, if any, then close.
    fn drain(self: Pin<&mut Self>);
}

impl<I, S, B> Drainable for http1::UpgradeableConnection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + Send + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> Drainable for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}
