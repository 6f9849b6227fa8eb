//! `TestClient`: drive the whole project in-process, as Django's test client does.
//!
//! Requests go through the same router and middleware as in production, with
//! no socket. Cookies are kept across requests; redirects are followed on request.
//!
//! As Django's client, it sends `Host: testserver` (which the client adds
//! to `allowed_hosts`) and skips the CSRF check, so that tests can post
//! forms without tokens; [`TestClient::enforce_csrf_checks`] turns the
//! check on, for tests of the protection itself.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::test::TestClient;
//!
//! async fn hello(Query(q): Query<std::collections::HashMap<String, String>>) -> String {
//!     format!("Hello, {}!", q.get("name").map_or("world", String::as_str))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let client = TestClient::new(Project::new("demo").route("/", "hello", get(hello)));
//! let response = client.get("/?name=Kiln").send().await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.text(), "Hello, Kiln!");
//! # });
//! ```

use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use cookie::{Cookie, CookieJar};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::http::SiteService;
use crate::project::{Project, Site};
use crate::settings::Settings;

/// A site served on a real port by [`TestClient::serve`]; dropping it
/// shuts the server down gracefully, and [`LiveServer::stop`] does and
/// waits until it is done.
#[derive(Debug)]
pub struct LiveServer {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The client's temporary database, kept while this serves it.
    _database_dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl LiveServer {
    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://127.0.0.1:<port>` followed by `path`.
    #[must_use]
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Shuts the server down as SIGTERM does (WebSockets get `1001`) and
    /// returns once it has stopped: its port is free, and every connection
    /// has ended (or `shutdown_timeout` passed). A test restarts a server on
    /// the same port with [`TestClient::serve_at`] and [`Self::addr`].
    ///
    /// # Panics
    ///
    /// When the server's task panicked.
    pub async fn stop(self) {
        let Self {
            _stop: stop, task, ..
        } = self;
        drop(stop);
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("the live server failed: {error}"),
            Err(error) => panic!("the live server's task failed: {error}"),
        }
    }
}

/// Most redirects followed before giving up, as browsers do.
const MAX_REDIRECTS: usize = 10;

/// An in-process client for a project.
///
/// Unless the settings name another database, the client's default database
/// is a fresh SQLite file in a temporary folder, migrated before the first
/// request and deleted with the client, so tests never touch the
/// development database and never see each other's rows.
#[derive(Debug)]
pub struct TestClient {
    site: Site,
    service: SiteService,
    cookies: Mutex<CookieJar>,
    migrations: crate::db::migrations::Graph,
    migrated: tokio::sync::OnceCell<()>,
    enforce_csrf: bool,
    /// Holds the temporary database's folder until the client and its
    /// live servers are dropped.
    database_dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl TestClient {
    /// A client for `project` with its settings as `runserver` loads them
    /// (`kiln.toml`, `KILN_*` variables), except that the mode defaults to
    /// debug, in release builds too, unless the file or `KILN_DEBUG` sets it.
    ///
    /// # Panics
    ///
    /// When the project does not boot (bad settings or routes): the test fails
    /// with the boot error.
    #[must_use]
    pub fn new(project: Project) -> Self {
        match Settings::load_in_mode(project.root_dir(), true) {
            Ok(settings) => Self::with_settings(project, settings),
            Err(error) => panic!("the project's settings do not load: {error}"),
        }
    }

    /// A client for `project` with the given settings.
    ///
    /// # Panics
    ///
    /// When the project does not boot.
    #[must_use]
    pub fn with_settings(project: Project, mut settings: Settings) -> Self {
        // As Django's test runner: the test host is allowed, besides the
        // hosts the settings allow (debug mode's defaults when none).
        if settings.allowed_hosts.is_empty() && settings.debug {
            settings.allowed_hosts = crate::security::hosts::DEBUG_DEFAULTS
                .iter()
                .map(|&host| host.to_owned())
                .collect();
        }
        settings
            .allowed_hosts
            .push(crate::security::hosts::TEST_HOST.to_owned());
        let migrations = match project.migration_graph() {
            Ok(graph) => graph,
            Err(error) => panic!("the project's migrations do not load: {error}"),
        };
        let mut database_dir = None;
        if settings.database_url == crate::settings::DEFAULT_DATABASE_URL {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(error) => panic!("cannot create a folder for the test database: {error}"),
            };
            settings.database_url = format!("sqlite://{}/test.sqlite3", dir.path().display());
            database_dir = Some(std::sync::Arc::new(dir));
        }
        match project.build(settings) {
            Ok((site, service)) => Self {
                site,
                service,
                cookies: Mutex::new(CookieJar::new()),
                migrations,
                migrated: tokio::sync::OnceCell::new(),
                enforce_csrf: false,
                database_dir,
            },
            Err(error) => panic!("the project does not boot: {error}"),
        }
    }

