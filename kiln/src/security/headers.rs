//! Security headers added to every response, unless the handler set the
//! header itself: `X-Content-Type-Options: nosniff`, `X-Frame-Options`
//! (`DENY` by default: no site may frame the pages, against clickjacking),
//! `Referrer-Policy: same-origin`, `Cross-Origin-Opener-Policy:
//! same-origin`, `Content-Security-Policy` when configured, and
//! `Strict-Transport-Security` on HTTPS requests when `secure_hsts_seconds`
//! is above zero.
//!
//! The values are built once at boot; each response costs a few header
//! lookups and inserts of shared values.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::settings::Settings;

/// The headers of a site, built from its settings.
#[derive(Clone, Debug)]
pub(crate) struct SecurityHeaders {
    always: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// The headers for `settings`; settings validation has checked that the
    /// values are valid header values, so a bad one is left out rather than
    /// failing here.
    pub(crate) fn new(settings: &Settings) -> Self {
        let mut always = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        if !settings.x_frame_options.is_empty()
            && let Ok(value) = HeaderValue::from_str(&settings.x_frame_options)
        {
            always.push((header::X_FRAME_OPTIONS, value));
        }
        if !settings.content_security_policy.is_empty()
            && let Ok(value) = HeaderValue::from_str(&settings.content_security_policy)
        {
            always.push((header::CONTENT_SECURITY_POLICY, value));
        }
        let hsts = (settings.secure_hsts_seconds > 0).then(|| {
            let mut value = format!("max-age={}", settings.secure_hsts_seconds);
            if settings.secure_hsts_include_subdomains {
                value.push_str("; includeSubDomains");
            }
            if settings.secure_hsts_preload {
                value.push_str("; preload");
            }
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=0"))
        });
        Self { always, hsts }
    }

    /// Adds the headers the response does not have yet (HSTS only when the
    /// request came over HTTPS: browsers ignore it over HTTP, and sending it
    /// there would say nothing true).
    pub(crate) fn apply(&self, headers: &mut HeaderMap, https: bool) {
        // `entry` hashes and probes once per header where `contains_key`
        // then `insert` would do it twice: this runs on every response.
        for (name, value) in &self.always {
            headers.entry(name.clone()).or_insert_with(|| value.clone());
        }
        if https && let Some(hsts) = &self.hsts {
            headers
                .entry(header::STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
    }
}
