//! Sessions, as Django's: data kept for one visitor across requests, found
//! again through a cookie.
//!
//! Mount [`app()`] to turn them on; it carries the migration of the
//! `kiln_session` table. A handler takes a [`Session`] and reads and writes
//! JSON values by name; the stack saves the session after the handler and
//! sets the cookie when something changed. Where the data lives is the
//! `session_engine` setting: `database` (the default), `redis` (the
//! `redis` cargo feature) or `cookie` (the signed data itself in the
//! cookie). See `docs/topics/sessions.md`.
//!
//! A session costs nothing until it is used: the stack hands the handler a
//! handle built from the request's cookie, and the store is read on first
//! access only. A project without the sessions app pays nothing at all.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::sessions::Session;
//!
//! async fn visit(session: Session) -> Result<String, kiln::Error> {
//!     let visits = session.get::<u32>("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", visits).await?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let project = Project::new("demo")
//!     .mount("/", kiln::sessions::app())
//!     .route("/", "visit", get(visit));
//! let client = kiln::test::TestClient::new(project);
//! assert_eq!(client.get("/").send().await.text(), "visit number 1");
//! assert_eq!(client.get("/").send().await.text(), "visit number 2");
//! # });
//! ```

mod cookie_store;
mod database;
mod migrations;
#[cfg(feature = "redis")]
pub(crate) mod redis_store;
mod store;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use cookie_store::CookieStore;
pub use database::DatabaseStore;
#[cfg(feature = "redis")]
pub use redis_store::{KEY_PREFIX as REDIS_KEY_PREFIX, RedisStore};
pub use store::{BoxFuture, Data, SessionStore, StoreError};

use crate::App;
use crate::settings::Settings;

/// The label of the sessions app.
pub const LABEL: &str = "sessions";

/// The data key that keeps a session's own expiry, set by
/// [`Session::set_expiry`]: seconds of inactivity, 0 for "at browser
/// close". Kept in the data, as Django does, so that it holds on every
/// later request.
const EXPIRY_KEY: &str = "_kiln_expiry";

/// Data keys starting with this are Kiln's own ([`Session::keys`] leaves
/// them out).
const RESERVED_PREFIX: &str = "_kiln_";

/// The sessions app: mount it (at `/`; it has no routes) to turn sessions on.
///
/// ```
/// let project = kiln::Project::new("site").mount("/", kiln::sessions::app());
/// # let _ = project;
/// ```
#[must_use]
pub fn app() -> App {
    App::new(LABEL).migrations(migrations::all())
}

/// Where sessions are kept: the `session_engine` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SessionEngine {
    /// The `kiln_session` table of the default database.
    Database,
    /// Redis at `session_redis_url` (the `redis` cargo feature).
    Redis,
    /// The data itself, signed, in the cookie.
    Cookie,
}

/// The session cookie's `SameSite` attribute: the `session_cookie_samesite`
/// setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSitePolicy {
    /// Sent on top-level navigation from other sites, not on their
    /// sub-requests or cross-site POSTs (the default).
    #[serde(alias = "Lax")]
    Lax,
    /// Never sent with a request from another site.
    #[serde(alias = "Strict")]
    Strict,
    /// Always sent (requires `session_cookie_secure`).
    #[serde(alias = "None")]
    None,
}

/// How long a session lives; see [`Session::set_expiry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Until this long after the last save (the default:
    /// `session_cookie_age`).
    AfterInactivity(Duration),
    /// Until the browser closes: the cookie has no `Max-Age`. The store
    /// still forgets it after `session_cookie_age`.
    AtBrowserClose,
}