    /// The default database, with every migration applied: for setting up
    /// rows before requests and checking them after.
    ///
    /// # Panics
    ///
    /// When the database cannot be reached or a migration fails.
    pub async fn db(&self) -> crate::db::DatabaseConnection {
        self.migrate().await;
        match self.site.databases().default_db().await {
            Ok(db) => db.clone(),
            Err(error) => panic!("{error}"),
        }
    }

    /// Serves this client's site on a free port of 127.0.0.1, for clients
    /// that need a socket: WebSockets, Server-Sent Events, another process,
    /// a browser (Django's `LiveServerTestCase`). The same site as the
    /// in-process requests: its settings, its (migrated) database, its
    /// channel layer. It serves until the [`LiveServer`] is dropped.
    ///
    /// In debug mode `127.0.0.1` is allowed; production-mode settings need
    /// it in `allowed_hosts`.
    ///
    /// # Panics
    ///
    /// When no port can be bound or a migration fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use kiln::prelude::*;
    /// use kiln::test::TestClient;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let client = TestClient::new(Project::new("demo").route("/", "hello", get(|| async { "hi" })));
    /// let server = client.serve().await;
    /// assert!(server.url("/").starts_with("http://127.0.0.1:"));
    /// let socket = tokio::net::TcpStream::connect(server.addr()).await;
    /// assert!(socket.is_ok());
    /// # });
    /// ```
    pub async fn serve(&self) -> LiveServer {
        self.serve_at(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
    }

    /// Like [`Self::serve`], on `addr`: for a test that restarts a server on
    /// the port of one it [stopped](LiveServer::stop), as a deployment
    /// restarts a process.
    ///
    /// # Panics
    ///
    /// When `addr` cannot be bound or a migration fails.
    pub async fn serve_at(&self, addr: std::net::SocketAddr) -> LiveServer {
        self.migrate().await;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(error) => panic!("cannot bind {addr} for the live server: {error}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("the live server's port has no address: {error}"),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::serve(
            listener,
            self.site.clone(),
            self.service.clone(),
            async move {
                // Dropping the sender ends the wait as sending would.
                let _ = stopped.await;
            },
        ));
        LiveServer {
            addr,
            _stop: stop,
            task,
            _database_dir: self.database_dir.clone(),
        }
    }

    /// Applies every migration once, before the first request.
    async fn migrate(&self) {
        let result = self
            .migrated
            .get_or_try_init(|| async {
                if self.migrations.apps().next().is_none() {
                    return Ok(());
                }
                let databases = self.site.databases();
                let config = databases
                    .config(crate::db::DEFAULT_DATABASE)
                    .ok_or_else(|| "no default database".to_owned())?;
                // Boxed: the migration future is deep, and a test's own
                // future, which holds this one, would exceed the compiler's
                // layout recursion limit.
                Box::pin(crate::db::commands::migrate_to_latest(
                    config,
                    &self.migrations,
                    databases.router(),
                    self.site.models(),
                    |_| {},
                ))
                .await
                .map_err(|error| error.to_string())
            })
            .await;
        if let Err(error) = result {
            panic!("migrating the test database failed: {error}");
        }
    }

    /// Checks CSRF tokens on this client's unsafe requests, as a browser's
    /// would be: for tests of the protection. By default the client skips
    /// the check, as Django's does.
    #[must_use]
    pub fn enforce_csrf_checks(mut self) -> Self {
        self.enforce_csrf = true;
        self
    }

    /// The built site (settings, routes).
    #[must_use]
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Builds a URL from a route name, as `kiln::urls::reverse`.
    ///
    /// # Panics
    ///
    /// When the route cannot be reversed.
    #[must_use]
    pub fn reverse(&self, name: &str, params: impl crate::urls::UrlParams) -> String {
        match self.site.urls().reverse(name, params) {
            Ok(url) => url,
            Err(error) => panic!("{error}"),
        }
    }

    /// A request with any method.
    pub fn request(&self, method: Method, uri: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method,
            uri: uri.to_owned(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            follow_redirects: false,
            remote_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
        }
    }

