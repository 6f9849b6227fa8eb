//! Cross-site request forgery protection, Django's design.
//!
//! A random *secret* lives in the `kiln_csrftoken` cookie (`csrf_cookie_name`),
//! created the first time a page asks for a token. Forms carry a *token*
//! made from it: `{{ csrf_input() }}` in a template renders the hidden
//! `csrfmiddlewaretoken` field; JavaScript sends the token in the
//! `X-CSRFToken` header (`csrf_header_name`), from `{{ csrf_token() }}` or
//! the [`CsrfToken`] extractor. The token is the secret XOR a random mask,
//! with the mask in front, so it differs on every render and a compressed
//! page cannot leak it byte by byte (BREACH); every version unmasks to the
//! same secret.
//!
//! Every `POST`, `PUT`, `PATCH` and `DELETE` is checked before its handler
//! runs:
//!
//! 1. an `Origin` header must name the site itself or one of
//!    `csrf_trusted_origins`; an HTTPS request without `Origin` needs a
//!    `Referer` from one of them;
//! 2. the token, from the header or else from the body's
//!    `csrfmiddlewaretoken` field (a URL-encoded form, or the *first* part
//!    of a multipart form, so that uploads are never buffered), must
//!    unmask to the cookie's secret (compared in constant time).
//!
//! A failure is a 403; in debug mode its page says which check failed and
//! how to fix it. A route that must accept cross-site posts (a webhook)
//! opts out with [`Endpoint::csrf_exempt`](crate::urls::Endpoint::csrf_exempt).
//! [`TestClient`](crate::test::TestClient) skips the check, as Django's
//! does, unless [`enforce_csrf_checks`](crate::test::TestClient::enforce_csrf_checks)
//! is called.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::security::CsrfToken;
//!
//! // A page for JavaScript: the token goes in the `X-CSRFToken` header.
//! async fn token(csrf: CsrfToken) -> String {
//!     csrf.to_string()
//! }
//! # let _ = App::new("api").route("/token", "token", get(token));
//! ```

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use subtle::ConstantTimeEq;

use crate::http::RequestContext;
use crate::settings::Settings;
use crate::templates::RequestHead;

/// The form field that carries the token, as in Django.
pub const FORM_FIELD: &str = "csrfmiddlewaretoken";

/// Bytes of secret (and of mask).
const SECRET_LEN: usize = 32;

/// The longest first multipart part read to find the token: its headers
/// and a token fit many times over; a first part longer than this is not
/// a token field, and the upload behind it is never buffered.
const MULTIPART_PREFIX_LIMIT: usize = 8 * 1024;

/// A year, as Django's `CSRF_COOKIE_AGE`.
const COOKIE_MAX_AGE: u64 = 365 * 24 * 60 * 60;

type Secret = [u8; SECRET_LEN];

/// The CSRF settings of a site, read once at boot.
#[derive(Debug)]
pub(crate) struct CsrfConfig {
    cookie_name: String,
    header_name: HeaderName,
    /// The header's name as the settings spell it, for messages.
    header_label: String,
    /// `scheme://host[:port]` origins, lower case.
    trusted: Vec<String>,
    /// `scheme://` and `.domain` of `scheme://*.domain` entries.
    trusted_wildcards: Vec<(String, String)>,
    cookie_secure: bool,
}

impl CsrfConfig {
    pub(crate) fn new(settings: &Settings) -> Self {
        let mut trusted = Vec::new();
        let mut trusted_wildcards = Vec::new();
        for origin in &settings.csrf_trusted_origins {
            let origin = origin.trim_end_matches('/').to_ascii_lowercase();
            match origin.split_once("://*.") {
                Some((scheme, domain)) => {
                    trusted_wildcards.push((format!("{scheme}://"), format!(".{domain}")));
                }
                None => trusted.push(origin),
            }
        }
        Self {
            cookie_name: settings.csrf_cookie_name.clone(),
            // Settings validation has checked the name.
            header_name: HeaderName::from_bytes(settings.csrf_header_name.as_bytes())
                .unwrap_or(HeaderName::from_static("x-csrftoken")),
            header_label: settings.csrf_header_name.clone(),
            trusted,
            trusted_wildcards,
            cookie_secure: settings.csrf_cookie_secure,
        }
    }

