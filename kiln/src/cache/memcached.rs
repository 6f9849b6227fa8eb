//! The Memcached backend (`cache = "memcached://host:port"`), with
//! Shopify's `async-memcached` client (maintained, tokio-native, ASCII and
//! meta protocols, pipelined multi-get/set).
//!
//! A client is one connection that serves one command at a time, so the
//! backend keeps a small pool of them, each opened on first use and opened
//! again after a failure (the client closes a connection whose reply was
//! cut short, rather than read the next reply out of step).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{AsciiProtocol as _, Client, ErrorKind, MetaProtocol as _, Status};
use tokio::sync::Mutex;

use super::CacheError;
use super::backend::{Backend, BoxFuture, Counted, Value};

/// Connections per backend: enough for the commands of a busy process to
/// overlap, few enough for a shared server's connection limit.
const POOL_SIZE: usize = 8;

/// Longest wait to connect or for a reply: an unreachable server is a
/// prompt error, not a request that hangs until the request timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Memcached reads an expiry longer than this many seconds as a Unix time.
const RELATIVE_LIMIT: u64 = 30 * 24 * 3600;

pub(crate) struct MemcachedBackend {
    address: String,
    pool: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl MemcachedBackend {
    pub(crate) fn new(url: &str) -> Result<Self, CacheError> {
        let address = url.strip_prefix("memcached://").unwrap_or(url);
        let address = address.trim_end_matches('/');
        let valid = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(CacheError::failed(
                format!("memcached at {url}"),
                "read its URL",
                "expected memcached://host:port",
                "set cache to a URL such as memcached://127.0.0.1:11211",
            ));
        }
        Ok(Self {
            address: address.to_owned(),
            pool: (0..POOL_SIZE).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    fn failed(&self, action: &'static str, error: impl std::fmt::Display) -> CacheError {
        CacheError::failed(
            self.describe(),
            action,
            error,
            "check that memcached is running there (`echo version | nc host 11211`) or change the cache setting",
        )
    }

    /// Runs `command` on a pooled connection, opening it if needed; a
    /// connection that failed is dropped so the next use opens a new one.
    async fn with<T, F>(&self, action: &'static str, command: F) -> Result<T, CacheError>
    where
        F: AsyncFnOnce(&mut Client) -> Result<T, async_memcached::Error>,
    {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let mut guard = self.pool[slot].lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let dsn = format!("tcp://{}", self.address);
            let client = match tokio::time::timeout(TIMEOUT, Client::new(dsn)).await {
                Ok(Ok(client)) => client,
                Ok(Err(error)) => return Err(self.failed(action, error)),
                Err(_) => return Err(self.failed(action, "no answer within 2 s")),
            };
            *guard = Some(client);
        }
        let Some(client) = guard.as_mut() else {
            return Err(self.failed(action, "no connection"));
        };
        match tokio::time::timeout(TIMEOUT, command(client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if matches!(
                    error,
                    async_memcached::Error::Io(_)
                        | async_memcached::Error::Connect(_)
                        | async_memcached::Error::ConnectionClosed
                ) {
                    *guard = None;
                }
                Err(self.failed(action, error))
            }
            Err(_) => {
                *guard = None;
                Err(self.failed(action, "no answer within 2 s"))
            }
        }
    }
}

/// Memcached's expiry for `ttl`: whole seconds (at least one), as a Unix
/// time past 30 days. Memcached reads it as a 32-bit number, so a value
/// kept past January 2038 is kept until then.
fn expiry(ttl: Duration) -> i64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    let seconds = seconds.max(1);
    let seconds = if seconds > RELATIVE_LIMIT {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        now.saturating_add(seconds)
    } else {
        seconds
    };
    i64::try_from(seconds)
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX))
}

fn is_status(error: &async_memcached::Error, status: &Status) -> bool {
    matches!(error, async_memcached::Error::Protocol(found) if found == status)
}

/// Reads a reply that is a status, not an error, out of `result`.
fn answered(
    result: Result<(), async_memcached::Error>,
    no: &Status,
) -> Result<bool, async_memcached::Error> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if is_status(&error, no) => Ok(false),
        Err(error) => Err(error),
    }
}

