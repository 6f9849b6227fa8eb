//! [`CookieStore`]: the session's data itself in the cookie, signed with
//! the `secret_key` and stamped with its expiry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{BoxFuture, Data, SessionStore, StoreError};
use crate::security::Signer;
use crate::settings::Settings;

/// Browsers keep cookies up to about 4 KB, name and attributes included.
const MAX_COOKIE_VALUE: usize = 3800;

/// Sessions kept by the browser: the cookie carries the data (base64 of
/// JSON, readable by the client, so never put a secret in it) with its
/// expiry, signed so that a changed byte makes it an empty session.
///
/// Nothing is kept on the server, so there is nothing to delete: a logged
/// out session's old cookie stays valid until it expires, which the
/// database and Redis stores do not allow. Prefer them where that matters.
#[derive(Clone)]
pub struct CookieStore {
    signer: Signer,
    cookie_name: String,
}

impl std::fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieStore")
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// What the signed cookie holds.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// Expiry, in seconds since 1970.
    e: i64,
    /// The data.
    d: Data,
}

impl CookieStore {
    /// A store for the cookie called `cookie_name`, signing with the
    /// `secret_key` (and accepting `secret_key_fallbacks`, so a key
    /// rotation does not log everyone out). The salt holds the cookie's
    /// name: a value signed for another cookie (messages) is refused here.
    #[must_use]
    pub fn new(settings: &Settings, cookie_name: &str) -> Self {
        Self {
            signer: Signer::from_settings(settings, &format!("kiln.sessions.{cookie_name}")),
            cookie_name: cookie_name.to_owned(),
        }
    }

    pub(crate) fn sign(&self, value: &str) -> String {
        self.signer.sign(value)
    }

    pub(crate) fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        self.signer.unsign(signed).ok()
    }
}

impl SessionStore for CookieStore {
    fn describe(&self) -> String {
        "cookie".to_owned()
    }

    fn load<'a>(&'a self, cookie: &'a str) -> BoxFuture<'a, Option<Data>> {
        let payload = self
            .verify(cookie)
            .and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
            .and_then(|json| serde_json::from_slice::<Payload>(&json).ok())
            .filter(|payload| payload.e > Utc::now().timestamp());
        Box::pin(std::future::ready(Ok(payload.map(|payload| payload.d))))
    }

    fn save<'a>(
        &'a self,
        _key: &'a str,
        data: &'a Data,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, String> {
        let failed = |problem: String| {
            StoreError::new(
                self.describe(),
                "save a session",
                problem,
                "keep less in the session (a user id, not a user), or set session_engine = \"database\"",
            )
        };
        let result = serde_json::to_vec(&Payload {
            e: expires.timestamp(),
            d: data.clone(),
        })
        .map_err(|error| failed(error.to_string()))
        .map(|json| self.sign(&URL_SAFE_NO_PAD.encode(json)))
        .and_then(|value| {
            if value.len() > MAX_COOKIE_VALUE {
                Err(failed(format!(
                    "the session is {} bytes as a cookie; browsers keep about {MAX_COOKIE_VALUE}",
                    value.len()
                )))
            } else {
                Ok(value)
            }
        });
        Box::pin(std::future::ready(result))
    }

    fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, ()> {
        // The browser holds the data; expiring its cookie is the deletion.
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete_expired(&self) -> BoxFuture<'_, u64> {
        Box::pin(std::future::ready(Ok(0)))
    }
}
