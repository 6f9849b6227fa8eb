//! Kiln's own static files, compiled into the framework: `kiln/kiln.js`,
//! the JavaScript client of the real-time protocol.
//!
//! They come after every folder (a project's `static/kiln/kiln.js` wins),
//! are copied by `collectstatic` like an app's files (so production serves
//! them from `static_root` under hashed names), and are served from memory
//! when no folder has them: in debug, and in production before
//! `collectstatic` has run, so `static("kiln/kiln.js")` always answers.
//! They are embedded rather than read from the crate's folder because a
//! deployed binary has no source tree beside it.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// One built-in file.
#[derive(Debug)]
pub(crate) struct Builtin {
    /// Its name under `static_url`.
    pub(crate) name: &'static str,
    /// Its content.
    pub(crate) content: &'static [u8],
    /// Its entity tag, computed on first use.
    etag: OnceLock<HeaderValue>,
}

/// Every built-in file.
pub(crate) static BUILTINS: [Builtin; 1] = [Builtin {
    name: "kiln/kiln.js",
    content: include_bytes!("../../static/kiln/kiln.js"),
    etag: OnceLock::new(),
}];

/// The built-in file named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.name == name)
}

impl Builtin {
    /// A strong entity tag from the content (it changes only with Kiln's
    /// version), computed once per file.
    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.content);
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
    }

    /// The file as the answer to a GET or HEAD with `headers`: 304 when
    /// `If-None-Match` names it. A `Range` is answered with the whole file,
    /// which RFC 9110 allows; these files are small.
    pub(crate) fn response(&self, method: &Method, headers: &HeaderMap) -> Response {
        let etag = self.etag().clone();
        let mut response = if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|value| crate::http::none_match_hits(value, &etag))
        {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(Bytes::from_static(self.content))
            };
            let mime = mime_guess::from_path(self.name).first_or_octet_stream();
            let mut response = body.into_response();
            if let Ok(value) = HeaderValue::from_str(mime.essence_str()) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(self.content.len()),
            );
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        // Revalidated on every use, as unhashed files are: the ETag makes
        // that a 304 until Kiln is upgraded.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
