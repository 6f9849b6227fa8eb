//! File and stream responses.
//!
//! [`FileResponse`] serves a file from disk the way a browser's `<video>`
//! element needs to play and seek it: `Range` requests (206, or 416 for a
//! range that is malformed or outside the file), `ETag` and `Last-Modified`
//! with conditional GET (304), `If-Range`, `HEAD`, and an optional
//! `Content-Disposition`. The body is read in chunks as the client takes
//! them, so memory stays flat whatever the file's size. Static files are
//! served through it too.
//!
//! [`stream`] turns any async stream of byte chunks into a response sent
//! with chunked transfer encoding, for output produced as it goes.
//!
//! The byte-serving core is tower-http's `ServeFile` (ranges, precompressed
//! variants, `Last-Modified`); Kiln adds what it lacks: entity tags,
//! `If-None-Match`, `If-Range` and `Content-Disposition`.
//!
//! # Examples
//!
//! ```no_run
//! use kiln::http::FileResponse;
//! use kiln::prelude::*;
//!
//! async fn download(method: Method, headers: HeaderMap) -> Result<Response, kiln::Error> {
//!     FileResponse::new("media/talk.mp4")
//!         .attachment("talk.mp4")
//!         .serve(&method, &headers)
//!         .await
//! }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStream;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::Error;

/// A file from disk as a response; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FileResponse {
    path: PathBuf,
    disposition: Option<HeaderValue>,
    content_type: Option<String>,
    cache_control: Option<HeaderValue>,
    precompressed: bool,
}

impl FileResponse {
    /// The file at `path`; its content type is guessed from the extension.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            disposition: None,
            content_type: None,
            cache_control: None,
            precompressed: false,
        }
    }

    /// Asks the browser to save the file as `filename` rather than show it
    /// (`Content-Disposition: attachment`). Any name is accepted: quotes,
    /// control characters and non-ASCII are encoded, never passed through.
    #[must_use]
    pub fn attachment(mut self, filename: &str) -> Self {
        self.disposition = Some(content_disposition("attachment", filename));
        self
    }

    /// Shows the file in the browser, under `filename` if the user saves it
    /// (`Content-Disposition: inline`).
    #[must_use]
    pub fn inline(mut self, filename: &str) -> Self {
        self.disposition = Some(content_disposition("inline", filename));
        self
    }

    /// Sets the content type instead of guessing it from the extension.
    #[must_use]
    pub fn content_type(mut self, mime: &str) -> Self {
        self.content_type = Some(mime.to_owned());
        self
    }

    /// Sets `Cache-Control` on successful responses.
    #[must_use]
    pub fn cache_control(mut self, value: &'static str) -> Self {
        self.cache_control = Some(HeaderValue::from_static(value));
        self
    }

    /// Serves `<file>.br` or `<file>.gz` when they exist and the client
    /// accepts that encoding (never for a range request, whose offsets are
    /// those of the file itself).
    #[must_use]
    pub fn precompressed(mut self) -> Self {
        self.precompressed = true;
        self
    }

    /// The response to a request with `method` and `headers`.
    ///
    /// # Errors
    ///
    /// 404 when the file does not exist or is a folder; 500 when it cannot
    /// be read.
    pub async fn serve(self, method: &Method, headers: &HeaderMap) -> Result<Response, Error> {
        let metadata = match tokio::fs::metadata(&self.path).await {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Err(Error::not_found("no such file")),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found("no such file"));
            }
            Err(error) => return Err(unreadable(&self.path, error)),
        };
        let validators = Validators::of(&metadata);
        let etag = validators.etag();
        if (method == Method::GET || method == Method::HEAD)
            && headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|value| none_match_hits(value, &etag))
        {
            return Ok(self.finish(
                (StatusCode::NOT_MODIFIED, Body::empty()).into_response(),
                etag,
            ));
        }
        let request = self.forwarded_request(method, headers, &validators)?;
        let service = match &self.content_type {
            Some(mime) => match mime.parse::<mime::Mime>() {
                Ok(mime) => ServeFile::new_with_mime(&self.path, &mime),
                Err(_) => return Err(Error::internal(format!("`{mime}` is not a content type"))),
            },
            None => ServeFile::new(&self.path),
        };
        let service = if self.precompressed {
            service.precompressed_br().precompressed_gzip()
        } else {
            service
        };
        let response = match service.oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        if response.status() == StatusCode::NOT_FOUND {
            // Gone between the check above and the open.
            return Err(Error::not_found("no such file"));
        }
        Ok(self.finish(response, etag))
    }

    /// The request handed to `ServeFile`: the method and the headers it acts
    /// on, with `Range` dropped when `If-Range` no longer matches and
    /// `If-Modified-Since` dropped when `If-None-Match` decided (RFC 9110
    /// §13.2.2: the entity tag takes precedence over the date).
    fn forwarded_request(
        &self,
        method: &Method,
        headers: &HeaderMap,
        validators: &Validators,
    ) -> Result<Request<Body>, Error> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri("/")
            .body(Body::empty())
            .map_err(Error::internal)?;
        let forwarded = request.headers_mut();
        let range_still_applies = headers
            .get(header::IF_RANGE)
            .is_none_or(|value| validators.if_range_holds(value));
        if range_still_applies && let Some(range) = headers.get(header::RANGE) {
            forwarded.insert(header::RANGE, range.clone());
        }
        if !headers.contains_key(header::IF_NONE_MATCH)
            && let Some(since) = headers.get(header::IF_MODIFIED_SINCE)
        {
            forwarded.insert(header::IF_MODIFIED_SINCE, since.clone());
        }
        if let Some(since) = headers.get(header::IF_UNMODIFIED_SINCE) {
            forwarded.insert(header::IF_UNMODIFIED_SINCE, since.clone());
        }
        if self.precompressed
            && !forwarded.contains_key(header::RANGE)
            && let Some(accepted) = headers.get(header::ACCEPT_ENCODING)
        {
            forwarded.insert(header::ACCEPT_ENCODING, accepted.clone());
        }
        Ok(request)
    }

    fn finish(&self, mut response: Response, etag: HeaderValue) -> Response {
        let status = response.status();
        let headers = response.headers_mut();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            headers.insert(header::ETAG, etag);
            if let Some(cache_control) = &self.cache_control {
                headers.insert(header::CACHE_CONTROL, cache_control.clone());
            }
        }
        if status.is_success()
            && let Some(disposition) = &self.disposition
        {
            headers.insert(header::CONTENT_DISPOSITION, disposition.clone());
        }
        if self.precompressed {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }
}

