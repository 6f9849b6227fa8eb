//! Kiln's middleware stack around the project's router, outermost first:
//!
//! 1. compression (gzip, brotli, zstd), only for requests that accept it,
//! 2. [`CoreService`]: the path guard, request id, the host check, the
//!    HTTPS redirect and the CSRF check (see [`crate::security`]), the route
//!    table for `reverse()`, the session (when the project mounts the
//!    sessions app), panic catching (500), the request timeout (408), error
//!    pages, the security headers and the access log,
//! 3. the request body limit (413, for `Json`, `Form`, `Bytes` extractors),
//! 4. the project's own layers, then each app's, then the handler.
//!
//! The stack wraps the router once, as a [`SiteService`], instead of through
//! `Router::layer`, which wraps every route separately and boxes each
//! layer's response on every request. The core concerns are one hand-written
//! service rather than a chain of generic layers because each layer costs a
//! clone, a boxed future and a boxed body per request, and because the error
//! pages need to see the request, the response and the error report at once.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::Either;
use tower::{Layer, Service};
use tower_http::compression::predicate::{And, DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{Compression, CompressionLayer};

use super::RequestContext;
use super::error::ErrorReport;
use super::pages::{ErrorPage, wants_json};
use super::request_id::RequestId;
use crate::project::Site;
use crate::security::csrf::{BodyFailure, CsrfState, SkipCsrfChecks};
use crate::security::{Policy, Verdict};

/// The body limit axum's extractors apply when none is set.
const AXUM_DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A whole site as one tower service: Kiln's stack around the project's
/// router. [`Project::build`](crate::Project::build) makes it; the server and
/// the test client run it. It is an ordinary `tower::Service`, so it can also
/// be nested in another axum app with `Router::fallback_service`.
#[derive(Clone)]
pub struct SiteService(Arc<Stack>);

/// Shared by every clone of a [`SiteService`]: the server clones it per
/// request, so a clone is one reference count.
struct Stack {
    core: CoreService,
    compressed: Option<Compression<CoreService, WorthCompressing>>,
}

/// tower-http's default choice (not tiny, not images, not gRPC or event
/// streams), and neither audio, video nor archives: they are compressed
/// already, and compressing a file response would drop its
/// `Accept-Ranges`, so a `<video>` could no longer seek.
type WorthCompressing = And<
    And<And<And<DefaultPredicate, NotForContentType>, NotForContentType>, NotForContentType>,
    NotForContentType,
>;

fn worth_compressing() -> WorthCompressing {
    DefaultPredicate::new()
        .and(NotForContentType::const_new("video/"))
        .and(NotForContentType::const_new("audio/"))
        .and(NotForContentType::const_new("application/zip"))
        .and(NotForContentType::const_new("application/gzip"))
}

impl SiteService {
    pub(crate) fn new(router: Router, site: &Site) -> Self {
        let core = CoreService {
            // `with_state` turns every route into its final service once,
            // instead of on every request (what `axum::serve` does too).
            router: router.fallback(fallback).with_state(()),
            site: site.clone(),
            security: Arc::new(Policy::new(site.settings())),
        };
        let compressed = site.settings().compression.then(|| {
            CompressionLayer::new()
                .compress_when(worth_compressing())
                .layer(core.clone())
        });
        Self(Arc::new(Stack { core, compressed }))
    }
}

impl std::fmt::Debug for SiteService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteService")
            .field("site", &self.0.core.site.name())
            .field("compression", &self.0.compressed.is_some())
            .finish_non_exhaustive()
    }
}

impl Service<Request> for SiteService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both paths end in `CoreService`, which is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.handle(request)
    }
}

impl SiteService {
    /// Serves one request; what `call` does, without needing `&mut self`.
    pub(crate) fn handle(&self, request: Request) -> BoxFuture {
        let future = self.serve(request);
        Box::pin(future.map(Ok))
    }

