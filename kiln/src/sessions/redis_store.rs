//! [`RedisStore`]: sessions in Redis, each a key `kiln:session:<key>` whose
//! time to live is the session's expiry, so Redis forgets them by itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::store::{BoxFuture, Data, SessionStore, StoreError};

/// The prefix of every session key in Redis.
pub const KEY_PREFIX: &str = "kiln:session:";

/// Longest wait for Redis to accept a connection or answer a command: an
/// unreachable server is a prompt 500, not a request that hangs until the
/// request timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions in Redis, shared by every process of the site.
///
/// One multiplexed connection serves every request; it is opened on first
/// use and reopened by the connection manager when it drops.
pub struct RedisStore {
    url: String,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis server at `url` (`redis://host:port/db`);
    /// nothing is connected yet.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when `url` is not a Redis URL.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let masked = crate::db::mask_password(url);
        let client = redis::Client::open(url).map_err(|error| {
            StoreError::new(
                format!("redis at {masked}"),
                "open its URL",
                error,
                "set session_redis_url to a URL such as redis://127.0.0.1:6379",
            )
        })?;
        Ok(Self {
            url: masked,
            client,
            connection: OnceCell::new(),
        })
    }

    fn failed(&self, action: &'static str, error: impl std::fmt::Display) -> StoreError {
        StoreError::new(
            self.describe(),
            action,
            error,
            "check that Redis is running there (`redis-cli -u <url> ping`) or change session_redis_url",
        )
    }

    async fn connection(&self, action: &'static str) -> Result<ConnectionManager, StoreError> {
        let connect = || async {
            open_manager(&self.client)
                .await
                .map_err(|error| self.failed(action, error))
        };
        self.connection.get_or_try_init(connect).await.cloned()
    }
}

/// A connection manager on `client` that gives up within seconds: an
/// unreachable server is a prompt error, not a request that hangs until
/// the request timeout. Shared by the session store and the cache.
pub(crate) async fn open_manager(client: &redis::Client) -> Result<ConnectionManager, String> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1);
    match tokio::time::timeout(
        TIMEOUT * 2,
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 4 s".to_owned()),
    }
}

impl SessionStore for RedisStore {
    fn describe(&self) -> String {
        format!("redis at {}", self.url)
    }

    fn load<'a>(&'a self, cookie: &'a str) -> BoxFuture<'a, Option<Data>> {
        Box::pin(async move {
            if !super::is_session_key(cookie) {
                return Ok(None);
            }
            let action = "load a session";
            let mut connection = self.connection(action).await?;
            let text: Option<String> = connection
                .get(format!("{KEY_PREFIX}{cookie}"))
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(text.and_then(|text| super::parse_data(&text)))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        data: &'a Data,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, String> {
        Box::pin(async move {
            let action = "save a session";
            let text = serde_json::to_string(data).map_err(|error| self.failed(action, error))?;
            let seconds = u64::try_from((expires - Utc::now()).num_seconds())
                .unwrap_or(0)
                .max(1);
            let mut connection = self.connection(action).await?;
            let () = connection
                .set_ex(format!("{KEY_PREFIX}{key}"), text, seconds)
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(key.to_owned())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = "delete a session";
            let mut connection = self.connection(action).await?;
            let _: usize = connection
                .del(format!("{KEY_PREFIX}{key}"))
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(())
        })
    }

    fn delete_expired(&self) -> BoxFuture<'_, u64> {
        // Every key carries its time to live; Redis drops it by itself.
        Box::pin(std::future::ready(Ok(0)))
    }
}
