//! The [`SessionStore`] trait every session engine implements, and the
//! error a store reports.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

/// A session's data: JSON values by name.
pub type Data = serde_json::Map<String, serde_json::Value>;

/// The boxed future a store's methods return. Boxed because the stack holds
/// stores as `Arc<dyn SessionStore>`, chosen by a setting at boot, and an
/// `async fn` in a trait cannot be called through `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where sessions are kept.
///
/// The `cookie` is the value of the session cookie a request carried: the
/// session key for stores that keep the data on the server (database,
/// Redis), the signed data itself for [`CookieStore`](super::CookieStore).
/// A store answers `Ok(None)` for a cookie it does not know, one that has
/// expired and one whose data no longer parses: each is an empty session,
/// never an error page. `Err` is for a store that cannot answer at all.
pub trait SessionStore: Send + Sync + 'static {
    /// A short name for messages and logs, with the server it talks to
    /// (password masked): `database`, `redis at redis://127.0.0.1:6379`.
    fn describe(&self) -> String;

    /// The data of the session the cookie names, if it exists and has not
    /// expired.
    fn load<'a>(&'a self, cookie: &'a str) -> BoxFuture<'a, Option<Data>>;

    /// Saves `data` under `key` until `expires`, and returns the value the
    /// session cookie must carry from now on.
    fn save<'a>(
        &'a self,
        key: &'a str,
        data: &'a Data,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, String>;

    /// Forgets the session `key` (a logout, a new key after login).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;

    /// Removes expired sessions and returns how many; what `clearsessions`
    /// runs. Stores that expire sessions by themselves return 0.
    fn delete_expired(&self) -> BoxFuture<'_, u64>;
}

/// A session store that could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("session store `{store}` could not {action}: {problem}\n  fix: {fix}")]
pub struct StoreError {
    /// Which store, and the server it talks to.
    pub store: String,
    /// What it was doing: `load a session`, `save a session`, ...
    pub action: &'static str,
    /// What went wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl StoreError {
    /// An error of `store` while doing `action`.
    pub fn new(
        store: String,
        action: &'static str,
        problem: impl std::fmt::Display,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            store,
            action,
            problem: problem.to_string(),
            fix: fix.into(),
        }
    }
}