    /// Serves one request without boxing the core future: the server's
    /// connections hold it in place (hyper keeps one slot per connection for
    /// the request in flight), which saves an allocation and a copy per
    /// request.
    pub(crate) fn serve(&self, request: Request) -> impl Future<Output = Response> + Send + use<> {
        match &self.0.compressed {
            // Without Accept-Encoding there is nothing to negotiate: skip the
            // compression layer and the boxing of its body.
            Some(compressed) if request.headers().contains_key(header::ACCEPT_ENCODING) => {
                let future = compressed.clone().call(request);
                Either::Left(future.map(|response| {
                    let Ok(response) = response;
                    response.map(Body::new)
                }))
            }
            _ => Either::Right(self.0.core.clone().respond(request)),
        }
    }
}

/// No route matched: redirect to the path with a slash when that one exists
/// (Django's `APPEND_SLASH`), else 404.
async fn fallback(site: Site, request: Request) -> Response {
    let path = request.uri().path();
    let is_read = matches!(request.method().as_str(), "GET" | "HEAD");
    if is_read && !path.ends_with('/') {
        let with_slash = format!("{path}/");
        if site.urls().resolve(&with_slash).is_some() {
            let location = match request.uri().query() {
                Some(query) => format!("{with_slash}?{query}"),
                None => with_slash,
            };
            if let Ok(location) = HeaderValue::from_str(&location) {
                return (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, location)],
                )
                    .into_response();
            }
        }
    }
    not_found_response()
}

/// An empty 404 that the core layer turns into the right page.
pub(crate) fn not_found_response() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(panic payload is not a string)".to_owned());
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(Arc::new(ErrorReport {
        public: None,
        chain: vec![format!("handler panicked: {message}")],
        panic: true,
        template: None,
    }));
    response
}

/// Refuses paths no handler should see: `..` segments (raw or percent-encoded)
/// and percent-encoded bytes that are not UTF-8. The fast path is one scan
/// of the path for `.` and `%`.
fn suspicious_path(path: &str) -> Option<&'static str> {
    if !path.bytes().any(|b| b == b'%' || b == b'.') {
        return None;
    }
    let decoded = match percent_encoding::percent_decode_str(path).decode_utf8() {
        Ok(decoded) => decoded,
        Err(_) => return Some("the request path is not valid UTF-8"),
    };
    if decoded.split(['/', '\\']).any(|segment| segment == "..") {
        return Some("the request path contains a `..` segment");
    }
    None
}

/// Kiln's core concerns in one service; see the module docs.
#[derive(Clone)]
pub(crate) struct CoreService {
    router: Router,
    site: Site,
    /// The security settings, read once at boot.
    security: Arc<Policy>,
}

impl Service<Request> for CoreService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // An axum `Router` is always ready; each call runs on its own clone.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.handle(request)
    }
}

impl CoreService {
    fn handle(&self, request: Request) -> BoxFuture {
        let future = self.clone().respond(request);
        Box::pin(future.map(Ok))
    }

