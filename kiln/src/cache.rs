//! The cache, as Django's: values kept by key for a while, in this process
//! (the default), in Redis or in Memcached.
//!
//! A handler takes a [`Cache`] (an extractor, cheap to clone) and reads and
//! writes any `serde` value by key: [`get`](Cache::get),
//! [`set`](Cache::set), [`add`](Cache::add), [`delete`](Cache::delete),
//! [`get_or_set`](Cache::get_or_set), [`get_many`](Cache::get_many),
//! [`set_many`](Cache::set_many), [`incr`](Cache::incr),
//! [`decr`](Cache::decr), [`touch`](Cache::touch) and
//! [`clear`](Cache::clear). Where the values live is the `cache` setting:
//!
//! | `cache` | backend | cargo feature |
//! |---|---|---|
//! | `memory` (default) | this process ([quick_cache](https://docs.rs/quick_cache)), at most `cache_max_entries` entries | none |
//! | `redis://host:port/db` | Redis, shared by every process of the site | `redis` |
//! | `memcached://host:port` | Memcached | `memcached` |
//!
//! Keys are stored as `{cache_key_prefix}:{version}:{key}`, as Django's
//! `make_key` does, so that sites sharing a server keep apart and
//! [`clear`](Cache::clear) removes this site's keys only. A key Memcached
//! could not store (longer than 250 bytes with the prefix, or other than
//! printable ASCII without spaces) is refused on every backend, so code tested on the
//! in-process cache works unchanged on Memcached.
//!
//! Values are JSON (`serde_json`, already Kiln's wire format): an integer
//! is stored as its decimal text, which lets Redis and Memcached increment
//! it on the server, atomically, and lets other programs read the values.
//! A binary format (MessagePack) would be a little smaller but would make
//! [`incr`](Cache::incr) a read-modify-write race on every backend.
//!
//! See `docs/topics/cache.md`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use kiln::cache::Cache;
//! use kiln::prelude::*;
//!
//! async fn greeting(cache: Cache) -> Result<String, kiln::Error> {
//!     let text: String = cache
//!         .get_or_set("greeting", Some(Duration::from_secs(60)), || async {
//!             Ok::<_, kiln::Error>("computed once".to_owned())
//!         })
//!         .await?;
//!     cache.add("hits", &0, None).await?;
//!     let hits = cache.incr("hits", 1).await?;
//!     Ok(format!("{text}, {hits}"))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let project = Project::new("demo").route("/", "greeting", get(greeting));
//! let client = kiln::test::TestClient::new(project);
//! assert_eq!(client.get("/").send().await.text(), "computed once, 1");
//! assert_eq!(client.get("/").send().await.text(), "computed once, 2");
//! # });
//! ```

mod backend;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis_backend;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use backend::Backend;

use crate::settings::Settings;

/// The longest key Memcached stores, prefix and version included.
pub const MAX_KEY_LENGTH: usize = 250;

/// The longest time to live a value gets, about a century: a longer one
/// (`Duration::MAX` for "for ever") is cut to it: the in-process cache's
/// clock would overflow, and Redis refuses such an expiry ("out of range").
/// Memcached keeps a value until January 2038 at most (its expiry is a
/// 32-bit Unix time).
pub const LONGEST_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The URL schemes the `cache` setting accepts besides `memory`.
const SCHEMES: [&str; 3] = ["redis://", "rediss://", "memcached://"];

/// A handle on the site's cache; clones share it.
///
/// As an extractor it is the cache the `cache` setting names; outside a
/// request, [`Site::cache`](crate::Site::cache) gives the same one, and
/// [`Cache::memory`] makes a standalone in-process cache.
#[derive(Clone)]
pub struct Cache(Arc<Inner>);

struct Inner {
    backend: Arc<dyn Backend>,
    prefix: String,
    version: u32,
    /// `{prefix}:{version}:`, formatted once rather than for every key.
    key_prefix: String,
    default_ttl: Duration,
    /// Keys whose value [`Cache::get_or_set`] is computing, so that
    /// concurrent misses in this process wait for one computation instead
    /// of each running it. A std Mutex: nothing awaits while it is held.
    computing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.0.backend.describe())
            .field("prefix", &self.0.prefix)
            .field("version", &self.0.version)
            .field("default_ttl", &self.0.default_ttl)
            .finish()
    }
}

