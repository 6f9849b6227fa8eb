//! The contract every cache backend implements: bytes under full keys
//! (prefix and version already added, already checked), with a time to
//! live. [`Cache`](super::Cache) does the keys, JSON and defaults.
//!
//! Values come back as a [`Value`]: the in-process backend copies a short
//! stored value out whole and hands out a longer one as the stored
//! [`Bytes`] itself (a reference count); the servers' backends hand over
//! what they read, uncopied.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use smallvec::SmallVec;

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

/// The longest value held inline: a model's row of a few fields as JSON
/// (TechEmpower's `world` row is 33 bytes) fits.
const INLINE_VALUE: usize = 48;

/// A cached value as a backend hands it over.
///
/// A short value is held inline and copied out whole: reading it touches
/// no reference count that the other worker threads write too, and no
/// second allocation (benchmarks/README.md, "Eighth look"). A longer one is
/// shared, so that a cached page is not copied per read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Inline(SmallVec<[u8; INLINE_VALUE]>),
    Shared(Bytes),
}

/// By hand: `SmallVec`'s own `clone` copies byte by byte (about 300
/// instructions for a 33-byte row, callgrind), `from_slice` in one copy.
impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Self::Inline(bytes) => Self::Inline(SmallVec::from_slice(bytes)),
            Self::Shared(bytes) => Self::Shared(bytes.clone()),
        }
    }
}

impl Value {
    /// A value as the in-process backend keeps it: inline when short,
    /// shared at its length otherwise (serde_json writes into a 128-byte
    /// buffer at least, and `Bytes` keeps the whole allocation for as long
    /// as the value is cached).
    pub(crate) fn kept(mut bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_VALUE {
            Self::Inline(SmallVec::from_slice(&bytes))
        } else {
            bytes.shrink_to_fit();
            Self::Shared(Bytes::from(bytes))
        }
    }
}

/// A value read from a server, decoded once and dropped: taken as it came,
/// without a copy.
impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Shared(Bytes::from(bytes))
    }
}

impl Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline(bytes) => bytes,
            Self::Shared(bytes) => bytes,
        }
    }
}

pub(crate) trait Backend: Send + Sync + 'static {
    /// `memory`, `redis` or `memcached`.
    fn name(&self) -> &'static str;

    /// The backend and its server (password masked), for messages.
    fn describe(&self) -> String;

    /// Answers when the server does.
    fn ping(&self) -> BoxFuture<'_, ()>;

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Value>>;

    /// One answer per key, in order, in one round trip.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Value>>>;

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