    /// The CSRF cookie's name.
    pub(crate) fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The CSRF header's name as the settings spell it.
    pub(crate) fn header_label(&self) -> &str {
        &self.header_label
    }

    /// Whether a WebSocket handshake from a page of `origin` may open a
    /// socket on `host`: the same host and port (whatever the scheme, which
    /// a TLS-terminating proxy may hide), or a trusted origin.
    pub(crate) fn allows_websocket_origin(&self, origin: &str, host: &str) -> bool {
        let authority = origin
            .split_once("://")
            .map_or(origin, |(_, authority)| authority);
        (!host.is_empty() && authority.eq_ignore_ascii_case(host)) || self.trusts(origin)
    }

    fn trusts(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.trusted.contains(&origin)
            || self.trusted_wildcards.iter().any(|(scheme, domain)| {
                origin.strip_prefix(scheme.as_str()).is_some_and(|host| {
                    let host = crate::security::hosts::split_host(host).unwrap_or(host);
                    host.ends_with(domain.as_str()) || host == &domain[1..]
                })
            })
    }
}

/// The CSRF state of one request, in its extensions: the secret from the
/// cookie, and a new one when this request made or rotated it (then the
/// response sets the cookie).
#[derive(Clone, Debug)]
pub(crate) struct CsrfState(Arc<StateInner>);

#[derive(Debug)]
struct StateInner {
    config: Arc<CsrfConfig>,
    /// The request's `Cookie` header, kept (a reference count, not a copy)
    /// so that the secret can be read on first use by code that has no
    /// request at hand: a compiled template's `csrf_input()` reads the state
    /// from the task-local request context.
    cookie_header: Option<HeaderValue>,
    /// The cookie's secret, read on first use.
    cookie: OnceLock<Option<Secret>>,
    /// A secret made during this request; a std Mutex, as nothing awaits
    /// while it is held.
    minted: Mutex<Option<Secret>>,
}

impl CsrfState {
    /// The state of a request whose `Cookie` header is `cookie_header` (see
    /// [`join_cookie_headers`] for a request that splits it); the cookie is
    /// parsed on first use.
    pub(crate) fn new(config: Arc<CsrfConfig>, cookie_header: Option<HeaderValue>) -> Self {
        Self(Arc::new(StateInner {
            config,
            cookie_header,
            cookie: OnceLock::new(),
            minted: Mutex::new(None),
        }))
    }

    /// The secret of the request's CSRF cookie, if it has a well-formed one.
    fn cookie(&self) -> Option<Secret> {
        *self.0.cookie.get_or_init(|| {
            self.0
                .cookie_header
                .as_ref()
                .and_then(|value| secret_in(value, &self.0.config.cookie_name))
        })
    }

    fn minted(&self) -> std::sync::MutexGuard<'_, Option<Secret>> {
        self.0
            .minted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new masked token: from the cookie's secret, or a new secret (and
    /// cookie) when there is none.
    pub(crate) fn token(&self) -> Result<String, std::io::Error> {
        let cookie = self.cookie();
        let mut minted = self.minted();
        let secret = match (*minted, cookie) {
            (Some(secret), _) | (None, Some(secret)) => secret,
            (None, None) => {
                let secret = random()?;
                *minted = Some(secret);
                secret
            }
        };
        drop(minted);
        mask(&secret)
    }

    /// Replaces the secret: tokens rendered before stop working.
    fn rotate(&self) -> Result<(), std::io::Error> {
        *self.minted() = Some(random()?);
        Ok(())
    }