/// Why a cache operation failed. Each message says which key or server,
/// and how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A key Memcached could not store.
    #[error(
        "cache key `{key}` cannot be used: {problem}\n  fix: use keys of at most {MAX_KEY_LENGTH} bytes (with the prefix) of printable ASCII without spaces; hash long or free-form keys (e.g. sha256 in hex)"
    )]
    InvalidKey {
        /// The key, as given.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// [`Cache::incr`] or [`Cache::decr`] on a key that holds nothing.
    #[error(
        "cache key `{key}` holds no value to increment\n  fix: set it first, e.g. `cache.add(key, &0, None)`, then increment"
    )]
    MissingKey {
        /// The key.
        key: String,
    },
    /// [`Cache::incr`] or [`Cache::decr`] on a value that is not an integer
    /// (or, on Memcached, a negative one).
    #[error(
        "cache key `{key}` does not hold an integer the {backend} backend can increment\n  fix: store whole numbers (non-negative on Memcached) under keys you increment"
    )]
    NotANumber {
        /// The key.
        key: String,
        /// Which backend refused.
        backend: &'static str,
    },
    /// A value could not be turned into JSON, or the stored JSON does not
    /// fit the type asked for.
    #[error(
        "cache key `{key}`: cannot {action} the value: {source}\n  fix: read a key with the type it was stored with, or delete it"
    )]
    Value {
        /// The key.
        key: String,
        /// `serialise` or `deserialise`.
        action: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// The server failed or could not be reached.
    #[error("cache {backend}: cannot {action}: {problem}\n  fix: {fix}")]
    Backend {
        /// Which backend and server (password masked).
        backend: String,
        /// What it was doing.
        action: &'static str,
        /// What went wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl CacheError {
    /// The one shape of a failed backend operation.
    pub(crate) fn failed(
        backend: String,
        action: &'static str,
        problem: impl fmt::Display,
        fix: &str,
    ) -> Self {
        Self::Backend {
            backend,
            action,
            problem: problem.to_string(),
            fix: fix.to_owned(),
        }
    }
}

impl Cache {
    /// A standalone in-process cache holding at most `max_entries` values,
    /// with the default settings otherwise (no prefix, 300 s time to live).
    #[must_use]
    pub fn memory(max_entries: u64) -> Self {
        Self::with_backend(
            Arc::new(memory::MemoryBackend::new(max_entries)),
            String::new(),
            Duration::from_secs(300),
        )
    }

    /// The cache the `cache` setting names, with its prefix and default
    /// time to live. Nothing is connected yet; see [`Cache::ping`].
    ///
    /// # Errors
    ///
    /// [`CacheError::Backend`] when the URL is not one the backend accepts.
    pub fn from_settings(settings: &Settings) -> Result<Self, CacheError> {
        let url = settings.cache.as_str();
        let backend: Arc<dyn Backend> = if url == "memory" {
            Arc::new(memory::MemoryBackend::new(settings.cache_max_entries))
        } else if url.starts_with("redis") {
            redis_backend(url)?
        } else {
            memcached_backend(url)?
        };
        Ok(Self::with_backend(
            backend,
            settings.cache_key_prefix.clone(),
            settings.cache_timeout.0,
        ))
    }

    fn with_backend(backend: Arc<dyn Backend>, prefix: String, default_ttl: Duration) -> Self {
        Self(Arc::new(Inner {
            backend,
            key_prefix: format!("{prefix}:1:"),
            prefix,
            version: 1,
            default_ttl,
            computing: Arc::default(),
        }))
    }

    /// The same cache with keys of another version (Django's `version`):
    /// bump it to make every old value unreachable at once.
    #[must_use]
    pub fn versioned(&self, version: u32) -> Self {
        Self(Arc::new(Inner {
            backend: Arc::clone(&self.0.backend),
            prefix: self.0.prefix.clone(),
            version,
            key_prefix: format!("{}:{version}:", self.0.prefix),
            default_ttl: self.0.default_ttl,
            computing: Arc::clone(&self.0.computing),
        }))
    }

    /// Checks that the server answers (always true in process), as boot
    /// and `check` do.
    ///
    /// # Errors
    ///
    /// [`CacheError::Backend`] naming the server and the fix.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.0.backend.ping().await
    }

    /// The backend and its server, for messages: `memory`,
    /// `redis at redis://127.0.0.1:6379`.
    #[must_use]
    pub fn describe(&self) -> String {
        self.0.backend.describe()
    }

    /// `{prefix}:{version}:{key}`, checked against Memcached's rules.
    ///
    /// # Errors
    ///
    /// [`CacheError::InvalidKey`].
    pub fn make_key(&self, key: &str) -> Result<String, CacheError> {
        let key_prefix = &self.0.key_prefix;
        let length = key_prefix.len() + key.len();
        let invalid = |problem: String| CacheError::InvalidKey {
            key: key.to_owned(),
            problem,
        };
        if length > MAX_KEY_LENGTH {
            return Err(invalid(format!(
                "it is {length} bytes with the prefix `{key_prefix}`, over Memcached's {MAX_KEY_LENGTH}"
            )));
        }
        // Printable ASCII only: Memcached's text protocol ends a key at a
        // space or control character, and its client reads back only ASCII
        // keys, so the same rule holds on every backend.
        if let Some(bad) = key.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid(format!(
                "it contains {bad:?}; keys are printable ASCII without spaces, as Memcached's protocol carries them"
            )));
        }
        let mut full = String::with_capacity(length);
        full.push_str(key_prefix);
        full.push_str(key);
        Ok(full)
    }

    fn ttl(&self, ttl: Option<Duration>) -> Duration {
        ttl.unwrap_or(self.0.default_ttl).min(LONGEST_TTL)
    }

    /// The value under `key`, or `None` when there is none (or it expired).
    ///
    /// # Errors
    ///
    /// A bad key, a value that does not deserialise as `T`, or a backend
    /// failure.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        let full = self.make_key(key)?;
        match self.0.backend.get(&full).await? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key` for `ttl` (`None`: the `cache_timeout`
    /// setting). A zero `ttl` stores nothing and deletes the key.
    ///
    /// # Errors
    ///
    /// A bad key, a value that does not serialise, or a backend failure.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        let full = self.make_key(key)?;
        let bytes = encode(key, value)?;
        let ttl = self.ttl(ttl);
        if ttl.is_zero() {
            return self.0.backend.delete(&full).await.map(drop);
        }
        self.0.backend.set(&full, bytes, ttl).await
    }

    /// Stores `value` under `key` only if the key holds nothing; whether it
    /// did. Atomic on every backend: of concurrent `add`s, one wins.
    ///
    /// # Errors
    ///
    /// As [`Cache::set`].
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let full = self.make_key(key)?;
        let bytes = encode(key, value)?;
        let ttl = self.ttl(ttl);
        if ttl.is_zero() {
            return Ok(false);
        }
        self.0.backend.add(&full, bytes, ttl).await
    }

    /// Removes `key`; whether it held a value.
    ///
    /// # Errors
    ///
    /// A bad key or a backend failure.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let full = self.make_key(key)?;
        self.0.backend.delete(&full).await
    }

    /// The value under `key`; on a miss, `compute`'s value, stored for
    /// `ttl` and returned.
    ///
    /// Concurrent misses on one key in this process run `compute` once:
    /// the others wait and read its value. Processes sharing Redis or
    /// Memcached may each compute it once; all then return the value
    /// stored first (it is written with [`add`](Cache::add)).
    ///
    /// # Errors
    ///
    /// `compute`'s error, or a cache error as for [`get`](Cache::get) and
    /// [`set`](Cache::set).
    pub async fn get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        compute: F,
    ) -> Result<T, crate::Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<crate::Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get(key).await? {
            return Ok(value);
        }
        let full = self.make_key(key)?;
        let lock = {
            let mut computing = self.0.computing.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(computing.entry(full.clone()).or_default())
        };
        let outcome = async {
            let _turn = lock.lock().await;
            // Another task may have stored it while this one waited.
            if let Some(value) = self.get(key).await? {
                return Ok(value);
            }
            let value = compute().await.map_err(Into::into)?;
            if self.add(key, &value, ttl).await? {
                Ok(value)
            } else {
                // Another process stored it first: return the same value
                // as everyone else (or ours, if it has expired already).
                Ok(self.get(key).await?.unwrap_or(value))
            }
        }
        .await;
        let mut computing = self.0.computing.lock().unwrap_or_else(|e| e.into_inner());
        // The map's entry and this task's clone: no one else waits on it.
        if computing
            .get(&full)
            .is_some_and(|held| Arc::ptr_eq(held, &lock) && Arc::strong_count(held) == 2)
        {
            computing.remove(&full);
        }
        outcome
    }

    /// The value under each of `keys`, in their order (`None` where a key
    /// holds nothing), in one round trip.
    ///
    /// One answer per key rather than Django's dict of the keys found: the
    /// caller already has the keys, so no map (and no copy of each key) is
    /// built for it.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`], for any of the keys.
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<T>>, CacheError> {
        let full: Vec<String> = keys
            .iter()
            .map(|key| self.make_key(key))
            .collect::<Result<_, _>>()?;
        let values = self.0.backend.get_many(&full).await?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| value.map(|bytes| decode(key, &bytes)).transpose())
            .collect()
    }

    /// Stores every `(key, value)` for `ttl`, in one round trip.
    ///
    /// # Errors
    ///
    /// As [`Cache::set`], for any of the pairs; nothing is stored when a
    /// key or value is refused.
    pub async fn set_many<K: AsRef<str>, T: Serialize>(
        &self,
        entries: &[(K, T)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        let mut encoded = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let key = key.as_ref();
            encoded.push((self.make_key(key)?, encode(key, value)?));
        }
        let ttl = self.ttl(ttl);
        if ttl.is_zero() {
            for (full, _) in &encoded {
                self.0.backend.delete(full).await?;
            }
            return Ok(());
        }
        self.0.backend.set_many(encoded, ttl).await
    }

    /// Adds `delta` to the integer under `key`, atomically; the new value.
    /// The time to live is left as it was.
    ///
    /// # Errors
    ///
    /// [`CacheError::MissingKey`] when the key holds nothing (as Django),
    /// [`CacheError::NotANumber`] when it holds something else, or a backend
    /// failure. Memcached holds non-negative integers only, and a decrement
    /// there stops at 0.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64, CacheError> {
        let full = self.make_key(key)?;
        match self.0.backend.incr(&full, delta).await? {
            backend::Counted::Value(value) => Ok(value),
            backend::Counted::Missing => Err(CacheError::MissingKey {
                key: key.to_owned(),
            }),
            backend::Counted::NotANumber => Err(CacheError::NotANumber {
                key: key.to_owned(),
                backend: self.0.backend.name(),
            }),
        }
    }

    /// Subtracts `delta`: [`incr`](Cache::incr) with `-delta`.
    ///
    /// # Errors
    ///
    /// As [`Cache::incr`].
    pub async fn decr(&self, key: &str, delta: i64) -> Result<i64, CacheError> {
        self.incr(key, delta.saturating_neg()).await
    }

    /// Gives `key` a new time to live (`None`: the `cache_timeout` setting)
    /// without changing its value; whether it held one.
    ///
    /// # Errors
    ///
    /// A bad key or a backend failure.
    pub async fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, CacheError> {
        let full = self.make_key(key)?;
        let ttl = self.ttl(ttl);
        if ttl.is_zero() {
            return self.0.backend.delete(&full).await;
        }
        self.0.backend.touch(&full, ttl).await
    }

    /// Removes every key of this site (those under `cache_key_prefix`, all
    /// versions) and no other: on a shared Redis or Memcached, other sites'
    /// keys stay.
    ///
    /// # Errors
    ///
    /// A backend failure.
    pub async fn clear(&self) -> Result<(), CacheError> {
        self.0.backend.clear(&format!("{}:", self.0.prefix)).await
    }
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, CacheError> {
    serde_json::to_vec(value).map_err(|source| CacheError::Value {
        key: key.to_owned(),
        action: "serialise",
        source,
    })
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, CacheError> {
    serde_json::from_slice(bytes).map_err(|source| CacheError::Value {
        key: key.to_owned(),
        action: "deserialise",
        source,
    })
}

#[cfg(feature = "redis")]
fn redis_backend(url: &str) -> Result<Arc<dyn Backend>, CacheError> {
    Ok(Arc::new(redis_backend::RedisBackend::new(url)?))
}

#[cfg(not(feature = "redis"))]
fn redis_backend(url: &str) -> Result<Arc<dyn Backend>, CacheError> {
    Err(missing_feature(url, "redis"))
}

#[cfg(feature = "memcached")]
fn memcached_backend(url: &str) -> Result<Arc<dyn Backend>, CacheError> {
    Ok(Arc::new(memcached::MemcachedBackend::new(url)?))
}

#[cfg(not(feature = "memcached"))]
fn memcached_backend(url: &str) -> Result<Arc<dyn Backend>, CacheError> {
    Err(missing_feature(url, "memcached"))
}

#[cfg(any(not(feature = "redis"), not(feature = "memcached")))]
fn missing_feature(url: &str, feature: &str) -> CacheError {
    CacheError::failed(
        crate::db::mask_password(url),
        "open it",
        format!("this build lacks Kiln's `{feature}` cargo feature"),
        &format!("build with --features {feature}, or use cache = \"memory\""),
    )
}

/// Checks the cache settings at boot; `(key, problem, fix)` for the first
/// bad one.
pub(crate) fn check_settings(
    settings: &Settings,
) -> Result<(), (&'static str, String, &'static str)> {
    let url = &settings.cache;
    let shown = crate::db::mask_password(url);
    if url != "memory" && !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return Err((
            "cache",
            format!("`{shown}` is not a cache"),
            "use \"memory\", \"redis://host:port\" or \"memcached://host:port\"",
        ));
    }
    for (scheme, feature, fix) in [
        (
            "redis",
            cfg!(feature = "redis"),
            "build with --features redis (features = [\"redis\"] on the kiln dependency), or use cache = \"memory\"",
        ),
        (
            "memcached",
            cfg!(feature = "memcached"),
            "build with --features memcached (features = [\"memcached\"] on the kiln dependency), or use cache = \"memory\"",
        ),
    ] {
        if url.starts_with(scheme) && !feature {
            return Err((
                "cache",
                format!("`{shown}` needs Kiln's `{scheme}` cargo feature, which this build lacks"),
                fix,
            ));
        }
    }
    // The URL is parsed now (nothing is connected) so that a typo stops
    // the boot; the in-process cache has no URL to parse.
    if url != "memory"
        && let Err(CacheError::Backend { problem, .. }) = Cache::from_settings(settings)
    {
        return Err((
            "cache",
            problem,
            "use a URL such as redis://127.0.0.1:6379/0 or memcached://127.0.0.1:11211",
        ));
    }
    let prefix = &settings.cache_key_prefix;
    if let Some(bad) = prefix.chars().find(|c| !c.is_ascii_graphic() || *c == ':') {
        return Err((
            "cache_key_prefix",
            format!("`{prefix}` contains {bad:?}"),
            "use letters, digits, `_`, `-` and `.`, e.g. \"mysite\" (`:` separates the prefix from the key)",
        ));
    }
    if prefix.len() > 100 {
        return Err((
            "cache_key_prefix",
            format!("`{prefix}` is {} bytes long", prefix.len()),
            "use a short name such as the site's: keys, prefix included, must fit in 250 bytes",
        ));
    }
    if settings.cache_timeout.0.is_zero() {
        return Err((
            "cache_timeout",
            "must be longer than zero: nothing would stay cached".to_owned(),
            "use a duration such as \"300s\" or \"5m\"",
        ));
    }
    if settings.cache_max_entries == 0 {
        return Err((
            "cache_max_entries",
            "must be at least 1: the in-process cache would hold nothing".to_owned(),
            "use a number such as 10000",
        ));
    }
    Ok(())
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Cache {
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let site = crate::Site::from_request_parts(parts, state).await?;
        Ok(site.cache().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_djangos_make_key_and_memcacheds_rules() {
        let cache = Cache::memory(10);
        assert_eq!(cache.make_key("a").unwrap(), ":1:a");
        assert_eq!(cache.versioned(3).make_key("a").unwrap(), ":3:a");
        for bad in ["with space", "tab\there", "nl\n", "café", &"k".repeat(250)] {
            let error = cache.make_key(bad).unwrap_err().to_string();
            assert!(error.contains("fix:"), "{error}");
        }
        assert!(cache.make_key(&"k".repeat(247)).is_ok());
    }
}