impl Backend for MemcachedBackend {
    fn name(&self) -> &'static str {
        "memcached"
    }

    fn describe(&self) -> String {
        format!("memcached at {}", self.address)
    }

    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.with("reach it", async |client| client.version().await.map(drop))
                .await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async move {
            let value = self
                .with("get a value", async |client| client.get(key).await)
                .await?;
            Ok(value.and_then(|value| value.data).map(Value::from))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Value>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let found = self
                .with("get values", async |client| client.get_multi(keys).await)
                .await?;
            let mut values: Vec<Option<Value>> = vec![None; keys.len()];
            for value in found {
                if let Some(index) = keys.iter().position(|key| key.as_bytes() == value.key) {
                    values[index] = value.data.map(Value::from);
                }
            }
            Ok(values)
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.with("set a value", async |client| {
                client
                    .set(key, value.as_slice(), Some(expiry(ttl)), None)
                    .await
            })
            .await
        })
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let pairs: Vec<(&str, &[u8])> = entries
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_slice()))
                .collect();
            let outcomes = self
                .with("set values", async |client| {
                    let outcomes = client.set_multi(&pairs, Some(expiry(ttl)), None).await?;
                    Ok(outcomes
                        .into_iter()
                        .find_map(|(key, outcome)| outcome.err().map(|error| (*key, error))))
                })
                .await?;
            match outcomes {
                None => Ok(()),
                Some((key, error)) => Err(self.failed("set values", format!("{key}: {error}"))),
            }
        })
    }

    fn add<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.with("add a value", async |client| {
                let stored = client
                    .add(key, value.as_slice(), Some(expiry(ttl)), None)
                    .await;
                answered(stored, &Status::NotStored)
            })
            .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.with("delete a value", async |client| {
                answered(client.delete(key).await, &Status::NotFound)
            })
            .await
        })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Counted> {
        Box::pin(async move {
            self.with("increment a value", async |client| {
                let amount = delta.unsigned_abs();
                let counted = if delta >= 0 {
                    client.increment(key, amount).await
                } else {
                    client.decrement(key, amount).await
                };
                match counted {
                    Ok(value) => {
                        Ok(i64::try_from(value).map_or(Counted::NotANumber, Counted::Value))
                    }
                    Err(error) if is_status(&error, &Status::NotFound) => Ok(Counted::Missing),
                    Err(async_memcached::Error::Protocol(Status::Error(ErrorKind::Client(_)))) => {
                        Ok(Counted::NotANumber)
                    }
                    Err(error) => Err(error),
                }
            })
            .await
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let flag = format!("T{}", expiry(ttl));
            self.with("touch a value", async |client| {
                // `mg <key> v T<ttl>`: a get that also sets the expiry.
                let value = client
                    .meta_get(key, false, None, Some(&["v", flag.as_str()]))
                    .await?;
                Ok(value.is_some())
            })
            .await
        })
    }

    fn clear<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = "clear the site's keys";
            // Memcached has no delete-by-prefix: list the keys
            // (`lru_crawler metadump`, URL-encoded) and delete this site's.
            let keys = self
                .with(action, async |client| {
                    let mut keys = Vec::new();
                    let mut dump = client.dump_keys().await?;
                    while let Some(entry) = dump.next().await {
                        let raw = entry?.key;
                        let key = percent_encoding::percent_decode(&raw).collect::<Vec<u8>>();
                        if key.starts_with(prefix.as_bytes()) {
                            keys.push(key);
                        }
                    }
                    Ok(keys)
                })
                .await?;
            for key in keys {
                self.with(action, async |client| {
                    answered(client.delete(&key).await, &Status::NotFound).map(drop)
                })
                .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn expiries_are_whole_seconds_and_absolute_past_thirty_days() {
        assert_eq!(super::expiry(Duration::from_millis(10)), 1);
        assert_eq!(super::expiry(Duration::from_millis(1500)), 2);
        assert_eq!(super::expiry(Duration::from_secs(300)), 300);
        assert!(super::expiry(Duration::from_secs(31 * 24 * 3600)) > 1_700_000_000);
        assert_eq!(super::expiry(Duration::MAX), i64::from(i32::MAX));
    }

    #[test]
    fn urls_need_a_host_and_a_port() {
        assert!(super::MemcachedBackend::new("memcached://127.0.0.1:11211").is_ok());
        for bad in ["memcached://", "memcached://host", "memcached://:11211"] {
            let error = super::MemcachedBackend::new(bad)
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.contains("fix:")), "{bad}");
        }
    }
}