    /// The `Set-Cookie` header for a secret made during the request.
    pub(crate) fn set_cookie(&self) -> Option<HeaderValue> {
        let secret = (*self.minted())?;
        let config = &self.0.config;
        let secure = if config.cookie_secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={}; Max-Age={COOKIE_MAX_AGE}; Path=/; SameSite=Lax{secure}",
            config.cookie_name,
            URL_SAFE_NO_PAD.encode(secret)
        ))
        .ok()
    }
}

/// A request extension that turns the check off: the test client's
/// default. A client cannot set request extensions, so this never comes
/// from the network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SkipCsrfChecks;

/// A masked CSRF token for the current request, for pages that send it
/// from JavaScript (`X-CSRFToken` header). Taking it sets the CSRF cookie
/// when the request had none. Its `Display` is the token.
#[derive(Clone, Debug)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// The token.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token for `request` (the `Parts` extractor or a `Request`).
    ///
    /// # Errors
    ///
    /// A 500 [`kiln::Error`](crate::Error) outside Kiln's middleware stack,
    /// or when the system's random number generator fails.
    pub fn for_request(request: &impl RequestHead) -> Result<Self, crate::Error> {
        request_state(request.view().extensions)?
            .token()
            .map(Self)
            .map_err(crate::Error::internal)
    }
}

impl std::fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = crate::Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::for_request(parts)
    }
}

/// Gives the request a new CSRF secret (and the response a new cookie), as
/// Django's `rotate_token`: call it on login, so a token an attacker planted
/// before the login is worthless after it. Pages rendered later in the same
/// request get tokens for the new secret.
///
/// # Errors
///
/// As [`CsrfToken::for_request`].
pub fn rotate_csrf_token(request: &impl RequestHead) -> Result<(), crate::Error> {
    request_state(request.view().extensions)?
        .rotate()
        .map_err(crate::Error::internal)
}

/// The request's CSRF state, kept in its [`RequestContext`] (one extension
/// for everything Kiln's stack gives a request).
fn request_state(extensions: &axum::http::Extensions) -> Result<&CsrfState, crate::Error> {
    extensions
        .get::<RequestContext>()
        .map(|context| &context.csrf)
        .ok_or_else(|| {
            crate::Error::internal(std::io::Error::other(
                "no CSRF state: the request did not go through Kiln's middleware stack (serve the router built by Project::build)",
            ))
        })
}

/// What templates see of the CSRF state (as the hidden `_kiln_csrf`
/// variable, which `csrf_input()` and `csrf_token()` read): the request's
/// state, so that a token is made only when a template asks for one.
#[derive(Debug)]
pub(crate) struct TemplateCsrf(CsrfState);

impl minijinja::value::Object for TemplateCsrf {}

impl TemplateCsrf {
    /// The name templates' functions look it up by.
    pub(crate) const VARIABLE: &str = "_kiln_csrf";

    /// The value for a page rendered for `view`, or `None` outside Kiln's stack.
    pub(crate) fn for_view(view: crate::templates::RequestView<'_>) -> Option<Self> {
        Some(Self(view.extensions.get::<RequestContext>()?.csrf.clone()))
    }

    /// A new masked token.
    pub(crate) fn token(&self) -> Result<String, std::io::Error> {
        self.0.token()
    }
}

fn random() -> Result<Secret, std::io::Error> {
    let mut bytes = [0; SECRET_LEN];
    getrandom::fill(&mut bytes).map_err(|error| {
        std::io::Error::other(format!(
            "the system random number generator failed: {error}"
        ))
    })?;
    Ok(bytes)
}

/// base64url(mask ‖ secret XOR mask).
fn mask(secret: &Secret) -> Result<String, std::io::Error> {
    let mask = random()?;
    let mut token = [0; 2 * SECRET_LEN];
    token[..SECRET_LEN].copy_from_slice(&mask);
    for (index, byte) in token[SECRET_LEN..].iter_mut().enumerate() {
        *byte = secret[index] ^ mask[index];
    }
    Ok(URL_SAFE_NO_PAD.encode(token))
}

