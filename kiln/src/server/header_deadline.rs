//! The header-read deadline of an HTTP/1 connection (slowloris defence),
//! with one timer per connection instead of one per request.
//!
//! The rule is hyper's `header_read_timeout`: from the moment a connection
//! waits for a request (its first bytes have arrived, or the previous
//! response has been written), the client has `header_read_timeout` to send
//! the complete request head; otherwise the connection is closed without a
//! response. An idle keep-alive connection is closed the same way.
//!
//! hyper enforces it by allocating, registering and dropping a timer for
//! every request, about 1,400 instructions per request (see
//! `benchmarks/README.md`). Here the connection keeps a single Tokio `Sleep`
//! and moves it lazily: the request path only records *when* the connection
//! started waiting (one clock read and an atomic store); the sleep is reset
//! only when it fires, which happens at most once per `header_read_timeout`
//! on a busy connection. When it fires, the real deadline is checked and
//! the sleep is moved to it if it is later.
//!
//! Three pieces share one [`HeaderClock`]: the server's service marks the
//! connection busy when hyper hands it a request (the head is complete),
//! the response body ([`ClockedBody`]) marks it waiting again when hyper drops
//! it (the response is written), and the connection's IO ([`ClockedIo`])
//! fails a read with `TimedOut` when the client is late while hyper waits for
//! a head. hyper then closes the connection, as it does on its own timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use hyper::body::{Bytes, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `waiting_since` while a request is being served: no deadline.
const BUSY: u64 = u64::MAX;
/// `waiting_since` once the deadline no longer applies (HTTP/2, or an
/// upgraded connection, which hyper no longer reads requests from).
const OFF: u64 = u64::MAX - 1;

/// The state a connection's IO, service and response bodies share.
#[derive(Debug)]
pub(super) struct HeaderClock {
    origin: Instant,
    limit: Duration,
    /// Nanoseconds from `origin` to the moment the connection began waiting
    /// for a request head, or [`BUSY`] or [`OFF`]. An atomic only because the
    /// service and the body must be `Send`; all three live in one task, so
    /// relaxed ordering suffices.
    waiting_since: AtomicU64,
}

impl HeaderClock {
    /// A clock for a connection that waits for its first request from now,
    /// or, when `enforced` is false (HTTP/2), never times out.
    pub(super) fn new(limit: Duration, enforced: bool) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            limit,
            waiting_since: AtomicU64::new(if enforced { 0 } else { OFF }),
        })
    }

    /// hyper has read a complete request head.
    pub(super) fn request_started(&self) {
        self.set(BUSY);
    }

    /// The response has been written: the next head is due within the limit.
    fn response_finished(&self) {
        let since = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(OFF - 1);
        self.set(since.min(OFF - 1));
    }

    /// The connection was upgraded (a WebSocket, say): it carries no more
    /// HTTP/1 requests, so there is no head to wait for.
    pub(super) fn stop(&self) {
        self.waiting_since.store(OFF, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(super) fn is_stopped(&self) -> bool {
        matches!(self.phase(), Phase::Off)
    }

    fn set(&self, value: u64) {
        // `OFF` is final; a plain load and store are enough, since only the
        // connection's own task writes.
        if self.waiting_since.load(Ordering::Relaxed) != OFF {
            self.waiting_since.store(value, Ordering::Relaxed);
        }
    }

    fn phase(&self) -> Phase {
        match self.waiting_since.load(Ordering::Relaxed) {
            BUSY => Phase::Busy,
            OFF => Phase::Off,
            since => Phase::Waiting {
                deadline: self.origin + Duration::from_nanos(since) + self.limit,
            },
        }
    }
}

/// What a connection's reads are subject to.
enum Phase {
    /// A request head is due by `deadline`.
    Waiting { deadline: Instant },
    /// A request is being served.
    Busy,
    /// No deadline any more.
    Off,
}

/// What sees the bytes a connection reads: the server's connection slot,
/// which carries the Socket.IO rate limit's tap; `()` sees nothing.
pub(super) trait ReadWatch {
    /// Sees `read`, the bytes just read; `Err` fails the read, which cuts
    /// the connection.
    fn watch(&mut self, read: &[u8]) -> io::Result<()> {
        let _ = read;
        Ok(())
    }
}

impl ReadWatch for () {}

/// A connection's socket, failing reads that wait for a request head past
/// the deadline.
#[derive(Debug)]
pub(super) struct ClockedIo<S, K = ()> {
    io: S,
    /// Whatever must live exactly as long as the socket (the server's
    /// connection slot): this IO is what hyper hands over on an upgrade.
    /// It also watches what is read ([`ReadWatch`]).
    keep: K,
    clock: Arc<HeaderClock>,
    /// Set once per connection; it may lag behind the deadline (see the module
    /// docs). Dropped once the clock is off for good (see `check_deadline`).
    sleep: Option<Pin<Box<Sleep>>>,
    /// The waker the sleep holds since it was last polled, if it has not
    /// been reset since.
    armed: Option<Waker>,
}

impl<S, K> ClockedIo<S, K> {
    /// `keep` is dropped with the socket.
    pub(super) fn new(io: S, keep: K, clock: Arc<HeaderClock>) -> Self {
        let sleep = Box::pin(tokio::time::sleep_until(clock.origin + clock.limit));
        Self {
            io,
            keep,
            clock,
            sleep: Some(sleep),
            armed: None,
        }
    }

    /// Called when a read would block: `Ready(Err)` when the client is late
    /// with a request head, else `Pending`.
    ///
    /// The sleep is kept registered whenever the task waits on a read, also
    /// while a request is served: hyper may have started that read (to
    /// notice a client that hangs up) before the response was written, and
    /// not read again until woken, so the sleep is what wakes the task if
    /// the next head is late. Its deadline is never later than the real one:
    /// it is always some moment at which the connection waited, or was
    /// served, plus the limit, and deadlines only move forward.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let phase = self.clock.phase();
            let (Some(sleep), false) = (self.sleep.as_mut(), matches!(phase, Phase::Off)) else {
                // Off is final (an upgraded connection, or HTTP/2). The sleep
                // and `armed` hold a waker of the HTTP connection's task,
                // which has ended once hyper handed the socket over: they
                // would keep its memory (about 3.5 KiB) for as long as a
                // WebSocket lives on the socket.
                self.sleep = None;
                self.armed = None;
                return Poll::Pending;
            };
            // A registered sleep keeps its waker and wakes the task when it
            // fires, so it is polled again only for another waker (the
            // connection's task keeps one) or once it has fired: most reads
            // that would block cost a comparison instead of a timer poll.
            let armed = self
                .armed
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            if armed && !sleep.is_elapsed() {
                return Poll::Pending;
            }
            if sleep.as_mut().poll(cx).is_pending() {
                self.armed = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // The sleep fired: reset it to the real deadline, or time out.
            let next = match phase {
                Phase::Waiting { deadline } if sleep.deadline() >= deadline => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not send a request head within header_read_timeout",
                    )));
                }
                Phase::Waiting { deadline } => deadline,
                // No head is due before the request ends, which is later than now.
                Phase::Busy | Phase::Off => Instant::now() + self.clock.limit,
            };
            sleep.as_mut().reset(next);
            self.armed = None;
        }
    }
}

