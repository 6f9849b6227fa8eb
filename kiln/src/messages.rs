//! Flash messages, as Django's messages framework: a view records "Your
//! vote was counted." and the next page shows it once.
//!
//! [`Messages`] is an extractor and a response part. Messages added in one
//! request travel to the next in a cookie signed with the `secret_key`
//! (HMAC-SHA256, through a [`Signer`](crate::security::Signer), so keys in
//! `secret_key_fallbacks` still verify after a rotation), so a client can
//! neither forge nor alter one; a cookie that fails the check is ignored. Signed is not encrypted: the browser can read
//! the text, so a message must never hold a secret. Returning `Messages` with the response writes
//! the cookie; [`Messages::take`] reads them for display and, returned with
//! that page, clears them.
//!
//! When the project mounts the [sessions app](crate::sessions::app),
//! messages are kept in the session instead (views do not change): they
//! then hold no size limit but the store's, and the browser cannot read
//! them. The `kiln_messages` cookie then only says "messages wait in the
//! session" (its value is `session`), so that the stack loads the session
//! before the view and a template, which renders without waiting, can show
//! them.
//!
//! Templates get them as `messages`: a page rendered with
//! [`render`](crate::templates::render) that loops over `messages` clears
//! them by itself, as Django's templates do.
//!
//! # Examples
//!
//! ```
//! use kiln::messages::Messages;
//! use kiln::prelude::*;
//!
//! async fn vote(mut messages: Messages) -> (Messages, Redirect) {
//!     messages.success("Your vote was counted.");
//!     (messages, Redirect::to("/polls/"))
//! }
//!
//! async fn index(mut messages: Messages) -> (Messages, Html<String>) {
//!     let shown: String = messages
//!         .take()
//!         .iter()
//!         .map(|m| format!("<li class=\"{}\">{}</li>", m.level, kiln::http::escape(&m.text)))
//!         .collect();
//!     (messages, Html(format!("<ul>{shown}</ul>")))
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponseParts, ResponseParts};
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use crate::http::Error;
use crate::project::Site;
use crate::security::Signer;
use crate::sessions::Session;

/// The cookie that carries messages between requests.
pub const COOKIE: &str = "kiln_messages";

/// The session key messages are kept under when sessions are on.
const SESSION_KEY: &str = "_kiln_messages";

/// The value of the `kiln_messages` cookie that says the messages are in
/// the session.
pub(crate) const IN_SESSION: &str = "session";

/// The signer's salt: a value signed for another use is no message.
pub(crate) const SALT: &str = "kiln.messages";

/// Browsers keep cookies up to about 4 KB; older messages give way first.
const MAX_COOKIE_BYTES: usize = 3800;

/// How important a message is; its `Display` is the CSS class Django uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// For developers; kept in debug mode only.
    Debug,
    /// Information.
    Info,
    /// An action succeeded.
    Success,
    /// Something to look at.
    Warning,
    /// An action failed.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its level.
    pub level: Level,
    /// Its text (plain text: escape it when rendering HTML; templates do).
    pub text: String,
}

/// The messages of a request; see the [module docs](self).
#[derive(Clone)]
pub struct Messages {
    queued: Vec<Message>,
    changed: bool,
    signer: Arc<Signer>,
    keep_debug: bool,
    secure: bool,
    /// The session the messages are kept in, when sessions are on.
    session: Option<Session>,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("queued", &self.queued)
            .field("changed", &self.changed)
            .finish_non_exhaustive()
    }
}

impl Messages {
    /// Adds a message at `level`.
    pub fn add(&mut self, level: Level, text: impl Into<String>) {
        if level == Level::Debug && !self.keep_debug {
            return;
        }
        self.queued.push(Message {
            level,
            text: text.into(),
        });
        self.changed = true;
    }

    /// Adds a debug message (kept in debug mode only).
    pub fn debug(&mut self, text: impl Into<String>) {
        self.add(Level::Debug, text);
    }

    /// Adds an information message.
    pub fn info(&mut self, text: impl Into<String>) {
        self.add(Level::Info, text);
    }

    /// Adds a success message.
    pub fn success(&mut self, text: impl Into<String>) {
        self.add(Level::Success, text);
    }

    /// Adds a warning.
    pub fn warning(&mut self, text: impl Into<String>) {
        self.add(Level::Warning, text);
    }

