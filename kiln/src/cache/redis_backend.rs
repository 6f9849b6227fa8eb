//! The Redis backend (`cache = "redis://host:port/db"`): one multiplexed
//! connection, opened on first use and reopened by the connection manager
//! when it drops (the session store's set-up). Every key carries its time
//! to live (`SET … PX`), so Redis forgets expired values by itself.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::CacheError;
use super::backend::{Backend, BoxFuture, Counted, Value};

/// An increment that refuses a missing key (Redis's INCRBY would create
/// it): `{0}` missing, `{1, value}` done, `{2}` not an integer.
const INCR_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local ok, value = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if ok then return {1, value} end
return {2}
";

/// Keys deleted per `UNLINK` by `clear`.
const CLEAR_BATCH: usize = 500;

pub(crate) struct RedisBackend {
    url: String,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    incr: redis::Script,
}

impl RedisBackend {
    pub(crate) fn new(url: &str) -> Result<Self, CacheError> {
        let masked = crate::db::mask_password(url);
        let client = redis::Client::open(url).map_err(|error| {
            CacheError::failed(
                format!("redis at {masked}"),
                "open its URL",
                error,
                "set cache to a URL such as redis://127.0.0.1:6379/0",
            )
        })?;
        Ok(Self {
            url: masked,
            client,
            connection: OnceCell::new(),
            incr: redis::Script::new(INCR_SCRIPT),
        })
    }

    fn failed(&self, action: &'static str, error: impl std::fmt::Display) -> CacheError {
        CacheError::failed(
            self.describe(),
            action,
            error,
            "check that Redis is running there (`redis-cli -u <url> ping`) or change the cache setting",
        )
    }

    async fn connection(&self, action: &'static str) -> Result<ConnectionManager, CacheError> {
        let connect = || async {
            crate::sessions::redis_store::open_manager(&self.client)
                .await
                .map_err(|error| self.failed(action, error))
        };
        self.connection.get_or_try_init(connect).await.cloned()
    }

    /// Runs `command` on the connection, naming `action` in its error.
    async fn run<T: redis::FromRedisValue>(
        &self,
        action: &'static str,
        command: &redis::Cmd,
    ) -> Result<T, CacheError> {
        let mut connection = self.connection(action).await?;
        command
            .query_async(&mut connection)
            .await
            .map_err(|error| self.failed(action, error))
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `prefix` with Redis's glob characters escaped, then `*`.
fn pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        format!("redis at {}", self.url)
    }

    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _: String = self.run("reach it", &redis::cmd("PING")).await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async move {
            let value: Option<Vec<u8>> = self.run("get a value", &redis::Cmd::get(key)).await?;
            Ok(value.map(Value::from))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Option<Value>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let values: Vec<Option<Vec<u8>>> =
                self.run("get values", redis::cmd("MGET").arg(keys)).await?;
            Ok(values
                .into_iter()
                .map(|value| value.map(Value::from))
                .collect())
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let command = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .to_owned();
            self.run("set a value", &command).await
        })
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let action = "set values";
            let mut pipe = redis::pipe();
            for (key, value) in entries {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore();
            }
            let mut connection = self.connection(action).await?;
            pipe.query_async(&mut connection)
                .await
                .map_err(|error| self.failed(action, error))
        })
    }

    fn add<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let command = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .to_owned();
            let stored: Option<String> = self.run("add a value", &command).await?;
            Ok(stored.is_some())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let removed: u64 = self.run("delete a value", &redis::Cmd::del(key)).await?;
            Ok(removed > 0)
        })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Counted> {
        Box::pin(async move {
            let action = "increment a value";
            let mut connection = self.connection(action).await?;
            let answer: Vec<i64> = self
                .incr
                .key(key)
                .arg(delta)
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(match answer.as_slice() {
                [1, value] => Counted::Value(*value),
                [0] => Counted::Missing,
                _ => Counted::NotANumber,
            })
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let ms = i64::try_from(millis(ttl)).unwrap_or(i64::MAX);
            self.run("touch a value", &redis::Cmd::pexpire(key, ms))
                .await
        })
    }

    fn clear<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = "clear the site's keys";
            let mut connection = self.connection(action).await?;
            // SCAN, not KEYS: it does not block the server on a large
            // database. Keys are collected first because the iterator
            // holds the connection.
            let keys: Vec<String> = {
                let mut found = Vec::new();
                let mut iter = connection
                    .scan_match::<_, String>(pattern(prefix))
                    .await
                    .map_err(|error| self.failed(action, error))?;
                while let Some(key) = iter.next_item().await {
                    found.push(key.map_err(|error| self.failed(action, error))?);
                }
                found
            };
            for batch in keys.chunks(CLEAR_BATCH) {
                let _: u64 = connection
                    .unlink(batch)
                    .await
                    .map_err(|error| self.failed(action, error))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clear_pattern_escapes_globs() {
        assert_eq!(super::pattern("site:"), "site:*");
        assert_eq!(super::pattern("a*b?:"), "a\\*b\\?:*");
    }
}
