//! The in-process backend (`cache = "memory"`): a moka cache bounded by
//! `cache_max_entries`, each entry with its own time to live.
//!
//! moka evicts the least useful entries when full (TinyLFU) and drops
//! expired ones by itself; a read never returns an expired entry.
//!
//! moka's blocking cache, not its async one: nothing here waits for I/O,
//! and the async cache's futures and locks cost about 10 % more
//! instructions on a `get_many` of 100 cached rows (callgrind,
//! benchmarks/README.md "Fifth look").

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;

use super::backend::{Backend, BoxFuture, Counted, add_to};

#[derive(Clone)]
struct Stored {
    /// Shared: a read hands out a reference count, not a copy.
    bytes: Bytes,
    expires_at: Instant,
}

impl Stored {
    fn new(mut bytes: Vec<u8>, ttl: Duration) -> Self {
        // serde_json writes into a 128-byte buffer at least, and `Bytes`
        // keeps the whole allocation: a small value (a row of a few dozen
        // bytes) would hold four times its size for as long as it is cached.
        bytes.shrink_to_fit();
        Self {
            bytes: Bytes::from(bytes),
            expires_at: Instant::now() + ttl,
        }
    }
}

/// Each entry lives until its own `expires_at`, so that an update that
/// keeps it (an increment) keeps its expiry too, and a touch moves it.
struct UntilExpiry;

impl moka::Expiry<String, Stored> for UntilExpiry {
    fn expire_after_create(&self, _: &String, value: &Stored, now: Instant) -> Option<Duration> {
        Some(value.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Stored,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.expires_at.saturating_duration_since(now))
    }
}

pub(crate) struct MemoryBackend {
    entries: Cache<String, Stored>,
}

impl MemoryBackend {
    pub(crate) fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

/// The answer of a backend that never waits: every call below does its
/// work before returning, and the future only hands the result over.
fn answered<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn ping(&self) -> BoxFuture<'_, ()> {
        answered(())
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Bytes>> {
        answered(self.entries.get(key).map(|s| s.bytes))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Bytes>>> {
        answered(
            keys.iter()
                .map(|key| self.entries.get(key).map(|s| s.bytes))
                .collect(),
        )
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        self.entries.insert(key.to_owned(), Stored::new(value, ttl));
        answered(())
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> BoxFuture<'_, ()> {
        for (key, value) in entries {
            self.entries.insert(key, Stored::new(value, ttl));
        }
        answered(())
    }

    fn add<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, bool> {
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_insert(Stored::new(value, ttl));
        answered(entry.is_fresh())
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        answered(self.entries.remove(key).is_some())
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Counted> {
        let mut counted = Counted::Missing;
        // Atomic: moka runs one computation per key at a time.
        let _: CompResult<String, Stored> =
            self.entries
                .entry_by_ref(key)
                .and_compute_with(|current| match current {
                    None => Op::Nop,
                    Some(entry) => match add_to(&entry.value().bytes, delta) {
                        None => {
                            counted = Counted::NotANumber;
                            Op::Nop
                        }
                        Some(sum) => {
                            counted = Counted::Value(sum);
                            Op::Put(Stored {
                                bytes: Bytes::from(sum.to_string()),
                                expires_at: entry.value().expires_at,
                            })
                        }
                    },
                });
        answered(counted)
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        let result = self
            .entries
            .entry_by_ref(key)
            .and_compute_with(|current| match current {
                None => Op::Nop,
                Some(entry) => Op::Put(Stored {
                    bytes: entry.value().bytes.clone(),
                    expires_at: Instant::now() + ttl,
                }),
            });
        answered(matches!(result, CompResult::ReplacedWith(_)))
    }

    fn clear<'a>(&'a self, _prefix: &'a str) -> BoxFuture<'a, ()> {
        // This process's cache holds this site's keys only.
        self.entries.invalidate_all();
        answered(())
    }
}