    /// Adds an error message.
    pub fn error(&mut self, text: impl Into<String>) {
        self.add(Level::Error, text);
    }

    /// The messages waiting to be shown, without consuming them.
    #[must_use]
    pub fn peek(&self) -> &[Message] {
        &self.queued
    }

    /// Takes the messages to show them; returned with the response, this
    /// clears them so they are shown once.
    pub fn take(&mut self) -> Vec<Message> {
        if !self.queued.is_empty() {
            self.changed = true;
        }
        std::mem::take(&mut self.queued)
    }

    /// The messages of a request with `headers` and `extensions`, for
    /// `site`, without waiting: from the session if it is loaded already
    /// (the stack loads it before the view when messages wait there),
    /// else from the signed cookie.
    pub(crate) fn from_request(
        site: &Site,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Self {
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let mut messages = Self::from_cookies(site, cookies);
        if let Some(session) = Session::from_extensions(extensions) {
            messages.queued = session
                .get_loaded(SESSION_KEY)
                .and_then(|value| serde_json::from_value(value).ok())
                .unwrap_or_default();
            messages.session = Some(session);
        }
        messages
    }

    /// The `Set-Cookie` header that clears the messages of a request: what
    /// a rendered page that showed them sends.
    pub(crate) fn cleared(mut self) -> Option<HeaderValue> {
        self.take();
        self.set_cookie()
    }

    /// The messages of a request that carries `cookies`, for `site`.
    fn from_cookies<'a>(site: &Site, cookies: impl Iterator<Item = &'a str>) -> Self {
        let settings = site.settings();
        let signer = Arc::clone(site.messages_signer());
        let value = cookies
            .flat_map(|header| Cookie::split_parse_encoded(header.to_owned()).flatten())
            .find(|cookie| cookie.name() == COOKIE)
            .map(|cookie| cookie.value().to_owned());
        // A cookie that fails the signature check, or does not parse, is
        // ignored: messages are a convenience, never worth an error page.
        let queued = value
            .as_deref()
            .and_then(|value| signer.unsign(value).ok())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Self {
            queued,
            changed: false,
            signer,
            keep_debug: settings.debug,
            secure: !settings.debug,
            session: None,
        }
    }

    /// The `Set-Cookie` value that stores what is queued, or deletes the
    /// cookie when nothing is. With sessions on, the messages go into the
    /// session and the cookie only marks that they are there.
    fn set_cookie(&self) -> Option<HeaderValue> {
        if let Some(session) = &self.session {
            let value = (!self.queued.is_empty())
                .then(|| serde_json::to_value(&self.queued).ok())
                .flatten();
            let marker = value.is_some().then(|| Cookie::new(COOKIE, IN_SESSION));
            session.set_loaded(SESSION_KEY, value);
            return self.cookie_header(marker);
        }
        let mut queued = self.queued.as_slice();
        loop {
            if queued.is_empty() {
                return self.cookie_header(None);
            }
            let mut cookie = Cookie::new(
                COOKIE,
                self.signer.sign(&serde_json::to_string(queued).ok()?),
            );
            self.set_attributes(&mut cookie);
            let value = cookie.encoded().to_string();
            if value.len() <= MAX_COOKIE_BYTES {
                return HeaderValue::from_str(&value).ok();
            }
            queued = &queued[1..];
        }
    }

    /// The `Set-Cookie` value of an unsigned `cookie`, or the cookie's
    /// removal for `None`.
    fn cookie_header(&self, cookie: Option<Cookie<'static>>) -> Option<HeaderValue> {
        let mut cookie = cookie.unwrap_or_else(|| {
            let mut removal = Cookie::from(COOKIE);
            removal.make_removal();
            removal
        });
        self.set_attributes(&mut cookie);
        HeaderValue::from_str(&cookie.encoded().to_string()).ok()
    }

    fn set_attributes(&self, cookie: &mut Cookie<'static>) {
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(self.secure);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Messages {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let site = Site::from_request_parts(parts, state).await?;
        if let Some(session) = Session::from_parts(parts) {
            // Loads the session, so that writing them back needs no wait.
            session.preload().await?;
        }
        Ok(Self::from_request(&site, &parts.headers, &parts.extensions))
    }
}

impl IntoResponseParts for Messages {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if self.changed
            && let Some(cookie) = self.set_cookie()
        {
            parts.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok(parts)
    }
}
