//! Kiln's security middleware, on in every project: Django's protections
//! with the same defaults.
//!
//! - [`hosts`]: `Host` header validation (`allowed_hosts`), 400 otherwise;
//! - [`csrf`]: cross-site request forgery protection for `POST`, `PUT`,
//!   `PATCH` and `DELETE`, and the `csrf_input()` template function;
//! - [`headers`]: `X-Content-Type-Options`, `X-Frame-Options`,
//!   `Referrer-Policy`, `Cross-Origin-Opener-Policy`, HSTS and a
//!   configurable `Content-Security-Policy`;
//! - HTTPS detection behind a proxy (`secure_proxy_ssl_header`) and the
//!   redirect to HTTPS (`secure_ssl_redirect`);
//! - [`signing`]: signed values with key rotation (`secret_key_fallbacks`);
//! - [`ratelimit`]: a rate-limit layer for any route and a [`Throttle`]
//!   for login attempts.
//!
//! The first three run inside Kiln's core service (see
//! [`http`](crate::http)), before the handler; their settings are read
//! once at boot. `docs/topics/security.md` explains each protection, how
//! to tune it, and a deployment checklist.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub mod csrf;
pub(crate) mod headers;
pub mod hosts;
pub mod ratelimit;
pub mod signing;

pub use csrf::{CsrfRejection, CsrfToken, rotate_csrf_token};
pub use ratelimit::{RateLimit, RetryAfter, Throttle};
pub use signing::{Signer, SigningError};

use crate::settings::{Settings, SettingsError};

/// The site's security policy, built once at boot from its settings.
#[derive(Debug)]
pub(crate) struct Policy {
    hosts: hosts::AllowedHosts,
    headers: headers::SecurityHeaders,
    ssl_header: Option<(HeaderName, String)>,
    ssl_redirect: bool,
    pub(crate) csrf: Arc<csrf::CsrfConfig>,
    debug: bool,
}

/// What the policy decided about a request before its handler runs.
pub(crate) enum Verdict {
    /// Serve it; `https` says whether it came over HTTPS.
    Serve { https: bool },
    /// Answer with this response instead (400, 403, the HTTPS redirect).
    Refuse(Response),
}

impl Policy {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            hosts: hosts::AllowedHosts::new(&settings.allowed_hosts, settings.debug),
            headers: headers::SecurityHeaders::new(settings),
            ssl_header: settings
                .secure_proxy_ssl_header
                .as_deref()
                .and_then(parse_ssl_header),
            ssl_redirect: settings.secure_ssl_redirect,
            csrf: Arc::new(csrf::CsrfConfig::new(settings)),
            debug: settings.debug,
        }
    }

    /// Whether the request came over HTTPS: as Kiln serves plain HTTP, only
    /// when a trusted proxy says so in `secure_proxy_ssl_header`.
    fn is_https(&self, headers: &HeaderMap) -> bool {
        self.ssl_header.as_ref().is_some_and(|(name, expected)| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| {
                    // A proxy chain may list several values; the first is the client's.
                    value
                        .split(',')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case(expected)
                })
        })
    }

    /// The host check and the HTTPS redirect, which need only the head.
    /// `host` and `upgrade` (whether there is an `Upgrade` header) come
    /// from the caller's one walk over the request's headers.
    pub(crate) fn admit(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        host: Option<&HeaderValue>,
        upgrade: bool,
    ) -> Verdict {
        if let Err(problem) = hosts::check(uri, host, &self.hosts) {
            return Verdict::Refuse(self.bad_host(&problem));
        }
        let https = self.is_https(headers);
        // Browsers send a WebSocket handshake to any site with that site's
        // cookies, and the same-origin policy does not apply to it: without
        // this check any page could act as the logged-in user over a
        // socket (cross-site WebSocket hijacking). Non-browser clients send
        // no `Origin` and carry no ambient cookies of a victim.
        if upgrade && let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self
                .csrf
                .allows_websocket_origin(&origin, request_host(uri, headers))
            {
                return Verdict::Refuse(self.cross_site_websocket(&origin));
            }
        }
        if self.ssl_redirect && !https {
            let host = request_host(uri, headers);
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            if let Ok(location) = HeaderValue::from_str(&format!("https://{host}{path}")) {
                return Verdict::Refuse(
                    (
                        StatusCode::MOVED_PERMANENTLY,
                        [(header::LOCATION, location)],
                    )
                        .into_response(),
                );
            }
        }
        Verdict::Serve { https }
    }

    fn bad_host(&self, problem: &hosts::HostProblem) -> Response {
        let message = if self.debug {
            match problem {
                hosts::HostProblem::Missing => "the request has no Host header.\n  fix: send a Host header (every HTTP/1.1 client does)".to_owned(),
                hosts::HostProblem::Invalid(host) => format!("invalid Host header `{host}`: not a host name or address with an optional port"),
                hosts::HostProblem::NotAllowed(host) => format!(
                    "invalid Host header `{host}`: it is not in allowed_hosts.\n  fix: if the site serves it, add it: allowed_hosts = [\"{host}\"] in kiln.toml or KILN_ALLOWED_HOSTS='[\"{host}\"]'"
                ),
            }
        } else {
            "Bad Request (invalid Host header)".to_owned()
        };
        crate::Error::bad_request(message).into_response()
    }

    /// The 403 for a WebSocket handshake from another site's page.
    fn cross_site_websocket(&self, origin: &str) -> Response {
        tracing::warn!(%origin, "WebSocket handshake from another origin refused");
        let message = if self.debug {
            format!(
                "WebSocket handshake refused: its Origin `{origin}` is neither this site nor in csrf_trusted_origins.\n  fix: if that site is yours, add it: csrf_trusted_origins = [\"{origin}\"]"
            )
        } else {
            "WebSocket handshake refused: cross-origin.".to_owned()
        };
        crate::Error::forbidden(message).into_response()
    }

    /// The 403 for a failed CSRF check: why and how to fix it in debug
    /// mode, Django's plain sentence in production.
    pub(crate) fn csrf_failure(&self, rejection: &CsrfRejection) -> Response {
        let explained = rejection.explain(self.csrf.cookie_name(), self.csrf.header_label());
        tracing::warn!(reason = %explained.lines().next().unwrap_or(""), "CSRF check failed");
        let message = if self.debug {
            format!("CSRF verification failed. {explained}")
        } else {
            "CSRF verification failed. Request aborted.".to_owned()
        };
        crate::Error::forbidden(message).into_response()
    }

    /// Adds the security headers the response lacks, and `x-request-id`.
    pub(crate) fn finish(&self, response: &mut Response, https: bool, request_id: HeaderValue) {
        self.headers
            .apply(response.headers_mut(), https, request_id);
    }
}