/// Checks the session settings; `(key, problem, fix)` for the first bad one.
pub(crate) fn check_settings(
    settings: &Settings,
) -> Result<(), (&'static str, String, &'static str)> {
    let name = &settings.session_cookie_name;
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err((
            "session_cookie_name",
            format!("`{name}` is not a cookie name"),
            "use letters, digits, `_` and `-`, e.g. \"kiln_session\"",
        ));
    }
    if settings.session_cookie_age.0 < Duration::from_secs(1) {
        return Err((
            "session_cookie_age",
            "must be at least one second: every session would expire at once".to_owned(),
            "use a duration such as \"336h\" (two weeks) or a number of seconds",
        ));
    }
    if !settings.session_cookie_path.starts_with('/')
        || settings.session_cookie_path.contains([';', ' '])
    {
        return Err((
            "session_cookie_path",
            format!("`{}` is not a URL path", settings.session_cookie_path),
            "use a path that starts with `/`, e.g. \"/\"",
        ));
    }
    if let Some(domain) = &settings.session_cookie_domain
        && (domain.is_empty() || domain.contains([';', ' ', ',', '/']))
    {
        return Err((
            "session_cookie_domain",
            format!("`{domain}` is not a domain"),
            "use a host name such as \"example.com\", or leave it unset for the host that set the cookie",
        ));
    }
    if settings.session_cookie_samesite == SameSitePolicy::None && !settings.session_cookie_secure {
        return Err((
            "session_cookie_samesite",
            "`none` without session_cookie_secure: browsers refuse such a cookie".to_owned(),
            "set session_cookie_secure = true, or use \"lax\"",
        ));
    }
    if settings.session_engine == SessionEngine::Redis {
        if !cfg!(feature = "redis") {
            return Err((
                "session_engine",
                "`redis` needs Kiln's `redis` cargo feature, which this build lacks".to_owned(),
                "add features = [\"redis\"] to the kiln dependency in Cargo.toml, or use \"database\"",
            ));
        }
        let url = &settings.session_redis_url;
        let known = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !known.iter().any(|scheme| url.starts_with(scheme)) {
            return Err((
                "session_redis_url",
                format!("`{}` is not a Redis URL", crate::db::mask_password(url)),
                "use a URL such as redis://127.0.0.1:6379 or redis://:password@host:6379/0",
            ));
        }
    }
    Ok(())
}

/// Deletes the expired sessions of `site`'s store and returns how many:
/// what the `clearsessions` command runs.
///
/// # Errors
///
/// When the project does not mount the sessions app, or the store fails.
pub async fn clear_expired(site: &crate::Site) -> Result<u64, StoreError> {
    let Some(engine) = site.sessions() else {
        return Err(StoreError::new(
            "none".to_owned(),
            "delete expired sessions",
            "this project does not mount the sessions app",
            "mount it, `.mount(\"/\", kiln::sessions::app())`, or do not run clearsessions",
        ));
    };
    engine.store.delete_expired().await
}

