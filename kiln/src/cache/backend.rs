//! The contract every cache backend implements: bytes under full keys
//! (prefix and version already added, already checked), with a time to
//! live. [`Cache`](super::Cache) does the keys, JSON and defaults.
//!
//! Values come back as [`Bytes`]: the in-process backend hands out the
//! stored value itself (a reference count), not a copy of it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use super::CacheError;

/// A boxed future, so that the trait stays object-safe.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CacheError>> + Send + 'a>>;

/// What an increment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// The new value.
    Value(i64),
    /// No value under the key.
    Missing,
    /// A value that is not an integer.
    NotANumber,
}

pub(crate) trait Backend: Send + Sync + 'static {
    /// `memory`, `redis` or `memcached`.
    fn name(&self) -> &'static str;

    /// The backend and its server (password masked), for messages.
    fn describe(&self) -> String;

    /// Answers when the server does.
    fn ping(&self) -> BoxFuture<'_, ()>;

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Bytes>>;

    /// One answer per key, in order, in one round trip.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Bytes>>>;

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()>;

    /// In one round trip.
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> BoxFuture<'_, ()>;

    /// Stores only if absent, atomically; whether it stored.
    fn add<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, bool>;

    /// Whether the key held a value.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool>;

    /// Adds `delta` atomically, keeping the time to live.
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Counted>;

    /// Whether the key held a value.
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool>;

    /// Removes every key that starts with `prefix`.
    fn clear<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, ()>;
}

/// `value` + `delta` when `value` is a JSON integer; the in-process
/// backend's increment.
pub(crate) fn add_to(value: &[u8], delta: i64) -> Option<i64> {
    std::str::from_utf8(value)
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()?
        .checked_add(delta)
}
