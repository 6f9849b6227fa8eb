//! The request id: one per request, in the `x-request-id` response header,
//! on every log line of the request and on error pages.

use std::fmt;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::RequestContext;

/// A request's id. An incoming `x-request-id` from a proxy is kept when it is
/// a short token; otherwise Kiln makes a new one. It is also an extractor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The header that carries it, in requests and responses.
    pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

    /// A fresh random id.
    #[must_use]
    pub fn new() -> Self {
        // Encoded on the stack: no formatting machinery on the request path.
        let mut buffer = [0u8; uuid::fmt::Simple::LENGTH];
        let id = uuid::Uuid::new_v4().simple().encode_lower(&mut buffer);
        Self(HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("unknown")))
    }

    /// The id given by a trusted proxy if it looks sane, else a new one.
    pub(crate) fn from_headers_or_new(headers: &HeaderMap) -> Self {
        match headers.get(Self::HEADER) {
            Some(value) if is_sane(value.as_bytes()) => Self(value.clone()),
            _ => Self::new(),
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // `is_sane` or the uuid format guarantee ASCII.
        self.0.to_str().unwrap_or("unknown")
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// The id of the request the current task is serving, if any: what Kiln's
    /// log lines carry as `request_id`. Tasks spawned by a view do not
    /// inherit it; pass the id along (it is `Clone`) or scope it with
    /// [`RequestId::scope`].
    #[must_use]
    pub fn current() -> Option<Self> {
        RequestContext::with_current(|context| context.id.clone())
            .or_else(|| SCOPED.try_with(Clone::clone).ok())
    }

    /// Runs `future` (a task a view spawns, say) with `self` as the
    /// [current](RequestId::current) id.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        SCOPED.scope(self, future).await
    }
}

tokio::task_local! {
    /// Ids given to tasks outside a request with [`RequestId::scope`].
    static SCOPED: RequestId;
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Accepts ids of up to 64 characters from `[A-Za-z0-9._-]`, so that a hostile
/// client cannot inject text into logs or pages through it.
fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<RequestContext>();
        Ok(context
            .map(|context| context.id.clone())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_incoming_ids_and_replaces_hostile_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(RequestId::HEADER, HeaderValue::from_static("lb-1234.abc"));
        assert_eq!(
            RequestId::from_headers_or_new(&headers).as_str(),
            "lb-1234.abc"
        );
        headers.insert(RequestId::HEADER, HeaderValue::from_static("<script>"));
        let id = RequestId::from_headers_or_new(&headers);
        assert_eq!(id.as_str().len(), 32);
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
