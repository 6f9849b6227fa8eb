//! Rate limiting: a [`Throttle`] that counts events per key in a sliding
//! window, and a [`RateLimit`] tower layer built on it for any app or
//! route, answering `429 Too Many Requests` with `Retry-After`.
//!
//! Counts live in the process: each server process limits on its own,
//! which is what a login throttle or a per-client cap on one machine needs.
//! Memory is bounded: a key holds at most `limit` timestamps, and at most
//! `max_keys` keys are kept; when that many are tracked, expired keys are
//! dropped, then the key idle the longest.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use kiln::prelude::*;
//! use kiln::security::{RateLimit, Throttle};
//!
//! async fn search() -> &'static str { "results" }
//!
//! // 100 requests a minute per client IP for the whole app.
//! let api = App::new("api")
//!     .route("/search", "search", get(search))
//!     .layer(RateLimit::per_ip(100, Duration::from_secs(60)));
//! # let _ = api;
//!
//! // Five failed logins per account in 15 minutes.
//! let logins = Throttle::new(5, Duration::from_secs(15 * 60));
//! for _ in 0..5 {
//!     assert!(logins.check("alice").is_ok());
//!     logins.record_failure("alice");
//! }
//! assert!(logins.check("alice").is_err());
//! assert!(logins.check("bob").is_ok());
//! logins.reset("alice");
//! assert!(logins.check("alice").is_ok());
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The most keys a [`Throttle`] tracks unless told otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// How long to wait before the next attempt is allowed. As a response it is
/// a 429 with a `Retry-After` header in whole seconds (rounded up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// The wait in whole seconds, rounded up, at least 1: what `Retry-After` says.
    #[must_use]
    pub fn seconds(&self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl IntoResponse for RetryAfter {
    fn into_response(self) -> Response {
        let mut response = crate::Error::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many requests; try again in {} seconds.",
                self.seconds()
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.seconds()));
        response
    }
}

/// Counts events per key in a sliding window; see the [module docs](self).
/// Cheap to clone: clones share the counts.
#[derive(Clone, Debug)]
pub struct Throttle {
    limit: usize,
    window: Duration,
    max_keys: usize,
    /// A std Mutex, not a Tokio one: nothing awaits while it is held, and
    /// each operation is a few map operations.
    keys: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl Throttle {
    /// At most `limit` events per key within any `window`.
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit as usize,
            window,
            max_keys: DEFAULT_MAX_KEYS,
            keys: Arc::default(),
        }
    }

    /// Tracks at most `max_keys` keys (default [`DEFAULT_MAX_KEYS`]).
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Ok` when `key` may act now (fewer than `limit` events in the
    /// window), else how long until it may. Records nothing.
    ///
    /// # Errors
    ///
    /// [`RetryAfter`] when the key is over its limit.
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let mut keys = self.lock();
        match keys.get_mut(key) {
            Some(events) => self.verdict(events, now),
            None => Ok(()),
        }
    }

    /// Records an event (a failed login) for `key`.
    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.lock();
        self.record(&mut keys, key, now);
    }

    /// Checks and, when allowed, records an event in one step: what the
    /// [`RateLimit`] layer does for each request.
    ///
    /// # Errors
    ///
    /// [`RetryAfter`] when the key is over its limit (nothing is recorded).
    pub fn hit(&self, key: &str) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let mut keys = self.lock();
        if let Some(events) = keys.get_mut(key) {
            self.verdict(events, now)?;
        }
        self.record(&mut keys, key, now);
        Ok(())
    }

    /// Forgets `key`'s events (after a successful login).
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many keys are tracked now.
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.lock().len()
    }

    /// Drops events older than the window and judges what is left.
    fn verdict(&self, events: &mut VecDeque<Instant>, now: Instant) -> Result<(), RetryAfter> {
        while events
            .front()
            .is_some_and(|oldest| now.duration_since(*oldest) >= self.window)
        {
            events.pop_front();
        }
        if events.len() < self.limit {
            return Ok(());
        }
        // The oldest event that still counts leaves the window first.
        let oldest = events.front().copied().unwrap_or(now);
        Err(RetryAfter(
            self.window.saturating_sub(now.duration_since(oldest)),
        ))
    }

    fn record(&self, keys: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) {
        if !keys.contains_key(key) && keys.len() >= self.max_keys {
            let window = self.window;
            keys.retain(|_, events| {
                events
                    .back()
                    .is_some_and(|newest| now.duration_since(*newest) < window)
            });
            if keys.len() >= self.max_keys {
                let idle = keys
                    .iter()
                    .min_by_key(|(_, events)| events.back().copied())
                    .map(|(key, _)| key.clone());
                if let Some(idle) = idle {
                    keys.remove(&idle);
                }
            }
        }
        let events = keys.entry(key.to_owned()).or_default();
        events.push_back(now);
        // Only the newest `limit` events can matter.
        while events.len() > self.limit.max(1) {
            events.pop_front();
        }
    }
}

/// How the [`RateLimit`] layer names the client of a request.
type KeyFn = Arc<dyn Fn(&Request) -> Option<String> + Send + Sync>;

/// A tower layer that allows each client `limit` requests per `window`
/// and answers the rest with 429 and `Retry-After`. Use it with
/// [`App::layer`](crate::App::layer), [`Project::layer`](crate::Project::layer)
/// or [`Endpoint::layer`](crate::urls::Endpoint::layer).
#[derive(Clone)]
pub struct RateLimit {
    throttle: Throttle,
    key: KeyFn,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// Keyed by the client's IP address (the connection's peer). Behind a
    /// reverse proxy every request comes from the proxy: key by the
    /// header the proxy sets with [`RateLimit::keyed`] instead.
    #[must_use]
    pub fn per_ip(limit: u32, window: Duration) -> Self {
        Self::keyed(limit, window, |request: &Request| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string())
        })
    }

    /// Keyed by `key` (a header, the user, the route...); a request for
    /// which it returns `None` is not limited.
    #[must_use]
    pub fn keyed<F>(limit: u32, window: Duration, key: F) -> Self
    where
        F: Fn(&Request) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            throttle: Throttle::new(limit, window),
            key: Arc::new(key),
        }
    }

    /// The throttle behind the layer (to bound its keys, or to reset a client).
    #[must_use]
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Uses `throttle` (sharing its counts, or with other bounds).
    #[must_use]
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }
}

impl<S> tower::Layer<S> for RateLimit {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limit: self.clone(),
        }
    }
}

/// The service [`RateLimit`] wraps around a route.
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limit: RateLimit,
}

impl<S> tower::Service<Request> for RateLimitService<S>
where
    S: tower::Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let verdict = match (self.limit.key)(&request) {
            Some(key) => self.limit.throttle.hit(&key),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(retry) => Box::pin(async move { Ok(retry.into_response()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1500)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }
}