fn unreadable(path: &Path, error: io::Error) -> Error {
    Error::internal(io::Error::new(
        error.kind(),
        format!("cannot read {}: {error}", path.display()),
    ))
}

/// What identifies one version of a file: its size and modification time.
struct Validators {
    len: u64,
    modified: Option<SystemTime>,
}

impl Validators {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }

    /// A strong entity tag from the size and the modification time in
    /// nanoseconds (as nginx does, with a finer clock): a rewrite of the
    /// file changes it without reading the content.
    fn etag(&self) -> HeaderValue {
        let nanos = self
            .modified
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        let tag = format!("\"{:x}-{nanos:x}\"", self.len);
        HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
    }

    /// Whether an `If-Range` value still names this version: an entity tag
    /// compared strongly, or an HTTP date equal to `Last-Modified`.
    fn if_range_holds(&self, value: &HeaderValue) -> bool {
        let Ok(value) = value.to_str() else {
            return false;
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            return self.etag().to_str().is_ok_and(|etag| etag == value);
        }
        let (Ok(date), Some(modified)) = (httpdate::parse_http_date(value), self.modified) else {
            return false;
        };
        // Last-Modified has whole seconds.
        let whole = |time: SystemTime| time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok();
        whole(date).is_some() && whole(date) == whole(modified)
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2).
pub(crate) fn none_match_hits(value: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(value), Ok(etag)) = (value.to_str(), etag.to_str()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): an ASCII
/// fallback with anything unsafe replaced, and the exact name encoded.
fn content_disposition(kind: &str, filename: &str) -> HeaderValue {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // RFC 8187's attr-char: letters, digits and `!#$&+-.^_`|~` stay as they are.
    const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(filename, ATTR_CHAR);
    let value = format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A response whose body is `stream`, sent as it is produced (chunked
/// transfer encoding), with `content_type`.
///
/// A stream error ends the response early: the client sees a truncated
/// body (HTTP has no way to report an error once the status is sent), and
/// the error is logged.
///
/// # Examples
///
/// ```
/// use futures_util::stream;
/// use kiln::prelude::*;
///
/// async fn numbers() -> Response {
///     let lines = stream::iter((1..=3).map(|n| Ok::<_, std::io::Error>(format!("{n}\n"))));
///     kiln::http::stream("text/plain; charset=utf-8", lines)
/// }
/// ```
pub fn stream<S>(content_type: &'static str, stream: S) -> Response
where
    S: TryStream + Send + 'static,
    S::Ok: Into<Bytes>,
    S::Error: Into<axum::BoxError>,
{
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_escapes_what_would_break_the_header() {
        let value = content_disposition("attachment", "my \"évil\"\r\nname.mp4");
        let value = value.to_str().unwrap_or_default();
        assert_eq!(
            value,
            "attachment; filename=\"my __vil___name.mp4\"; filename*=UTF-8''my%20%22%C3%A9vil%22%0D%0Aname.mp4"
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let etag = HeaderValue::from_static("\"a-1\"");
        for hit in ["\"a-1\"", "W/\"a-1\"", "\"x\", \"a-1\"", "*"] {
            assert!(
                none_match_hits(&HeaderValue::from_static(hit), &etag),
                "{hit}"
            );
        }
        assert!(!none_match_hits(
            &HeaderValue::from_static("\"a-2\""),
            &etag
        ));
    }
}
