//! `kiln::Error`: the one error type handlers return.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error a handler returns: a status code, an optional message safe to
/// show to the client, and an optional source error for the logs and the
/// debug page.
///
/// Any error converts into it with `?` and becomes a 500 whose details are
/// only shown in debug mode. Use the constructors for client errors:
///
/// ```
/// use kiln::prelude::*;
///
/// async fn detail(Path(id): Path<u32>) -> Result<String, kiln::Error> {
///     if id > 100 {
///         return Err(kiln::Error::not_found(format!("no question {id}")));
///     }
///     let n: u32 = "12".parse()?; // a parse error would become a 500
///     Ok(format!("question {id} of {n}"))
/// }
/// ```
pub struct Error {
    status: StatusCode,
    public: Option<Cow<'static, str>>,
    source: Option<BoxError>,
}

impl Error {
    /// An error with `status` and a message the client may see.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            public: Some(message.into()),
            source: None,
        }
    }

    /// 404 Not Found, with a message the client may see.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400 Bad Request, with a message the client may see.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403 Forbidden, with a message the client may see.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 500 Internal Server Error caused by `source`; its details are never shown in production.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            public: None,
            source: Some(source.into()),
        }
    }

    /// Attaches the underlying cause (logged, and shown on the debug page).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client may see, if any.
    #[must_use]
    pub fn public_message(&self) -> Option<&str> {
        self.public.as_deref()
    }

    /// The error and its causes, outermost first.
    #[must_use]
    pub fn chain(&self) -> Vec<String> {
        let mut chain = Vec::new();
        if let Some(public) = &self.public {
            chain.push(public.to_string());
        }
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(error) = next {
            chain.push(error.to_string());
            next = error.source();
        }
        chain
    }
}

impl Error {
    /// The first template error among the causes.
    fn template_error(&self) -> Option<&crate::templates::TemplateError> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(error) = next {
            if let Some(template) = error.downcast_ref::<crate::templates::TemplateError>() {
                return Some(template);
            }
            next = error.source();
        }
        None
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain = self.chain();
        if chain.is_empty() {
            write!(f, "{}", self.status)
        } else {
            f.write_str(&chain.join(": "))
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.status)
            .field("chain", &self.chain())
            .finish()
    }
}

/// Like anyhow, `kiln::Error` does not implement `std::error::Error` itself,
/// which is what lets every error convert into it with `?`.
impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::internal(error)
    }
}

/// What an error response carries to the error-page layer, which knows the
/// request, the settings and the request id and renders the page from it.
#[derive(Clone, Debug)]
pub(crate) struct ErrorReport {
    /// Message the client may see.
    pub(crate) public: Option<String>,
    /// The error chain, for logs and debug pages.
    pub(crate) chain: Vec<String>,
    /// Whether the report comes from a panic.
    pub(crate) panic: bool,
    /// The template error among the causes, for the debug page's snippet.
    pub(crate) template: Option<Arc<crate::templates::TemplateError>>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let report = ErrorReport {
            public: self.public.as_ref().map(ToString::to_string),
            chain: self.chain(),
            panic: false,
            template: self.template_error().map(|error| Arc::new(error.clone())),
        };
        // A plain body in case the response never meets Kiln's error-page layer
        // (a handler used in a bare axum router): the status and the public message only.
        let body = match &report.public {
            Some(message) => format!("{}\n{message}\n", self.status),
            None => format!("{}\n", self.status),
        };
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(Arc::new(report));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn question_mark_converts_any_error_to_500_with_chain() {
        fn fails() -> Result<(), Error> {
            Err(Outer(std::io::Error::other("disk on fire")))?;
            Ok(())
        }
        let error = fails().unwrap_err();
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.public_message(), None);
        assert_eq!(error.chain(), vec!["outer", "disk on fire"]);
    }

    #[test]
    fn plain_response_never_shows_internal_details() {
        let response = Error::internal(std::io::Error::other("secret path /etc/x")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = response.extensions().get::<Arc<ErrorReport>>().unwrap();
        assert_eq!(report.chain, vec!["secret path /etc/x"]);
        assert!(report.public.is_none());
    }
}