    /// Serves one request. The work that needs the request happens before
    /// the returned future exists, so that the future does not carry the
    /// request (240 bytes) through every await: the future is moved a few
    /// times between here and hyper's slot for it, and an `async fn` keeps
    /// its arguments for its whole life (680 bytes instead of 1,680 with
    /// rustc 1.95, the error page's state boxed too).
    fn respond(self, mut request: Request) -> impl Future<Output = Response> + Send + use<> {
        let started = Instant::now();
        let Self {
            router,
            site,
            security,
        } = self;
        let settings = site.settings();
        let timeout = settings.request_timeout.0;
        let body_limit = settings.request_body_limit.as_usize();
        let headers = settings.debug.then(|| Box::new(request.headers().clone()));
        // A handle only: the store is read when something uses the session.
        let session = site
            .sessions()
            .map(|engine| crate::sessions::Session::new(engine, request.headers()));
        // The headers Kiln reads on every request, found in one pass over
        // the request's few headers rather than by hashed lookups (x-request-id
        // is not a standard header, so its lookup hashes the name byte by byte).
        let mut incoming_id = None;
        let mut accept = None;
        let mut host = None;
        let mut upgrade = false;
        let mut cookie = None;
        for (name, value) in request.headers() {
            if *name == header::HOST {
                host.get_or_insert(value);
            } else if *name == header::ACCEPT {
                accept.get_or_insert(value);
            } else if *name == header::UPGRADE {
                upgrade = true;
            } else if *name == header::COOKIE {
                // Kept (a reference count) for the CSRF secret, read on first use.
                cookie = Some(match cookie {
                    None => value.clone(),
                    Some(first) => crate::security::csrf::join_cookie_headers(&first, value),
                });
            } else if *name == RequestId::HEADER {
                incoming_id.get_or_insert(value);
            }
        }
        let context = RequestContext {
            id: RequestId::from_header_or_new(incoming_id),
            site,
            csrf: CsrfState::new(Arc::clone(&security.csrf), cookie),
        };
        // Only an error page reads it: kept (a reference count), parsed only then.
        let accept = accept.cloned();
        let method = request.method().clone();
        let uri = request.uri().clone();
        // The user is loaded before the handler (templates read it without
        // waiting), and only for requests with a session cookie.
        let user_slot = session
            .as_ref()
            .filter(|session| crate::auth::login::wants_user(&context.site, session))
            .map(|_| crate::auth::login::UserSlot::default());
        let mut https = false;
        // A refusal is boxed: it is rare, and a response held inline would
        // add 120 bytes to every request's future.
        let handler = match suspicious_path(uri.path()) {
            Some(problem) => Err(Box::new(crate::Error::bad_request(problem).into_response())),
            None => match security.admit(&uri, request.headers(), host, upgrade) {
                Verdict::Refuse(response) => Err(Box::new(response)),
                Verdict::Serve { https: secure } => {
                    https = secure;
                    request.extensions_mut().insert(context.clone());
                    if let Some(session) = &session {
                        request.extensions_mut().insert(session.clone());
                    }
                    if let Some(slot) = &user_slot {
                        request.extensions_mut().insert(slot.clone());
                    }
                    // Reads skip everything below: two comparisons.
                    let checked = crate::security::checks_csrf(&method)
                        && request.extensions().get::<SkipCsrfChecks>().is_none()
                        && context.site.urls().wants_csrf_check(&method, uri.path());
                    if checked {
                        Ok(csrf_checked(&security, https, body_limit, router, request))
                    } else {
                        Ok(route(router, body_limit, request))
                    }
                }
            },
        };
        async move {
            // Flash messages waiting in the session are read by templates,
            // which render without waiting: such a session is loaded first.
            let preloaded = match &session {
                Some(session) if handler.is_ok() && session.messages_waiting() => {
                    Box::pin(session.preload()).await
                }
                _ => Ok(()),
            };
            let preloaded = match (preloaded, &session, &user_slot) {
                (Ok(()), Some(session), Some(slot)) if handler.is_ok() => {
                    Box::pin(crate::auth::login::load_user(&context.site, session, slot)).await
                }
                (preloaded, ..) => preloaded,
            };
            // Settled before the handler is awaited: a match on the pair
            // would keep the pair's storage (176 bytes) in the future
            // across that await.
            let handler = match (handler, preloaded) {
                (Ok(handler), Ok(())) => Ok(handler),
                (Err(refused), _) => Err(*refused),
                (Ok(_), Err(error)) => Err(error.into_response()),
            };
            let (mut response, context) = match handler {
                Err(response) => (response, context),
                Ok(handler) => {
                    // A panic while polling the handler is caught here (the
                    // server goes on serving, the client gets a 500), and the
                    // view runs inside the request's context: `reverse()` and
                    // its log lines find the site and the request id there.
                    let guarded = AssertUnwindSafe(within(timeout, handler)).catch_unwind();
                    let mut scoped = std::pin::pin!(context.scope(guarded));
                    let response = match scoped.as_mut().await {
                        Ok(Some(Ok(response))) => response,
                        Ok(Some(Err(infallible))) => match infallible {},
                        Ok(None) => StatusCode::REQUEST_TIMEOUT.into_response(),
                        Err(panic) => panic_response(panic),
                    };
                    match scoped.as_mut().take_value() {
                        Some(context) => (response, context),
                        // The scope gives its value back once the future is done.
                        None => unreachable!("task-local scope lost its value"),
                    }
                }
            };
            // Saved after the handler, unless it failed (as Django does); a
            // store that fails turns the whole response into a 500.
            if let Some(session) = session
                && !response.status().is_server_error()
                && session.needs_commit()
                && let Err(error) = Box::pin(session.commit(&mut response)).await
            {
                response = crate::Error::internal(error).into_response();
            }
            let RequestContext { site, id, csrf } = context;
            let status = response.status();
            if status.is_client_error() || status.is_server_error() {
                let request = FailedRequest {
                    id: &id,
                    method: &method,
                    uri: &uri,
                    headers: headers.as_deref(),
                    json: wants_json(accept.as_ref()),
                };
                // Boxed: rare, and its state would otherwise enlarge every
                // request's future.
                response = Box::pin(error_page(response, request, &site)).await;
            }
            if let Some(cookie) = csrf.set_cookie() {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            security.finish(&mut response, https, id.header_value());
            if site.settings().access_log {
                crate::logging::access(&method, uri.path(), status, started.elapsed(), &id);
            }
            response
        }
    }
}

/// Calls the router. Boxed once here: the guards of `respond` wrap it by
/// value, and moving a pointer is cheaper than moving the routed request
/// with it. An axum `Router` is always ready, so it is called without
/// `oneshot`. Its body extractors apply 2 MiB when no limit is set; the
/// layer (a boxed request extension) is only needed for another size.
fn route(mut router: Router, body_limit: usize, request: Request) -> BoxFuture {
    if body_limit == AXUM_DEFAULT_BODY_LIMIT {
        Box::pin(router.call(request))
    } else {
        Box::pin(
            DefaultBodyLimit::max(body_limit)
                .layer(router)
                .call(request),
        )
    }
}

/// The CSRF check of an unsafe request: the header checks now; when the
/// token must come from the body, a future that reads it (bounded) before
/// the handler runs. A refused request's future answers with the 403 (or
/// 413) at once.
fn csrf_checked(
    security: &Arc<Policy>,
    https: bool,
    body_limit: usize,
    router: Router,
    request: Request,
) -> BoxFuture {
    let check = crate::security::csrf::Check {
        config: &security.csrf,
        https,
    };
    match check.headers(request.uri(), request.headers()) {
        Err(rejection) => {
            let refused = security.csrf_failure(&rejection);
            Box::pin(async move { Ok(refused) })
        }
        Ok(None) => route(router, body_limit, request),
        Ok(Some(secret)) => {
            let security = Arc::clone(security);
            Box::pin(async move {
                match crate::security::csrf::check_body(request, secret, body_limit).await {
                    Ok(request) => route(router, body_limit, request).await,
                    Err(BodyFailure::Csrf(rejection)) => Ok(security.csrf_failure(&rejection)),
                    Err(BodyFailure::TooLarge) => Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
                    Err(BodyFailure::Unreadable) => Ok(StatusCode::BAD_REQUEST.into_response()),
                }
            })
        }
    }
}

/// Awaits `handler` for at most `limit`; `None` when it took longer.
///
/// Most handlers answer on their first poll; the timer (a clock read and a
/// timer registration) is set up only for those that wait.
async fn within(limit: Duration, mut handler: BoxFuture) -> Option<Result<Response, Infallible>> {
    // An `if let`, not a `match` with a `Pending` arm that awaits: the
    // first poll's result (a response's size) would stay in the future.
    if let Poll::Ready(output) =
        std::future::poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await
    {
        return Some(output);
    }
    // Boxed: a timer is only needed by a handler that waits, and held
    // inline it would enlarge every request's future.
    Box::pin(tokio::time::timeout(limit, handler)).await.ok()
}

/// What an error page says about the request that failed.
struct FailedRequest<'a> {
    id: &'a RequestId,
    method: &'a axum::http::Method,
    uri: &'a axum::http::Uri,
    headers: Option<&'a axum::http::HeaderMap>,
    json: bool,
}