    /// A GET request.
    pub fn get(&self, uri: &str) -> TestRequest<'_> {
        self.request(Method::GET, uri)
    }

    /// A POST request.
    pub fn post(&self, uri: &str) -> TestRequest<'_> {
        self.request(Method::POST, uri)
    }

    /// A PUT request.
    pub fn put(&self, uri: &str) -> TestRequest<'_> {
        self.request(Method::PUT, uri)
    }

    /// A PATCH request.
    pub fn patch(&self, uri: &str) -> TestRequest<'_> {
        self.request(Method::PATCH, uri)
    }

    /// A DELETE request.
    pub fn delete(&self, uri: &str) -> TestRequest<'_> {
        self.request(Method::DELETE, uri)
    }

    /// The value of a cookie the client holds.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar().get(name).map(|c| c.value().to_owned())
    }

    /// Sets a cookie sent with later requests.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar()
            .add(Cookie::new(name.to_owned(), value.to_owned()));
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, CookieJar> {
        // A test that panicked while holding the lock leaves a jar that is still usable.
        self.cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn dispatch(
        &self,
        method: Method,
        uri: &str,
        headers: &HeaderMap,
        body: Vec<u8>,
        remote_addr: std::net::SocketAddr,
    ) -> TestResponse {
        self.migrate().await;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .extension(axum::extract::ConnectInfo(remote_addr));
        if !self.enforce_csrf {
            request = request.extension(crate::security::csrf::SkipCsrfChecks);
        }
        if !headers.contains_key(header::HOST) {
            request = request.header(header::HOST, crate::security::hosts::TEST_HOST);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let cookie_header = {
            let jar = self.jar();
            jar.iter()
                .map(|c| format!("{}={}", c.name(), c.value()))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookie_header.is_empty() && !headers.contains_key(header::COOKIE) {
            request = request.header(header::COOKIE, cookie_header);
        }
        let request = match request.body(Body::from(body)) {
            Ok(request) => request,
            Err(error) => panic!("invalid test request {uri}: {error}"),
        };
        let Ok(response) = self.service.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(error) => panic!("reading the response body failed: {error}"),
        };
        for value in parts.headers.get_all(header::SET_COOKIE) {
            if let Some(cookie) = value
                .to_str()
                .ok()
                .and_then(|v| Cookie::parse(v.to_owned()).ok())
            {
                let expired = cookie
                    .max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
                if expired {
                    self.jar().remove(Cookie::from(cookie.name().to_owned()));
                } else {
                    self.jar().add(cookie);
                }
            }
        }
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A request being built; finish it with [`send`](TestRequest::send).
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
    follow_redirects: bool,
    remote_addr: std::net::SocketAddr,
}

impl TestRequest<'_> {
    /// The client address the request comes from (`127.0.0.1` by default),
    /// as the server records it (`ConnectInfo`): for per-IP rate limits.
    pub fn remote_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.remote_addr = addr;
        self
    }

    /// Adds a header.
    ///
    /// # Panics
    ///
    /// When the name or value is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let value =
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header value {value:?}: {e}"));
        self.headers.append(name, value);
        self
    }

    /// A URL-encoded form body, as a browser submits it.
    ///
    /// # Panics
    ///
    /// When `form` cannot be URL-encoded.
    pub fn form(mut self, form: &impl Serialize) -> Self {
        self.body = serde_urlencoded::to_string(form)
            .unwrap_or_else(|e| panic!("form body: {e}"))
            .into_bytes();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// A JSON body.
    ///
    /// # Panics
    ///
    /// When `value` cannot be serialized.
    pub fn json(mut self, value: &impl Serialize) -> Self {
        self.body = serde_json::to_vec(value).unwrap_or_else(|e| panic!("json body: {e}"));
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Follows redirects (up to ten), as a browser would; `303` and, for POST,
    /// `301`/`302` become GETs.
    pub fn follow_redirects(mut self) -> Self {
        self.follow_redirects = true;
        self
    }

    /// Sends the request through the project's full middleware stack.
    pub async fn send(self) -> TestResponse {
        let mut method = self.method;
        let mut uri = self.uri;
        let mut headers = self.headers;
        let mut body = self.body;
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .client
                .dispatch(
                    method.clone(),
                    &uri,
                    &headers,
                    body.clone(),
                    self.remote_addr,
                )
                .await;
            let location = response.header(header::LOCATION.as_str());
            match location {
                Some(location) if self.follow_redirects && response.status.is_redirection() => {
                    let keeps_method = matches!(response.status.as_u16(), 307 | 308)
                        || (method != Method::POST && response.status != StatusCode::SEE_OTHER);
                    if !keeps_method {
                        method = Method::GET;
                        body.clear();
                        headers.remove(header::CONTENT_TYPE);
                    }
                    uri = location.to_owned();
                }
                _ => return response,
            }
        }
        panic!("more than {MAX_REDIRECTS} redirects, last to {uri}");
    }
}

/// A response as the test sees it.
#[derive(Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestResponse {
    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header's value as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy UTF-8).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not valid JSON for `T`; the message shows the body.
    #[must_use]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not the expected JSON ({e}): {}", self.text()))
    }
}