/// The secret inside a token: a masked token, or the bare secret (what the
/// cookie holds, as Django also accepts).
fn unmask(token: &str) -> Option<Secret> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    match bytes.len() {
        SECRET_LEN => bytes.try_into().ok(),
        len if len == 2 * SECRET_LEN => {
            let (mask, masked) = bytes.split_at(SECRET_LEN);
            let mut secret = [0; SECRET_LEN];
            for (index, byte) in secret.iter_mut().enumerate() {
                *byte = masked[index] ^ mask[index];
            }
            Some(secret)
        }
        _ => None,
    }
}

/// The secret in the request's CSRF cookie, when there is a well-formed one.
fn cookie_secret(headers: &HeaderMap, name: &str) -> Option<Secret> {
    secret_of(headers.get_all(header::COOKIE).iter(), name)
}

/// One `Cookie` header from two: HTTP/2 may send each cookie in a header of
/// its own (RFC 9113, section 8.2.3), and they read as one joined by "; ".
pub(crate) fn join_cookie_headers(first: &HeaderValue, next: &HeaderValue) -> HeaderValue {
    let joined = [first.as_bytes(), b"; ", next.as_bytes()].concat();
    // Two valid values joined by "; " are a valid value.
    HeaderValue::from_bytes(&joined).unwrap_or_else(|_| first.clone())
}

/// [`cookie_secret`] for one `Cookie` header.
fn secret_in(header: &HeaderValue, name: &str) -> Option<Secret> {
    secret_of(std::iter::once(header), name)
}

fn secret_of<'a>(headers: impl Iterator<Item = &'a HeaderValue>, name: &str) -> Option<Secret> {
    headers
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| URL_SAFE_NO_PAD.decode(value.trim_matches('"')).ok())
        .and_then(|bytes| bytes.try_into().ok())
}

/// Whether `method` changes state and so needs the check (Django's list of
/// safe methods is GET, HEAD, OPTIONS, TRACE; anything else is checked).
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Why a request failed the check; each says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// The request carries no CSRF cookie.
    NoCookie,
    /// Neither the header nor the form carries a token.
    TokenMissing,
    /// The token does not match the cookie: it was made for another
    /// browser or session, or the cookie changed since the page was shown.
    TokenIncorrect,
    /// `Origin` names a site that is neither this one nor trusted.
    BadOrigin(String),
    /// An HTTPS request without `Origin` and without `Referer`.
    NoReferer,
    /// An HTTPS request whose `Referer` is another site, or not HTTPS.
    BadReferer(String),
}

impl CsrfRejection {
    /// What failed and how to fix it, for the debug page and the logs.
    #[must_use]
    pub fn explain(&self, config_cookie: &str, config_header: &str) -> String {
        match self {
            Self::NoCookie => format!(
                "CSRF cookie not set: the request has no `{config_cookie}` cookie.\n  fix: render the form's page with {{{{ csrf_input() }}}} (or take a CsrfToken), which sets the cookie; check the browser accepts cookies, and that csrf_cookie_secure is off when testing over plain HTTP"
            ),
            Self::TokenMissing => format!(
                "CSRF token missing: no `{config_header}` header and no `{FORM_FIELD}` form field.\n  fix: add {{{{ csrf_input() }}}} inside the <form> (for a multipart form, as its first field), or send the {config_header} header from JavaScript with the value of {{{{ csrf_token() }}}}"
            ),
            Self::TokenIncorrect => format!(
                "CSRF token from another session: the token does not match the `{config_cookie}` cookie.\n  fix: reload the form so its token matches the current cookie (a login rotates it); a token copied from another browser never works"
            ),
            Self::BadOrigin(origin) => format!(
                "Origin checking failed: `{origin}` is neither this site nor in csrf_trusted_origins.\n  fix: if that site is yours, add it: csrf_trusted_origins = [\"{origin}\"]"
            ),
            Self::NoReferer => "Referer checking failed: an HTTPS request with neither Origin nor Referer.\n  fix: do not send `Referrer-Policy: no-referrer` from the form's page (the default `same-origin` is right)".to_owned(),
            Self::BadReferer(referer) => format!(
                "Referer checking failed: `{referer}` is not an HTTPS page of this site or of csrf_trusted_origins.\n  fix: submit the form from a page of this site over HTTPS, or add the other site to csrf_trusted_origins"
            ),
        }
    }
}