/// The largest plain-text error body (an extractor's rejection) that is
/// re-rendered as an error page; anything bigger is the handler's own page.
const MAX_REJECTION_TEXT: u64 = 4096;

/// Renders an error response as Kiln's error page (debug, production or
/// JSON), logging server errors. Three kinds of error response are rendered:
/// a `kiln::Error` (it carries an [`ErrorReport`]), an empty one (a 404 from
/// routing, a 408 from the timeout layer), and an extractor's short plain-text
/// rejection (a 422 from `Json`, a 400 from `Path`), whose text becomes the
/// public message. Any other error response is the handler's own page and
/// passes through. Headers the handler set (`WWW-Authenticate`,
/// `Retry-After`, `Set-Cookie`) are kept.
async fn error_page(response: Response, request: FailedRequest<'_>, site: &Site) -> Response {
    let FailedRequest {
        id: request_id,
        method,
        uri,
        headers,
        json,
    } = request;
    let status = response.status();
    let report = response.extensions().get::<Arc<ErrorReport>>().cloned();
    let body_size = response.body().size_hint().exact();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    let (mut parts, body) = response.into_parts();
    let rejection = if report.is_none() && body_size != Some(0) {
        let short_text = status.is_client_error()
            && is_text
            && body_size.is_some_and(|n| n <= MAX_REJECTION_TEXT);
        if !short_text {
            return Response::from_parts(parts, body);
        }
        match axum::body::to_bytes(body, MAX_REJECTION_TEXT as usize).await {
            Ok(text) => Some(String::from_utf8_lossy(&text).trim().to_owned()),
            Err(_) => None,
        }
    } else {
        None
    };
    let report = report.as_deref();
    if status.is_server_error() {
        let chain = report.map(|r| r.chain.join(": ")).unwrap_or_default();
        tracing::error!(
            request_id = %request_id,
            method = %method,
            path = uri.path(),
            status = status.as_u16(),
            error = %chain,
            panic = report.is_some_and(|r| r.panic),
            "request failed"
        );
    }
    let mut page = ErrorPage {
        status,
        request_id: request_id.as_str(),
        method,
        uri,
        headers,
        public: report
            .and_then(|r| r.public.as_deref())
            .or(rejection.as_deref()),
        chain: report.map(|r| r.chain.as_slice()).unwrap_or_default(),
        panic: report.is_some_and(|r| r.panic),
        template: report.and_then(|r| r.template.as_deref()),
        debug: site.settings().debug,
        urls: site.urls(),
    }
    .render(json);
    // The page's own headers describe its body; every other header the
    // handler set still applies.
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
    ] {
        parts.headers.remove(name);
    }
    parts.headers.extend(page.headers_mut().drain());
    *page.headers_mut() = parts.headers;
    page
}

