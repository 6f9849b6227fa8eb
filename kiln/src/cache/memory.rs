//! The in-process backend (`cache = "memory"`): a quick_cache cache bounded
//! by `cache_max_entries`, each entry with its own time to live.
//!
//! When full, quick_cache evicts with S3-FIFO: an entry read again since it
//! came in is kept over one that was not. Expiry is checked on read, as
//! Django's local-memory cache does it: an expired entry is never returned,
//! and it is dropped when it is next looked up or evicted, so the count of
//! entries stays within `cache_max_entries` either way.
//!
//! quick_cache rather than moka (decisions.md, section 12): an entry takes
//! about 96 bytes of the cache's own tables (its key's and value's headers
//! included) besides its key's and value's bytes, where moka's per-entry
//! timers, deques and frequency sketch took about 300 more, and a read is
//! one read lock and a hash lookup, where moka's bookkeeping was half of
//! `/cached-queries`' CPU (benchmarks/README.md, "Sixth look").

use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, DefaultLifecycle, EntryAction, EntryResult};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};
use smallvec::SmallVec;

use super::backend::{Backend, BoxFuture, Counted, Value, add_to};

/// A full key's bytes, inline up to this length (the prefix and version
/// included: `:1:world:1234` is 13): the lookup's comparison then reads the
/// entry itself, not another allocation as a `String`'s bytes would be.
/// Looked up by `&[u8]`, which hashes the same.
type Key = SmallVec<[u8; 32]>;

/// The key stored for `key`.
fn owned(key: &str) -> Key {
    Key::from_slice(key.as_bytes())
}

#[derive(Clone)]
struct Stored {
    /// A short value inline, a longer one shared: a read copies the first
    /// and hands out a reference count of the second.
    value: Value,
    expires_at: Instant,
}

/// When a value stored now for `ttl` expires.
fn deadline(ttl: Duration) -> Instant {
    Instant::now() + ttl
}

impl Stored {
    fn new(bytes: Vec<u8>, expires_at: Instant) -> Self {
        Self {
            value: Value::kept(bytes),
            expires_at,
        }
    }

    /// Whether the value has expired at `now`. Each call below reads the
    /// clock once, however many values it looks at (a `get_many` of 100
    /// keys used to read it 100 times).
    fn expired(&self, now: Instant) -> bool {
        self.expires_at <= now
    }
}

/// One shard: quick_cache splits the capacity evenly between its shards,
/// and the keys do not split evenly, so with several shards a cache could
/// not hold `cache_max_entries` values (9,872 of 10,000 with eight).
const SHARDS: usize = 1;

pub(crate) struct MemoryBackend {
    entries: Cache<Key, Stored>,
}