/// What the check needs besides the request: the site's settings and
/// whether the request came over HTTPS.
pub(crate) struct Check<'a> {
    pub(crate) config: &'a CsrfConfig,
    pub(crate) https: bool,
}

impl Check<'_> {
    /// The checks that need only the headers: origin, referer, cookie, and
    /// the header token. `Ok(Some(secret))` means the token has to come
    /// from the body and match `secret`.
    pub(crate) fn headers(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<Secret>, CsrfRejection> {
        let host = crate::security::request_host(uri, headers).to_ascii_lowercase();
        let scheme = if self.https { "https" } else { "http" };
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            let own = origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"));
            if !own && !self.config.trusts(&origin) {
                return Err(CsrfRejection::BadOrigin(origin));
            }
        } else if self.https {
            let referer = headers
                .get(header::REFERER)
                .ok_or(CsrfRejection::NoReferer)?;
            let referer = String::from_utf8_lossy(referer.as_bytes()).into_owned();
            let parsed: Option<Uri> = referer.parse().ok();
            let good = parsed.as_ref().is_some_and(|parsed| {
                parsed.scheme_str() == Some("https")
                    && parsed.authority().is_some_and(|authority| {
                        let authority = authority.as_str().to_ascii_lowercase();
                        authority == host || self.config.trusts(&format!("https://{authority}"))
                    })
            });
            if !good {
                return Err(CsrfRejection::BadReferer(referer));
            }
        }
        let secret =
            cookie_secret(headers, &self.config.cookie_name).ok_or(CsrfRejection::NoCookie)?;
        match headers.get(&self.config.header_name) {
            Some(token) => {
                let token = token.to_str().map_err(|_| CsrfRejection::TokenIncorrect)?;
                matches(token, &secret)
                    .then_some(None)
                    .ok_or(CsrfRejection::TokenIncorrect)
            }
            None => Ok(Some(secret)),
        }
    }
}

/// The body check: finds the token in a form body (URL-encoded, read up to
/// `body_limit`; or the first part of a multipart body, read no further)
/// and puts the body back for the handler.
pub(crate) async fn check_body(
    request: Request<Body>,
    secret: Secret,
    body_limit: usize,
) -> Result<Request<Body>, BodyFailure> {
    {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (parts, body) = request.into_parts();
        let (token, body) = match essence.as_str() {
            "application/x-www-form-urlencoded" => {
                let bytes = http_body_util::Limited::new(body, body_limit)
                    .collect()
                    .await
                    .map_err(|_| BodyFailure::TooLarge)?
                    .to_bytes();
                let token = form_urlencoded_field(&bytes);
                (token, Body::from(bytes))
            }
            "multipart/form-data" => match multer::parse_boundary(&content_type) {
                Ok(boundary) => {
                    let (prefix, rest) = read_prefix(body, &boundary)
                        .await
                        .map_err(|_| BodyFailure::Unreadable)?;
                    let token = first_part_token(&prefix, &boundary);
                    (
                        token,
                        Body::new(Prefixed {
                            prefix: Some(prefix),
                            rest,
                        }),
                    )
                }
                Err(_) => (None, body),
            },
            _ => (None, body),
        };
        let token = token.ok_or(BodyFailure::Csrf(CsrfRejection::TokenMissing))?;
        if !matches(&token, &secret) {
            return Err(BodyFailure::Csrf(CsrfRejection::TokenIncorrect));
        }
        Ok(Request::from_parts(parts, body))
    }
}