/// Whether `text` can be a session key: 43 characters of base64url, what
/// [`new_key`] makes. Anything else is refused before a store sees it.
pub(crate) fn is_session_key(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new session key: 32 bytes from the operating system's random source
/// (256 bits, so keys cannot be guessed), as 43 characters of base64url.
fn new_key() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| {
        StoreError::new(
            "random source".to_owned(),
            "make a session key",
            error,
            "check the operating system's random number source",
        )
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A store's data text as session data, or `None` (logged) when it does not
/// parse: a corrupt row is an empty session, not an error page.
pub(crate) fn parse_data(text: &str) -> Option<Data> {
    match serde_json::from_str(text) {
        Ok(data) => Some(data),
        Err(error) => {
            tracing::warn!(
                target: "kiln::sessions",
                "ignoring a session whose data does not parse as a JSON object: {error}"
            );
            None
        }
    }
}

/// The site's sessions: the store and the cookie's settings. Built once at
/// boot when the project mounts the sessions app.
pub(crate) struct Engine {
    store: Arc<dyn SessionStore>,
    cookie_name: String,
    age: Duration,
    at_browser_close: bool,
    save_every_request: bool,
    secure: bool,
    http_only: bool,
    same_site: cookie::SameSite,
    path: String,
    domain: Option<String>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store.describe())
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine `settings` choose, on `databases` and signing with `key`.
    pub(crate) fn new(
        settings: &Settings,
        databases: &crate::db::Databases,
    ) -> Result<Self, crate::project::BootError> {
        let store: Arc<dyn SessionStore> = match settings.session_engine {
            SessionEngine::Database => Arc::new(DatabaseStore::new(databases.clone())),
            SessionEngine::Cookie => {
                Arc::new(CookieStore::new(settings, &settings.session_cookie_name))
            }
            #[cfg(feature = "redis")]
            SessionEngine::Redis => Arc::new(
                RedisStore::new(&settings.session_redis_url)
                    .map_err(|error| crate::project::BootError::Usage(error.to_string()))?,
            ),
            #[cfg(not(feature = "redis"))]
            SessionEngine::Redis => {
                return Err(crate::project::BootError::Usage(
                    "session_engine = \"redis\" needs Kiln's `redis` cargo feature\n  fix: add features = [\"redis\"] to the kiln dependency".to_owned(),
                ));
            }
        };
        Ok(Self {
            store,
            cookie_name: settings.session_cookie_name.clone(),
            age: settings.session_cookie_age.0,
            at_browser_close: settings.session_expire_at_browser_close,
            save_every_request: settings.session_save_every_request,
            secure: settings.session_cookie_secure,
            http_only: settings.session_cookie_httponly,
            same_site: match settings.session_cookie_samesite {
                SameSitePolicy::Lax => cookie::SameSite::Lax,
                SameSitePolicy::Strict => cookie::SameSite::Strict,
                SameSitePolicy::None => cookie::SameSite::None,
            },
            path: settings.session_cookie_path.clone(),
            domain: settings.session_cookie_domain.clone(),
        })
    }

    /// The value of the session cookie among the request's cookies, and
    /// whether flash messages wait in the session. No allocation unless
    /// the session cookie is there.
    fn incoming(&self, headers: &HeaderMap) -> (Option<String>, bool) {
        let mut incoming = None;
        let mut messages_waiting = false;
        let pairs = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'));
        for pair in pairs {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if name == self.cookie_name && incoming.is_none() && !value.is_empty() {
                incoming = Some(value.trim_matches('"').to_owned());
            } else if name == crate::messages::COOKIE && value == crate::messages::IN_SESSION {
                messages_waiting = true;
            }
        }
        (incoming, messages_waiting)
    }

    /// The `Set-Cookie` header for `value`, or the cookie's removal.
    fn set_cookie(&self, value: Option<String>, max_age: Option<Duration>) -> Option<HeaderValue> {
        let removal = value.is_none();
        let mut cookie = cookie::Cookie::new(self.cookie_name.clone(), value.unwrap_or_default());
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        if removal {
            cookie.make_removal();
        } else if let Some(age) = max_age {
            let seconds = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            cookie.set_max_age(cookie::time::Duration::seconds(seconds));
        }
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}

/// The session of a request: an extractor, cheap to clone (every clone is
/// the same session).
///
/// Nothing is read from the store until a method needs the data. Changes
/// are saved once, after the handler, by Kiln's stack, which then sets the
/// cookie; a session that was read but not changed writes nothing. A
/// server error (5xx) response saves nothing, as in Django.
///
/// # Errors
///
/// The async methods fail with a 500 when the store cannot be reached, or
/// when a value does not (de)serialize as the type asked for.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

struct Inner {
    engine: Arc<Engine>,
    /// The session cookie's value in the request.
    incoming: Option<String>,
    /// The request says flash messages wait in the session.
    messages_waiting: bool,
    /// A std mutex, not a Tokio one: nothing awaits while it is held (the
    /// store is called with it released).
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    /// The key the session is saved under; `None` until it has one. A
    /// cookie that names no live session never becomes the key, so a
    /// visitor cannot choose their own session id.
    key: Option<String>,
    data: Data,
    /// Changed since loaded: save it.
    modified: bool,
    /// An expiry set by the handler, written into the data on save.
    expiry: Option<Expiry>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: session ids must not reach logs.
        let state = self.state();
        f.debug_struct("Session")
            .field("store", &self.0.engine.store.describe())
            .field("loaded", &state.loaded)
            .field("modified", &state.modified)
            .field("keys", &state.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session of a request with `headers`; reads nothing yet.
    pub(crate) fn new(engine: &Arc<Engine>, headers: &HeaderMap) -> Self {
        let (incoming, messages_waiting) = engine.incoming(headers);
        Self(Arc::new(Inner {
            engine: Arc::clone(engine),
            incoming,
            messages_waiting,
            state: Mutex::new(State::default()),
        }))
    }

    /// The session Kiln's stack put in a request's extensions, if sessions
    /// are on: for other middleware and extractors.
    #[must_use]
    pub fn from_parts(parts: &Parts) -> Option<Self> {
        Self::from_extensions(&parts.extensions)
    }

    /// As [`from_parts`](Self::from_parts), from a whole request.
    #[must_use]
    pub fn from_request<B>(request: &axum::http::Request<B>) -> Option<Self> {
        Self::from_extensions(request.extensions())
    }

    /// As [`from_parts`](Self::from_parts), from request extensions.
    #[must_use]
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        extensions.get::<Self>().cloned()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held leaves data that is still usable.
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the session from the store, once.
    async fn load(&self) -> Result<(), StoreError> {
        if self.state().loaded {
            return Ok(());
        }
        let (key, data) = match &self.0.incoming {
            Some(cookie) => match self.0.engine.store.load(cookie).await? {
                Some(data) => (Some(cookie.clone()), data),
                None => (None, Data::new()),
            },
            None => (None, Data::new()),
        };
        let mut state = self.state();
        if !state.loaded {
            state.loaded = true;
            state.key = key;
            state.data = data;
        }
        Ok(())
    }

    /// The value stored under `key`, if any.
    ///
    /// # Errors
    ///
    /// 500 when the store fails or the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, crate::Error> {
        self.load().await.map_err(crate::Error::internal)?;
        let value = self.state().data.get(key).cloned();
        value
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| {
                crate::Error::internal(std::io::Error::other(format!(
                    "the session value `{key}` is not of the type asked for: {error}"
                )))
            })
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// 500 when the store fails or `value` does not serialize to JSON.
    pub async fn insert(&self, key: &str, value: impl Serialize) -> Result<(), crate::Error> {
        let value = serde_json::to_value(value).map_err(|error| {
            crate::Error::internal(std::io::Error::other(format!(
                "the session value `{key}` does not serialize to JSON: {error}"
            )))
        })?;
        self.load().await.map_err(crate::Error::internal)?;
        let mut state = self.state();
        state.data.insert(key.to_owned(), value);
        state.modified = true;
        Ok(())
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// 500 when the store fails.
    pub async fn remove(&self, key: &str) -> Result<Option<serde_json::Value>, crate::Error> {
        self.load().await.map_err(crate::Error::internal)?;
        let mut state = self.state();
        let removed = state.data.remove(key);
        if removed.is_some() {
            state.modified = true;
        }
        Ok(removed)
    }

    /// The names of the stored values (Kiln's own left out).
    ///
    /// # Errors
    ///
    /// 500 when the store fails.
    pub async fn keys(&self) -> Result<Vec<String>, crate::Error> {
        self.load().await.map_err(crate::Error::internal)?;
        Ok(self
            .state()
            .data
            .keys()
            .filter(|key| !key.starts_with(RESERVED_PREFIX))
            .cloned()
            .collect())
    }

    /// Whether the session holds nothing.
    ///
    /// # Errors
    ///
    /// 500 when the store fails.
    pub async fn is_empty(&self) -> Result<bool, crate::Error> {
        self.load().await.map_err(crate::Error::internal)?;
        Ok(is_empty(&self.state().data))
    }

    /// Gives the session a new key, keeping its data, and deletes the
    /// record under the old one. Call it on login and on any change of
    /// privilege: a key someone learned before (session fixation) then
    /// leads nowhere.
    ///
    /// # Errors
    ///
    /// 500 when the store fails.
    pub async fn cycle_key(&self) -> Result<(), crate::Error> {
        self.load().await.map_err(crate::Error::internal)?;
        let old = {
            let mut state = self.state();
            state.modified = true;
            state.key.take()
        };
        self.delete_record(old).await
    }

    /// Deletes the record under `key` from the store, if there is one.
    async fn delete_record(&self, key: Option<String>) -> Result<(), crate::Error> {
        match key.filter(|key| is_session_key(key)) {
            Some(key) => (self.0.engine.store.delete(&key).await).map_err(crate::Error::internal),
            None => Ok(()),
        }
    }

    /// Deletes the session and its data (logout): the record is gone, the
    /// cookie is expired, and a later write starts a session with a new key.
    ///
    /// # Errors
    ///
    /// 500 when the store fails.
    pub async fn flush(&self) -> Result<(), crate::Error> {
        let old = {
            let mut state = self.state();
            let old = if state.loaded {
                state.key.take()
            } else {
                self.0.incoming.clone()
            };
            *state = State {
                loaded: true,
                modified: true,
                ..State::default()
            };
            old
        };
        self.delete_record(old).await
    }

    /// Sets how long this session lives, from now on and on later requests
    /// (a "remember me" box picks [`Expiry::AtBrowserClose`] when unticked).
    pub fn set_expiry(&self, expiry: Expiry) {
        let mut state = self.state();
        state.expiry = Some(expiry);
        state.modified = true;
    }

    /// A value from the data, if the session is loaded already: for code
    /// that cannot wait (template context processors).
    pub(crate) fn get_loaded(&self, key: &str) -> Option<serde_json::Value> {
        let state = self.state();
        state.loaded.then(|| state.data.get(key).cloned()).flatten()
    }

    /// Sets or (with `None`) removes a value of a session that is loaded
    /// already, without waiting: for response parts, which are not async.
    /// Returns false when the session is not loaded.
    pub(crate) fn set_loaded(&self, key: &str, value: Option<serde_json::Value>) -> bool {
        let mut state = self.state();
        if !state.loaded {
            return false;
        }
        let changed = match value {
            Some(value) => state.data.insert(key.to_owned(), value.clone()) != Some(value),
            None => state.data.remove(key).is_some(),
        };
        state.modified |= changed;
        true
    }

    /// Loads the session now, for code that reads it later without waiting.
    pub(crate) async fn preload(&self) -> Result<(), crate::Error> {
        self.load().await.map_err(crate::Error::internal)
    }

    /// Whether the request says flash messages wait in the session (and
    /// carries a session cookie to find them).
    pub(crate) fn messages_waiting(&self) -> bool {
        self.0.messages_waiting && self.0.incoming.is_some()
    }

    /// Whether the request carried a session cookie.
    pub(crate) fn has_cookie(&self) -> bool {
        self.0.incoming.is_some()
    }

    /// Whether [`commit`](Self::commit) has anything to do; checked by the
    /// stack before it builds the commit's future.
    pub(crate) fn needs_commit(&self) -> bool {
        self.state().modified || (self.0.engine.save_every_request && self.0.incoming.is_some())
    }

    /// Saves the session after the handler and sets or expires the cookie
    /// on `response`.
    pub(crate) async fn commit(&self, response: &mut Response) -> Result<(), StoreError> {
        let engine = &self.0.engine;
        self.load().await?;
        let (key, data, modified, at_browser_close, age) = {
            let mut state = self.state();
            if let Some(expiry) = state.expiry.take() {
                let seconds = match expiry {
                    Expiry::AfterInactivity(age) => age.as_secs().max(1),
                    Expiry::AtBrowserClose => 0,
                };
                state.data.insert(EXPIRY_KEY.to_owned(), seconds.into());
            }
            let (at_browser_close, age) = match state.data.get(EXPIRY_KEY).and_then(|v| v.as_u64())
            {
                Some(0) => (true, engine.age),
                Some(seconds) => (false, Duration::from_secs(seconds)),
                None => (engine.at_browser_close, engine.age),
            };
            if is_empty(&state.data) {
                (
                    state.key.take(),
                    None,
                    state.modified,
                    at_browser_close,
                    age,
                )
            } else {
                if state.key.is_none() {
                    state.key = Some(new_key()?);
                }
                (
                    state.key.clone(),
                    Some(state.data.clone()),
                    state.modified,
                    at_browser_close,
                    age,
                )
            }
        };
        let header = match data {
            // Empty: forget it, and tell the browser to forget its cookie.
            None => {
                if let Some(key) = key {
                    engine.store.delete(&key).await?;
                }
                if !self.has_cookie() {
                    return Ok(());
                }
                engine.set_cookie(None, None)
            }
            Some(data) => {
                if !modified && !engine.save_every_request {
                    return Ok(());
                }
                let key = key.unwrap_or_default();
                let expires =
                    Utc::now() + chrono::TimeDelta::from_std(age).unwrap_or(chrono::TimeDelta::MAX);
                let value = engine.store.save(&key, &data, expires).await?;
                engine.set_cookie(Some(value), (!at_browser_close).then_some(age))
            }
        };
        if let Some(header) = header {
            response.headers_mut().append(header::SET_COOKIE, header);
        }
        Ok(())
    }
}

/// Whether `data` holds nothing but Kiln's expiry.
fn is_empty(data: &Data) -> bool {
    data.keys().all(|key| key == EXPIRY_KEY)
}

/// Rejection of the [`Session`] extractor when the project has no sessions.
fn sessions_off() -> crate::Error {
    crate::Error::internal(std::io::Error::other(
        "this handler takes a Session, but sessions are off\n  fix: mount the sessions app, `.mount(\"/\", kiln::sessions::app())`, and run `migrate`",
    ))
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = crate::Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts).ok_or_else(sessions_off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_are_43_characters_of_base64url_and_differ() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_eq!(a.len(), 43);
        assert!(is_session_key(&a) && is_session_key(&b));
        assert_ne!(a, b);
        assert!(!is_session_key("short"));
        assert!(!is_session_key(&format!("{}'", &a[..42])));
    }

    #[test]
    fn bad_session_settings_name_the_key_and_the_fix() {
        for (text, key) in [
            ("session_cookie_name = \"a b\"", "session_cookie_name"),
            ("session_cookie_age = 0", "session_cookie_age"),
            ("session_cookie_path = \"admin\"", "session_cookie_path"),
            (
                "session_cookie_samesite = \"none\"\nsession_cookie_secure = false",
                "session_cookie_samesite",
            ),
            ("session_engine = \"memcached\"", "session_engine"),
            (
                "session_engine = \"redis\"\nsession_redis_url = \"http://x\"",
                "session_redis_url",
            ),
        ] {
            let error = Settings::from_toml(text).unwrap_err().to_string();
            assert!(
                error.contains(&format!("`{key}`")) && error.contains("fix:"),
                "{text}: {error}"
            );
        }
        let settings = Settings::from_toml("session_cookie_samesite = \"Strict\"").unwrap();
        assert_eq!(settings.session_cookie_samesite, SameSitePolicy::Strict);
    }

    #[test]
    fn the_cookie_is_secure_by_default_in_production_only() {
        assert!(Settings::defaults_for(false).session_cookie_secure);
        assert!(!Settings::defaults_for(true).session_cookie_secure);
    }

    #[test]
    fn signed_values_verify_only_unchanged_and_under_their_name() {
        let settings = Settings::defaults_for(true);
        let store = CookieStore::new(&settings, "s");
        let signed = store.sign("payload");
        assert_eq!(store.verify(&signed), Some("payload"));
        assert_eq!(CookieStore::new(&settings, "t").verify(&signed), None);
        let tampered = signed.replace("payload", "paylоad");
        assert_eq!(store.verify(&tampered), None);
    }
}