/// The host a request was sent to: the URI's authority (HTTP/2), else the
/// `Host` header; empty when neither is there.
pub(crate) fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    uri.authority()
        .map(|authority| authority.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
}

/// Whether requests with `method` are CSRF-checked.
pub(crate) fn checks_csrf(method: &Method) -> bool {
    csrf::is_unsafe(method)
}

/// `"X-Forwarded-Proto: https"` as a header name and the value it must have.
fn parse_ssl_header(text: &str) -> Option<(HeaderName, String)> {
    let (name, value) = text.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| (name, value.to_owned()))
}

/// Checks the security settings' syntax at load time: `(key, problem, fix)`.
pub(crate) fn validate_settings(
    settings: &Settings,
) -> Result<(), (&'static str, String, &'static str)> {
    if let Some(entry) = settings
        .allowed_hosts
        .iter()
        .find(|entry| !hosts::valid_entry(entry))
    {
        return Err((
            "allowed_hosts",
            format!("`{entry}` is not a host name"),
            "list host names without scheme or path: \"www.example.com\", \".example.com\" (and subdomains), \"*\" (any)",
        ));
    }
    if let Some(origin) = settings.csrf_trusted_origins.iter().find(|origin| {
        !(origin.starts_with("https://") || origin.starts_with("http://"))
            || origin
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .contains('/')
    }) {
        return Err((
            "csrf_trusted_origins",
            format!("`{origin}` is not an origin (scheme and host)"),
            "use origins such as \"https://app.example.com\" or \"https://*.example.com\"",
        ));
    }
    if let Some(text) = &settings.secure_proxy_ssl_header
        && parse_ssl_header(text).is_none()
    {
        return Err((
            "secure_proxy_ssl_header",
            format!("`{text}` is not `Header-Name: value`"),
            "use e.g. \"X-Forwarded-Proto: https\", the header your proxy sets on HTTPS requests (and strips from clients)",
        ));
    }
    if settings.secure_ssl_redirect && settings.secure_proxy_ssl_header.is_none() {
        return Err((
            "secure_ssl_redirect",
            "is on, but without secure_proxy_ssl_header no request counts as HTTPS (Kiln serves plain HTTP), so every request would be redirected, forever".to_owned(),
            "set secure_proxy_ssl_header to the header your TLS proxy sets, e.g. \"X-Forwarded-Proto: https\"",
        ));
    }
    if !["", "DENY", "SAMEORIGIN"].contains(&settings.x_frame_options.as_str()) {
        return Err((
            "x_frame_options",
            format!(
                "`{}` is not DENY, SAMEORIGIN or empty",
                settings.x_frame_options
            ),
            "use \"DENY\" (the default), \"SAMEORIGIN\", or \"\" to send none",
        ));
    }
    if HeaderValue::from_str(&settings.content_security_policy).is_err() {
        return Err((
            "content_security_policy",
            "contains characters a header cannot hold (a line break?)".to_owned(),
            "write the policy on one line, directives separated by `;`",
        ));
    }
    if HeaderName::from_bytes(settings.csrf_header_name.as_bytes()).is_err() {
        return Err((
            "csrf_header_name",
            format!("`{}` is not a header name", settings.csrf_header_name),
            "use a name such as \"X-CSRFToken\"",
        ));
    }
    let cookie_ok = !settings.csrf_cookie_name.is_empty()
        && settings
            .csrf_cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !cookie_ok {
        return Err((
            "csrf_cookie_name",
            format!("`{}` is not a cookie name", settings.csrf_cookie_name),
            "use letters, digits, `_` and `-`, e.g. \"kiln_csrftoken\"",
        ));
    }
    Ok(())
}

/// The check made when the site boots rather than when settings load:
/// production needs `allowed_hosts`. It runs at boot so that the test
/// client can add its own host first.
pub(crate) fn boot_check(settings: &Settings) -> Result<(), SettingsError> {
    if !settings.debug && settings.allowed_hosts.is_empty() {
        return Err(SettingsError::NoAllowedHosts);
    }
    Ok(())
}