/// Why the body check failed.
#[derive(Debug)]
pub(crate) enum BodyFailure {
    Csrf(CsrfRejection),
    /// A form body over `request_body_limit`.
    TooLarge,
    /// The connection failed while the body was read.
    Unreadable,
}

/// Whether `token` unmasks to `secret`, compared in constant time.
fn matches(token: &str, secret: &Secret) -> bool {
    unmask(token).is_some_and(|candidate| bool::from(candidate.ct_eq(secret)))
}

fn form_urlencoded_field(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find(|(key, _)| key == FORM_FIELD)
        .map(|(_, value)| value)
}

/// Reads the body until the first multipart part is complete (the second
/// boundary has arrived) or [`MULTIPART_PREFIX_LIMIT`] bytes, whichever is
/// first; the rest stays in the stream.
async fn read_prefix(mut body: Body, boundary: &str) -> Result<(Bytes, Body), axum::Error> {
    let delimiter = format!("\r\n--{boundary}");
    let mut buffer = Vec::new();
    while buffer.len() < MULTIPART_PREFIX_LIMIT && !contains(&buffer, delimiter.as_bytes()) {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    buffer.extend_from_slice(&data);
                }
            }
            None => break,
        }
    }
    Ok((Bytes::from(buffer), body))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The value of the first part, when it is the `csrfmiddlewaretoken` field.
fn first_part_token(prefix: &[u8], boundary: &str) -> Option<String> {
    let opening = format!("--{boundary}\r\n");
    let start = find(prefix, opening.as_bytes())? + opening.len();
    let rest = &prefix[start..];
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&rest[..headers_end]).ok()?;
    let names_token = headers.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-disposition:")
            && line.contains(&format!("name=\"{FORM_FIELD}\""))
            && !line.contains("filename")
    });
    if !names_token {
        return None;
    }
    let value = &rest[headers_end + 4..];
    let end = find(value, format!("\r\n--{boundary}").as_bytes())?;
    std::str::from_utf8(&value[..end]).ok().map(str::to_owned)
}

/// A body that yields `prefix` and then the rest of the original stream:
/// the multipart body after the token's part was read, unbuffered.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        if let Some(prefix) = self.prefix.take().filter(|prefix| !prefix.is_empty()) {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(Bytes::is_empty) && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let extra = self.prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(rest.lower() + extra);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_and_unmask_to_the_secret() {
        let secret = random().unwrap();
        let a = mask(&secret).unwrap();
        let b = mask(&secret).unwrap();
        assert_ne!(a, b);
        assert!(matches(&a, &secret) && matches(&b, &secret));
        assert!(matches(&URL_SAFE_NO_PAD.encode(secret), &secret));
        assert!(!matches(&mask(&random().unwrap()).unwrap(), &secret));
        assert!(!matches("junk", &secret));
    }

    #[test]
    fn the_token_is_found_only_in_the_first_part() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\nTOKEN\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\ndata\r\n--XyZ--\r\n";
        assert_eq!(first_part_token(body, "XyZ").as_deref(), Some("TOKEN"));
        let second = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\nTOKEN\r\n--XyZ--\r\n";
        assert_eq!(first_part_token(second, "XyZ"), None);
    }

    #[test]
    fn a_cookie_split_over_several_headers_is_read_as_one() {
        let secret = random().unwrap();
        let first = HeaderValue::from_static("theme=dark");
        let next = HeaderValue::from_str(&format!(
            "kiln_csrftoken={}",
            URL_SAFE_NO_PAD.encode(secret)
        ))
        .unwrap();
        let joined = join_cookie_headers(&first, &next);
        assert_eq!(secret_in(&joined, "kiln_csrftoken"), Some(secret));
        assert_eq!(secret_in(&joined, "theme"), None, "not a secret");
        assert_eq!(secret_in(&first, "kiln_csrftoken"), None);
    }
}