#[cfg(test)]
mod tests {
    use super::suspicious_path;

    #[test]
    fn refuses_dot_dot_segments_and_bad_utf8_but_not_dots_in_names() {
        assert!(suspicious_path("/static/app.css").is_none());
        assert!(suspicious_path("/a/..b/c...").is_none());
        assert!(suspicious_path("/caf%C3%A9").is_none());
        assert!(suspicious_path("/../etc/passwd").is_some());
        assert!(suspicious_path("/a/%2e%2e/b").is_some());
        assert!(suspicious_path("/a/..%2fetc").is_some());
        assert!(suspicious_path("/a/..%5cwin").is_some());
        assert!(suspicious_path("/%FF").is_some());
    }

    /// The server moves each request's future into hyper's slot for its
    /// connection, so every byte of it is copied on every request. What
    /// made it grow before: a response or a timer held inline for a rare
    /// path, and a `match` whose scrutinee outlived an await.
    #[test]
    fn a_requests_future_stays_small() {
        let project =
            crate::Project::new("demo").route("/", "index", axum::routing::get(|| async { "hi" }));
        let (_site, service) = project
            .build(crate::Settings::from_toml("").unwrap())
            .unwrap();
        let request = axum::http::Request::new(axum::body::Body::empty());
        let size = std::mem::size_of_val(&service.serve(request));
        // 792 bytes in a debug build with rustc 1.95, 1,200 before the
        // three changes above.
        assert!(size <= 896, "a request's future takes {size} bytes");
    }
}