impl MemoryBackend {
    pub(crate) fn new(max_entries: u64) -> Self {
        let options = OptionsBuilder::new()
            .estimated_items_capacity(usize::try_from(max_entries).unwrap_or(usize::MAX))
            .weight_capacity(max_entries)
            .shards(SHARDS)
            .build()
            .expect("both capacities are set");
        Self {
            entries: Cache::with_options(
                options,
                UnitWeighter,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
        }
    }

    /// The live value under `key`; an expired one is removed (unless a
    /// fresh value replaced it meanwhile) and not returned.
    fn live(&self, key: &str, now: Instant) -> Option<Value> {
        let key = key.as_bytes();
        let stored = self.entries.get(key)?;
        if stored.expired(now) {
            self.entries.remove_if(key, |stored| stored.expired(now));
            return None;
        }
        Some(stored.value)
    }

    /// Runs `change` on the live entry under `key`, atomically (the key's
    /// shard is locked meanwhile); `None` when there is none, an expired
    /// entry being removed.
    fn change<T>(&self, key: &str, change: impl FnOnce(&mut Stored) -> T) -> Option<T> {
        let now = Instant::now();
        let found = self.entries.entry(&owned(key), None, |_, stored| {
            if stored.expired(now) {
                EntryAction::Remove
            } else {
                EntryAction::Retain(change(stored))
            }
        });
        match found {
            EntryResult::Retained(value) => Some(value),
            // A vacant key's guard is dropped unused: nothing is inserted.
            _ => None,
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

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Value>> {
        answered(self.live(key, Instant::now()))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Value>>> {
        let now = Instant::now();
        answered(keys.iter().map(|key| self.live(key, now)).collect())
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        self.entries
            .insert(owned(key), Stored::new(value, deadline(ttl)));
        answered(())
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> BoxFuture<'_, ()> {
        let expires_at = deadline(ttl);
        for (key, value) in entries {
            self.entries
                .insert(owned(&key), Stored::new(value, expires_at));
        }
        answered(())
    }

    fn add<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, bool> {
        // Atomic: of concurrent adds, the first takes the key's guard and
        // the others wait for its value, then find the key taken.
        let now = Instant::now();
        let found = self.entries.entry(&owned(key), None, |_, stored| {
            if stored.expired(now) {
                EntryAction::ReplaceWithGuard
            } else {
                EntryAction::Retain(())
            }
        });
        let added = match found {
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => {
                // Refused only when a `set` of the same key came in between,
                // which then holds the key.
                guard.insert(Stored::new(value, now + ttl)).is_ok()
            }
            _ => false,
        };
        answered(added)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        let removed = self.entries.remove(key.as_bytes());
        answered(removed.is_some_and(|(_, stored)| !stored.expired(Instant::now())))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Counted> {
        let counted = self.change(key, |stored| match add_to(&stored.value, delta) {
            None => Counted::NotANumber,
            Some(sum) => {
                // The time to live stays the entry's.
                stored.value = Value::kept(sum.to_string().into_bytes());
                Counted::Value(sum)
            }
        });
        answered(counted.unwrap_or(Counted::Missing))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        let expires_at = deadline(ttl);
        let touched = self.change(key, |stored| stored.expires_at = expires_at);
        answered(touched.is_some())
    }

    fn clear<'a>(&'a self, _prefix: &'a str) -> BoxFuture<'a, ()> {
        // This process's cache holds this site's keys only.
        self.entries.clear();
        answered(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: BoxFuture<'_, T>) -> T {
        futures_util::FutureExt::now_or_never(future)
            .expect("the memory backend never waits")
            .expect("the memory backend never fails")
    }

    #[test]
    fn holds_its_capacity_and_no_more() {
        let backend = MemoryBackend::new(1_000);
        let ttl = Duration::from_secs(60);
        let kept = |range: std::ops::Range<u32>| {
            range
                .filter(|i| block(backend.get(&format!("k{i}"))).is_some())
                .count()
        };
        for i in 0..1_000 {
            block(backend.set(&format!("k{i}"), b"1".to_vec(), ttl));
        }
        // Every one of `cache_max_entries` values fits (with quick_cache's
        // default eight shards, 1.3 % of them did not).
        assert_eq!(kept(0..1_000), 1_000);
        for i in 1_000..10_000 {
            block(backend.set(&format!("k{i}"), b"1".to_vec(), ttl));
        }
        let kept = kept(0..10_000);
        assert!((900..=1_000).contains(&kept), "{kept} entries kept");
    }

    #[test]
    fn short_values_are_copied_and_long_ones_shared_under_short_and_long_keys() {
        let backend = MemoryBackend::new(100);
        let ttl = Duration::from_secs(60);
        let long_key = "k".repeat(200);
        let row = br#"{"id":10000,"randomNumber":10000}"#.to_vec();
        let page = vec![b'x'; 10_000];
        for key in ["k", long_key.as_str()] {
            block(backend.set(key, row.clone(), ttl));
            let found = block(backend.get(key)).expect("the row is stored");
            assert!(matches!(found, Value::Inline(_)), "{found:?}");
            assert_eq!(&*found, &row[..]);

            block(backend.set(key, page.clone(), ttl));
            let (Some(Value::Shared(first)), Some(Value::Shared(second))) =
                (block(backend.get(key)), block(backend.get(key)))
            else {
                panic!("a long value is shared");
            };
            assert_eq!(first, page);
            // Each read hands out the stored bytes, not a copy of them.
            assert_eq!(first.as_ptr(), second.as_ptr());
        }
        let both = block(backend.get_many(&["k".to_owned(), long_key, "absent".to_owned()]));
        assert_eq!(both.len(), 3);
        assert!(
            both[..2]
                .iter()
                .all(|value| value.as_deref() == Some(&page[..]))
        );
        assert_eq!(both[2], None);
    }

    #[test]
    fn expired_entries_are_gone_for_every_operation() {
        let backend = MemoryBackend::new(100);
        let gone = Duration::ZERO;
        block(backend.set("k", b"1".to_vec(), gone));
        assert_eq!(block(backend.get("k")), None);
        block(backend.set("k", b"1".to_vec(), gone));
        assert_eq!(block(backend.incr("k", 1)), Counted::Missing);
        block(backend.set("k", b"1".to_vec(), gone));
        assert!(!block(backend.touch("k", Duration::from_secs(60))));
        block(backend.set("k", b"1".to_vec(), gone));
        assert!(!block(backend.delete("k")));
        block(backend.set("k", b"1".to_vec(), gone));
        assert!(block(backend.add(
            "k",
            b"2".to_vec(),
            Duration::from_secs(60)
        )));
        assert_eq!(block(backend.get("k")).as_deref(), Some(&b"2"[..]));
    }
}