impl<S: AsyncRead + Unpin, K: ReadWatch + Unpin> AsyncRead for ClockedIo<S, K> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => this.check_deadline(cx),
            Poll::Ready(Ok(())) => Poll::Ready(this.keep.watch(&buf.filled()[before..])),
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin, K: Unpin> AsyncWrite for ClockedIo<S, K> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A response body that restarts the header deadline when hyper drops it,
/// which it does once the body is written (or the connection is gone).
#[derive(Debug)]
pub(super) struct ClockedBody {
    body: Body,
    clock: Arc<HeaderClock>,
}

impl ClockedBody {
    pub(super) fn new(body: Body, clock: Arc<HeaderClock>) -> Self {
        Self { body, clock }
    }
}

impl Drop for ClockedBody {
    fn drop(&mut self) {
        self.clock.response_finished();
    }
}

impl HttpBody for ClockedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reads_fail_only_while_a_head_is_late() {
        let clock = HeaderClock::new(Duration::from_secs(10), true);
        let (client, server) = tokio::io::duplex(64);
        let mut io = ClockedIo::new(server, (), Arc::clone(&clock));
        let mut buffer = [0u8; 8];
        let read = |io: &mut ClockedIo<_>, buffer: &mut [u8]| {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let mut buf = ReadBuf::new(buffer);
            Pin::new(io).poll_read(&mut cx, &mut buf).map_ok(|()| ())
        };
        assert!(read(&mut io, &mut buffer).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        // A request arrived and was served for 6 s: no deadline meanwhile.
        clock.request_started();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(read(&mut io, &mut buffer).is_pending());
        // The response is written: the next head is due 10 s from now, not
        // from when the sleep was first set.
        drop(ClockedBody::new(Body::empty(), Arc::clone(&clock)));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(read(&mut io, &mut buffer).is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        match read(&mut io, &mut buffer) {
            Poll::Ready(Err(error)) => assert_eq!(error.kind(), io::ErrorKind::TimedOut),
            other => panic!("late head not refused: {other:?}"),
        }
        // An upgraded connection has no deadline.
        clock.stop();
        clock.request_started();
        drop(ClockedBody::new(Body::empty(), Arc::clone(&clock)));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(read(&mut io, &mut buffer).is_pending());
        drop(client);
    }
}
