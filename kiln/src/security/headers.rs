//! Security headers added to every response, unless the handler set the
//! header itself: `X-Content-Type-Options: nosniff`, `X-Frame-Options`
//! (`DENY` by default: no site may frame the pages, against clickjacking),
//! `Referrer-Policy: same-origin`, `Cross-Origin-Opener-Policy:
//! same-origin`, `Content-Security-Policy` when configured, and
//! `Strict-Transport-Security` on HTTPS requests when `secure_hsts_seconds`
//! is above zero. The request id's `x-request-id` goes out with them.
//!
//! The headers are built at boot into a header map, one for HTTP and one
//! for HTTPS requests. A response's headers start from a clone of that map
//! (hashes and table included), and the handler's headers are moved in
//! after it, so that the handler's value of a header replaces Kiln's.
//! Inserting five headers into the handler's map hashed each name (two of
//! them non-standard, hashed byte by byte) and grew the map past its first
//! six entries. The clone and the handler's re-inserted headers cost about
//! 550 instructions less in the header map's code, less what the clone's
//! allocations take back (callgrind, benchmarks/README.md "Fourth pass").

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::http::RequestId;
use crate::settings::Settings;

/// Entries the clones of the map hold without growing: Kiln's headers plus
/// a handler's usual few (type, length, cache control, cookies, ...).
const RESPONSE_HEADERS: usize = 12;

/// The headers of a site, built from its settings.
#[derive(Clone, Debug)]
pub(crate) struct SecurityHeaders {
    /// `[over HTTP, over HTTPS]`; each map's first entry is `x-request-id`,
    /// its value a placeholder replaced per response.
    maps: [HeaderMap; 2],
}

impl SecurityHeaders {
    /// The headers for `settings`; settings validation has checked that the
    /// values are valid header values, so a bad one is left out rather than
    /// failing here.
    pub(crate) fn new(settings: &Settings) -> Self {
        let mut http = HeaderMap::with_capacity(RESPONSE_HEADERS);
        http.insert(RequestId::HEADER, HeaderValue::from_static("-"));
        http.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        http.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        http.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        if !settings.x_frame_options.is_empty()
            && let Ok(value) = HeaderValue::from_str(&settings.x_frame_options)
        {
            http.insert(header::X_FRAME_OPTIONS, value);
        }
        if !settings.content_security_policy.is_empty()
            && let Ok(value) = HeaderValue::from_str(&settings.content_security_policy)
        {
            http.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        // HSTS only over HTTPS: browsers ignore it over HTTP, and sending it
        // there would say nothing true.
        let mut https = http.clone();
        if settings.secure_hsts_seconds > 0 {
            let mut value = format!("max-age={}", settings.secure_hsts_seconds);
            if settings.secure_hsts_include_subdomains {
                value.push_str("; includeSubDomains");
            }
            if settings.secure_hsts_preload {
                value.push_str("; preload");
            }
            https.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=0")),
            );
        }
        Self {
            maps: [http, https],
        }
    }

    /// Gives `headers` the security headers it does not have and
    /// `x-request-id: request_id` (which replaces a handler's own).
    pub(crate) fn apply(&self, headers: &mut HeaderMap, https: bool, request_id: HeaderValue) {
        let mut merged = self.maps[usize::from(https)].clone();
        // The first entry is `x-request-id`: set without hashing its name.
        if let Some(id) = merged.values_mut().next() {
            *id = request_id;
        }
        // A name comes once, followed by `None` for each further value of it.
        let mut current: Option<HeaderName> = None;
        for (name, value) in std::mem::take(headers) {
            if let Some(name) = name {
                current = (name != RequestId::HEADER).then_some(name);
                if let Some(name) = &current {
                    merged.insert(name, value);
                }
            } else if let Some(name) = &current {
                merged.append(name, value);
            }
        }
        *headers = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Settings {
        Settings::from_toml(toml).unwrap()
    }

    #[test]
    fn adds_kiln_headers_and_keeps_the_handlers_overrides_and_repeated_values() {
        let headers = SecurityHeaders::new(&settings("secure_hsts_seconds = 60"));
        let mut response = HeaderMap::new();
        response.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        response.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        response.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        response.insert(RequestId::HEADER, HeaderValue::from_static("handler-id"));
        headers.apply(&mut response, false, HeaderValue::from_static("kiln-id"));
        assert_eq!(response["content-type"], "text/plain");
        assert_eq!(response["x-frame-options"], "SAMEORIGIN");
        assert_eq!(response["x-content-type-options"], "nosniff");
        assert_eq!(response["referrer-policy"], "same-origin");
        assert_eq!(response["cross-origin-opener-policy"], "same-origin");
        assert_eq!(
            response
                .get_all(header::SET_COOKIE)
                .iter()
                .collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(
            response
                .get_all(RequestId::HEADER)
                .iter()
                .collect::<Vec<_>>(),
            ["kiln-id"]
        );
        assert!(!response.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(response.len(), 8);

        let mut secure = HeaderMap::new();
        headers.apply(&mut secure, true, HeaderValue::from_static("id-2"));
        assert_eq!(secure["strict-transport-security"], "max-age=60");
        assert_eq!(secure["x-frame-options"], "DENY");
        assert_eq!(secure[RequestId::HEADER], "id-2");
    }

    #[test]
    fn empty_settings_leave_their_header_out() {
        let headers = SecurityHeaders::new(&settings("x_frame_options = \"\""));
        let mut response = HeaderMap::new();
        headers.apply(&mut response, true, HeaderValue::from_static("id"));
        assert!(!response.contains_key(header::X_FRAME_OPTIONS));
        assert!(!response.contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(!response.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(response.len(), 4);
    }
}
