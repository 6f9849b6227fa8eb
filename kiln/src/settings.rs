//! Typed project settings: built-in defaults < `kiln.toml` < `KILN_*` environment variables.
//!
//! Settings are read once at boot and checked there: a bad value stops the
//! process with a message that names the key, where the value came from and
//! how to fix it, instead of failing on the first request.
//!
//! # Examples
//!
//! ```
//! use kiln::settings::Settings;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("kiln.toml"), "port = 9000\n").unwrap();
//! let settings = Settings::load(dir.path()).unwrap();
//! assert_eq!(settings.port, 9000);
//! ```
//!
//! Every key can be overridden by an environment variable named `KILN_` plus
//! the key in upper case (`KILN_PORT=8080`, `KILN_DEBUG=false`). The file is
//! `kiln.toml` in the project folder, or the path in `KILN_CONFIG`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod units;

pub use units::{ByteSize, Seconds};

/// The environment variable that points at a settings file other than `<project>/kiln.toml`.
pub const CONFIG_ENV: &str = "KILN_CONFIG";
/// The prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "KILN_";

/// The key debug mode uses when none is set; production refuses to start without a real one.
const DEVELOPMENT_KEY: &str = "kiln-insecure-development-key-never-use-in-production";

/// The embedded default: a SQLite file in the project folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://db.sqlite3";

/// Minimum length of a production `secret_key`.
const MIN_SECRET_KEY_LEN: usize = 32;

/// The smallest `realtime_read_buffer`: below it a frame header and a short
/// message would no longer arrive in one read.
const MIN_READ_BUFFER: ByteSize = ByteSize(256);

/// Every setting of a Kiln project, with its type and default.
///
/// Defaults depend on the mode: debug builds (`cargo run`) default to debug
/// mode, release builds to production mode. `debug = false` or `true` in
/// `kiln.toml` or `KILN_DEBUG` picks the mode explicitly.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Settings {
    /// Debug mode: detailed error pages, human-readable logs, a development
    /// secret key when none is set. Never enable it in production.
    pub debug: bool,
    /// Key for signing cookies and tokens. Required in production, 32+ characters.
    pub secret_key: Option<Secret>,
    /// Former secret keys, for rotation: values they signed still verify,
    /// but nothing new is signed with them. Remove an entry once what it
    /// signed has expired.
    pub secret_key_fallbacks: Vec<Secret>,
    /// Host names the site serves (`www.example.com`, `.example.com` for a
    /// domain and its subdomains, `*` for any); other `Host` headers get 400.
    /// Empty in debug mode means `localhost`, `127.0.0.1` and `[::1]`;
    /// production refuses to start with it empty.
    pub allowed_hosts: Vec<String>,
    /// The cookie that holds the CSRF secret.
    pub csrf_cookie_name: String,
    /// The request header JavaScript sends the CSRF token in.
    pub csrf_header_name: String,
    /// Origins besides the site's own that may send unsafe requests
    /// (`https://app.example.com`, `https://*.example.com`).
    pub csrf_trusted_origins: Vec<String>,
    /// Send the CSRF cookie over HTTPS only (default: on in production).
    pub csrf_cookie_secure: bool,
    /// The header and value a trusted proxy sets on HTTPS requests
    /// (`"X-Forwarded-Proto: https"`); unset, every request counts as HTTP.
    pub secure_proxy_ssl_header: Option<String>,
    /// Redirect plain-HTTP requests to HTTPS (301).
    pub secure_ssl_redirect: bool,
    /// `X-Frame-Options` sent with every response: `DENY`, `SAMEORIGIN`, or
    /// empty for none.
    pub x_frame_options: String,
    /// `Strict-Transport-Security` max-age sent on HTTPS responses; 0 sends none.
    pub secure_hsts_seconds: u64,
    /// Add `includeSubDomains` to `Strict-Transport-Security`.
    pub secure_hsts_include_subdomains: bool,
    /// Add `preload` to `Strict-Transport-Security`.
    pub secure_hsts_preload: bool,
    /// `Content-Security-Policy` sent with every response; empty sends none.
    pub content_security_policy: String,
    /// Address `runserver` listens on.
    pub host: String,
    /// Port `runserver` listens on; `0` picks a free port.
    pub port: u16,
    /// Log level or filter directive (`info`, `debug`, `kiln=debug,info`). `RUST_LOG` overrides it.
    pub log_level: String,
    /// Log output: `auto` (compact in debug, JSON in production), `pretty`, `compact` or `json`.
    pub log_format: LogFormat,
    /// Log one line per request (method, path, status, latency, request id).
    pub access_log: bool,
    /// Largest request body accepted by body extractors (`Json`, `Form`, `Bytes`); larger gets 413.
    pub request_body_limit: ByteSize,
    /// Longest time a request may take before it is answered with 408.
    pub request_timeout: Seconds,
    /// Longest time a client may take to send request headers (slowloris protection),
    /// and to send its first request on a new connection.
    pub header_read_timeout: Seconds,
    /// How long, after a shutdown signal, the server goes on accepting while
    /// `/readyz` answers 503, so load balancers stop sending traffic first.
    pub shutdown_drain: Seconds,
    /// How long in-flight requests may run on shutdown before connections are cut.
    pub shutdown_timeout: Seconds,
    /// Compress responses (gzip, brotli, zstd) when the client accepts it.
    pub compression: bool,
    /// Most connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The default database: `sqlite://db.sqlite3` (a file in the project
    /// folder, created on first use), `postgres://user:password@host/name` or
    /// `mysql://user:password@host/name`. `DATABASE_URL` is read when
    /// `KILN_DATABASE_URL` is not set.
    pub database_url: String,
    /// Most connections in each database's pool.
    pub database_max_connections: u32,
    /// Connections each pool keeps open when idle.
    pub database_min_connections: u32,
    /// Longest wait for a new database connection; longer is an error.
    pub database_connect_timeout: Seconds,
    /// Longest wait for a free connection from the pool under load.
    pub database_acquire_timeout: Seconds,
    /// Apply pending migrations when `runserver` starts (default: on in
    /// debug mode, off in production, where `migrate` is a deploy step).
    pub migrate_on_start: bool,
    /// The URL prefix of static files (`/static/`), or a full URL
    /// (`https://cdn.example.com/static/`) when another server serves them,
    /// in which case Kiln serves none.
    pub static_url: String,
    /// The folder `collectstatic` copies static files into, and production
    /// serves them from; relative to the project folder.
    pub static_root: PathBuf,
    /// The folder uploaded files are saved in by the default storage
    /// (`FileSystemStorage::media`), relative to the project folder.
    pub media_root: PathBuf,
    /// The URL prefix uploaded files are served under (`/media/`), or a full
    /// URL when another server serves them, in which case Kiln serves none.
    pub media_url: String,
    /// Largest file accepted in one upload; larger gets 413.
    pub upload_max_file_size: ByteSize,
    /// Most files accepted in one upload request; more gets 413.
    pub upload_max_files: usize,
    /// Where uploads are streamed while a request is read (default: the
    /// system's temporary folder). On the same file system as `media_root`,
    /// saving an upload is a rename instead of a copy.
    pub upload_temp_dir: Option<PathBuf>,
    /// More databases by name (`[databases.replica] url = "..."`), for
    /// routing reads to a replica or keeping data apart.
    pub databases: BTreeMap<String, NamedDatabase>,
    /// Read templates from their folders on disk even when the binary embeds
    /// them (release builds do): for a deploy that edits templates in place.
    /// Debug builds always read from disk. In debug mode, a template read
    /// from disk is reloaded when its file changes.
    pub templates_from_disk: bool,
    /// Where [`Cache`](crate::cache::Cache) keeps values: `memory` (this
    /// process, the default), `redis://host:port/db` (the `redis` cargo
    /// feature) or `memcached://host:port` (the `memcached` feature).
    pub cache: String,
    /// How long a cached value lives when `set` is given no time to live.
    pub cache_timeout: Seconds,
    /// Put before every cache key (`{prefix}:{version}:{key}`), so that
    /// sites sharing a Redis or Memcached keep apart; `clear` removes
    /// this prefix's keys only. Printable ASCII without `:` or spaces.
    pub cache_key_prefix: String,
    /// Most values the in-process cache holds; past it, the least
    /// useful are evicted.
    pub cache_max_entries: u64,
    /// Where sessions are kept: `database` (the default database's
    /// `kiln_session` table), `redis` (needs the `redis` cargo feature) or
    /// `cookie` (the data itself, signed, in the cookie). Used when the
    /// project mounts [`sessions::app()`](crate::sessions::app).
    pub session_engine: crate::sessions::SessionEngine,
    /// The Redis server of `session_engine = "redis"`.
    pub session_redis_url: String,
    /// The name of the session cookie.
    pub session_cookie_name: String,
    /// How long a session lives after it was last saved (two weeks).
    pub session_cookie_age: Seconds,
    /// End sessions when the browser closes (a cookie without `Max-Age`);
    /// the store still forgets them after `session_cookie_age`.
    pub session_expire_at_browser_close: bool,
    /// Save every session on every request, which pushes its expiry
    /// forward (sliding expiry), instead of only when it changed.
    pub session_save_every_request: bool,
    /// Send the session cookie over HTTPS only (default: on in production,
    /// off in debug mode).
    pub session_cookie_secure: bool,
    /// Hide the session cookie from JavaScript.
    pub session_cookie_httponly: bool,
    /// The session cookie's `SameSite`: `lax`, `strict` or `none`.
    pub session_cookie_samesite: crate::sessions::SameSitePolicy,
    /// The path the session cookie is sent for.
    pub session_cookie_path: String,
    /// The domain the session cookie is sent to (default: the host that set it).
    pub session_cookie_domain: Option<String>,

    /// Memory argon2id uses per password hash, in KiB (default 19456 =
    /// 19 MiB, OWASP's recommendation and the `argon2` crate's default).
    pub password_hash_memory_kib: u32,
    /// Passes argon2id makes over that memory (default 2).
    pub password_hash_iterations: u32,
    /// Lanes argon2id computes in parallel (default 1).
    pub password_hash_parallelism: u32,
    /// The password validators new passwords must pass, by name:
    /// `similarity`, `min_length`, `common`, `numeric` (default: all four).
    pub password_validators: Vec<String>,
    /// The shortest password `min_length` accepts (default 8).
    pub password_min_length: usize,
    /// The similarity ratio to the username, email or names from which
    /// `similarity` refuses a password (0.1 to 1.0, default 0.7).
    pub password_max_similarity: f64,
    /// How long a password reset link stays valid (default 3 days).
    pub password_reset_timeout: Seconds,
    /// Where mail goes: `console` (printed), `file` (one `.eml` per message
    /// in `email_file_path`) or `memory` (kept for tests to read).
    pub email_backend: crate::mail::EmailBackendName,
    /// The folder the `file` email backend writes to, relative to the
    /// project folder.
    pub email_file_path: PathBuf,
    /// The sender of mail that names none.
    pub default_from_email: String,
    /// Where [`RequireLogin`](crate::auth::RequireLogin) sends anonymous
    /// visitors (with `?next=`); unset: the auth app's `auth:login` route.
    pub login_url: Option<String>,
    /// Where the login view goes after a login without a safe `next`
    /// (default `/`).
    pub login_redirect_url: String,
    /// Where the logout view goes after logging out; unset: it shows the
    /// `registration/logged_out.html` page.
    pub logout_redirect_url: Option<String>,
    /// Failed logins per username within `login_throttle_window` before the
    /// login view answers 429 (default 5).
    pub login_throttle_failures: u32,
    /// Failed logins per client IP within `login_throttle_window` before
    /// the login view answers 429 (default 20).
    pub login_throttle_ip_failures: u32,
    /// The window the login throttles count failures in (default 15 minutes).
    pub login_throttle_window: Seconds,

    /// The channel layer that carries room messages between the project's
    /// processes: `memory://` (the default; one process), `redis://host:port`
    /// or `nats://host:port`; see [`realtime::connect`](crate::realtime::connect).
    pub channel_layer: String,
    /// Most WebSocket connections open at once in this process; past it an
    /// upgrade request gets 503 with `Retry-After`.
    pub realtime_max_connections: usize,
    /// Frames that may wait to be sent on one WebSocket connection; a
    /// connection whose queue is full is closed with code 4001.
    pub realtime_send_queue: usize,
    /// Largest WebSocket message accepted from a client; larger closes the
    /// connection with code 1009.
    pub realtime_max_message_size: ByteSize,
    /// The read buffer of each WebSocket connection, allocated for as long
    /// as it is open: most of an idle connection's memory. A message larger
    /// than it still arrives (the buffer grows while it is read).
    pub realtime_read_buffer: ByteSize,
    /// How often the server pings each WebSocket client.
    pub realtime_ping_interval: Seconds,
    /// How long a WebSocket client may send nothing (not even a pong)
    /// before it is closed with code 4000.
    pub realtime_idle_timeout: Seconds,
    /// Messages per second a WebSocket client may send on average (0: no
    /// limit); past it the connection is closed with code 1008.
    pub realtime_rate_limit: u32,
    /// Messages a WebSocket client may send at once above the average rate.
    pub realtime_rate_burst: u32,
    /// Messages each room keeps for clients that reconnect (0: none).
    pub realtime_history: usize,
    /// How long a presence entry lives unless its node refreshes it (every
    /// third of it): how soon the members of a node that died leave.
    pub realtime_presence_ttl: Seconds,

    /// Warnings found while loading (unknown keys and the like); logged at boot.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::defaults_for(cfg!(debug_assertions))
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("debug", &self.debug)
            .field("secret_key", &self.secret_key)
            .field("secret_key_fallbacks", &self.secret_key_fallbacks)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("csrf_trusted_origins", &self.csrf_trusted_origins)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("access_log", &self.access_log)
            .field("request_body_limit", &self.request_body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("shutdown_drain", &self.shutdown_drain)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("compression", &self.compression)
            .field("max_connections", &self.max_connections)
            .field(
                "database_url",
                &crate::db::mask_password(&self.database_url),
            )
            .field("database_max_connections", &self.database_max_connections)
            .field("databases", &self.databases)
            .field("static_url", &self.static_url)
            .field("static_root", &self.static_root)
            .field("media_root", &self.media_root)
            .field("media_url", &self.media_url)
            .field("upload_max_file_size", &self.upload_max_file_size)
            .field("upload_max_files", &self.upload_max_files)
            .field("templates_from_disk", &self.templates_from_disk)
            .field("session_engine", &self.session_engine)
            .field("session_cookie_name", &self.session_cookie_name)
            .field("session_cookie_age", &self.session_cookie_age)
            .field(
                "channel_layer",
                &crate::db::mask_password(&self.channel_layer),
            )
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The built-in defaults for debug (`true`) or production (`false`) mode.
    #[must_use]
    pub fn defaults_for(debug: bool) -> Self {
        Self {
            debug,
            secret_key: None,
            secret_key_fallbacks: Vec::new(),
            allowed_hosts: Vec::new(),
            csrf_cookie_name: "kiln_csrftoken".to_owned(),
            csrf_header_name: "X-CSRFToken".to_owned(),
            csrf_trusted_origins: Vec::new(),
            csrf_cookie_secure: !debug,
            secure_proxy_ssl_header: None,
            secure_ssl_redirect: false,
            x_frame_options: "DENY".to_owned(),
            secure_hsts_seconds: 0,
            secure_hsts_include_subdomains: false,
            secure_hsts_preload: false,
            content_security_policy: String::new(),
            host: "127.0.0.1".to_owned(),
            port: 8000,
            log_level: if debug { "info" } else { "warn,kiln=info" }.to_owned(),
            log_format: LogFormat::Auto,
            access_log: true,
            request_body_limit: ByteSize(2 * 1024 * 1024),
            request_timeout: Seconds(Duration::from_secs(30)),
            header_read_timeout: Seconds(Duration::from_secs(10)),
            shutdown_drain: Seconds(Duration::ZERO),
            shutdown_timeout: Seconds(Duration::from_secs(30)),
            compression: true,
            max_connections: 10_000,
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            database_max_connections: 10,
            database_min_connections: 0,
            database_connect_timeout: Seconds(Duration::from_secs(5)),
            database_acquire_timeout: Seconds(Duration::from_secs(5)),
            databases: BTreeMap::new(),
            migrate_on_start: debug,
            static_url: "/static/".to_owned(),
            static_root: PathBuf::from("staticfiles"),
            media_root: PathBuf::from("media"),
            media_url: "/media/".to_owned(),
            upload_max_file_size: ByteSize(50 * 1024 * 1024),
            upload_max_files: 10,
            upload_temp_dir: None,
            templates_from_disk: false,
            password_hash_memory_kib: argon2::Params::DEFAULT_M_COST,
            password_hash_iterations: argon2::Params::DEFAULT_T_COST,
            password_hash_parallelism: argon2::Params::DEFAULT_P_COST,
            password_validators: crate::auth::validators::VALIDATOR_NAMES
                .map(str::to_owned)
                .to_vec(),
            password_min_length: 8,
            password_max_similarity: 0.7,
            password_reset_timeout: Seconds(Duration::from_secs(3 * 24 * 3600)),
            email_backend: crate::mail::EmailBackendName::Console,
            email_file_path: PathBuf::from("sent_mail"),
            default_from_email: "webmaster@localhost".to_owned(),
            login_url: None,
            login_redirect_url: "/".to_owned(),
            logout_redirect_url: None,
            login_throttle_failures: 5,
            login_throttle_ip_failures: 20,
            login_throttle_window: Seconds(Duration::from_secs(15 * 60)),
            realtime_max_connections: 10_000,
            realtime_send_queue: 256,
            realtime_max_message_size: ByteSize(64 * 1024),
            realtime_read_buffer: ByteSize(4 * 1024),
            realtime_ping_interval: Seconds(Duration::from_secs(20)),
            realtime_idle_timeout: Seconds(Duration::from_secs(60)),
            realtime_rate_limit: 50,
            realtime_rate_burst: 100,
            realtime_history: 100,
            realtime_presence_ttl: Seconds(Duration::from_secs(30)),
            cache: "memory".to_owned(),
            cache_timeout: Seconds(Duration::from_secs(300)),
            cache_key_prefix: String::new(),
            cache_max_entries: 10_000,
            session_engine: crate::sessions::SessionEngine::Database,
            session_redis_url: "redis://127.0.0.1:6379".to_owned(),
            channel_layer: "memory://".to_owned(),
            session_cookie_name: "kiln_session".to_owned(),
            session_cookie_age: Seconds(Duration::from_secs(14 * 24 * 3600)),
            session_expire_at_browser_close: false,
            session_save_every_request: false,
            session_cookie_secure: !debug,
            session_cookie_httponly: true,
            session_cookie_samesite: crate::sessions::SameSitePolicy::Lax,
            session_cookie_path: "/".to_owned(),
            session_cookie_domain: None,
            warnings: Vec::new(),
        }
    }

    /// Loads settings for the project in `root`: defaults, then `kiln.toml`
    /// (or the file named by `KILN_CONFIG`), then `KILN_*` environment variables.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] when the file cannot be read or parsed, a value has the
    /// wrong type or range, or production mode lacks a proper `secret_key`.
    pub fn load(root: &Path) -> Result<Self, SettingsError> {
        Self::load_in_mode(root, cfg!(debug_assertions))
    }

    /// As [`Settings::load`], with `debug_default` as the mode when neither
    /// `kiln.toml` nor `KILN_DEBUG` chooses one. The test client uses debug
    /// mode so that `cargo test --release` needs no production secret key.
    pub(crate) fn load_in_mode(root: &Path, debug_default: bool) -> Result<Self, SettingsError> {
        let file = match std::env::var_os(CONFIG_ENV) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(root.join("kiln.toml")).filter(|path| path.exists()),
        };
        Self::load_from(
            file.as_deref(),
            // KILN_CONFIG and KILN_ROOT say where the project is, not how it runs.
            Env::prefixed(ENV_PREFIX).ignore(&["config", "root"]),
            debug_default,
        )
    }

    /// Loads settings from the given TOML text alone, without files or
    /// environment variables: handy in tests.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn from_toml(text: &str) -> Result<Self, SettingsError> {
        Self::resolve(Figment::from(Toml::string(text)), cfg!(debug_assertions))
    }

    fn load_from(
        file: Option<&Path>,
        env: Env,
        debug_default: bool,
    ) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // Read the file here rather than through figment: figment treats a
            // missing or unreadable file as empty, which would hide the mistake.
            std::fs::read_to_string(path).map_err(|source| SettingsError::Unreadable {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        // DATABASE_URL is the convention of every host and tool; KILN_DATABASE_URL wins.
        let conventional = Env::raw().only(&["database_url"]);
        Self::resolve(figment.merge(conventional).merge(env), debug_default)
    }

    /// The mode is decided first because the other defaults depend on it.
    fn resolve(layers: Figment, debug_default: bool) -> Result<Self, SettingsError> {
        let debug = match layers.find_value("debug") {
            Ok(_) => layers
                .extract_inner::<bool>("debug")
                .map_err(|error| SettingsError::from_figment(&layers, error))?,
            Err(_) => debug_default,
        };
        let figment =
            Figment::from(Serialized::defaults(Self::defaults_for(debug))).merge(layers.clone());
        let mut settings: Self = figment
            .extract()
            .map_err(|error| SettingsError::from_figment(&figment, error))?;
        settings.warnings = unknown_keys(&layers);
        settings.validate(&layers)?;
        Ok(settings)
    }

    fn validate(&mut self, layers: &Figment) -> Result<(), SettingsError> {
        let invalid = |key: &str, problem: String, fix: &str| SettingsError::Invalid {
            key: key.to_owned(),
            origin: error_origin(layers.find_metadata(key), key),
            problem,
            fix: fix.to_owned(),
        };
        for (key, value) in [
            ("request_timeout", self.request_timeout),
            ("header_read_timeout", self.header_read_timeout),
        ] {
            if value.0.is_zero() {
                return Err(invalid(
                    key,
                    "must be longer than zero: every request would time out".to_owned(),
                    "use a duration such as \"30s\" or \"500ms\"",
                ));
            }
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(invalid(
                "log_level",
                format!("`{}` is not a log filter: {error}", self.log_level),
                "use a level (error, warn, info, debug, trace) or a filter such as \"info,kiln=debug\"",
            ));
        }
        if let Err(error) = crate::auth::hashers::Hasher::from_settings(self) {
            return Err(invalid(
                "password_hash_memory_kib",
                error.to_string(),
                "use values argon2 accepts, e.g. the defaults (19456, 2, 1)",
            ));
        }
        if let Err(error) = crate::auth::validators::PasswordValidators::from_settings(self) {
            return Err(invalid(
                "password_validators",
                error.0,
                "name validators Kiln has, with a similarity between 0.1 and 1.0",
            ));
        }
        for (key, value) in [
            ("realtime_max_connections", self.realtime_max_connections),
            ("realtime_send_queue", self.realtime_send_queue),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be at least 1".to_owned(),
                    "use the default (see docs/ref/settings.md) or a larger number",
                ));
            }
        }
        for (key, value) in [
            ("realtime_ping_interval", self.realtime_ping_interval),
            ("realtime_presence_ttl", self.realtime_presence_ttl),
        ] {
            if value.0.is_zero() {
                return Err(invalid(
                    key,
                    "must be longer than zero".to_owned(),
                    "use a duration such as \"20s\"",
                ));
            }
        }
        if self.realtime_read_buffer.0 < MIN_READ_BUFFER.0 {
            return Err(invalid(
                "realtime_read_buffer",
                format!(
                    "{} is below {MIN_READ_BUFFER}: every frame would take several reads",
                    self.realtime_read_buffer
                ),
                "use the default \"4 KiB\", or at least \"256 B\"",
            ));
        }
        if self.realtime_idle_timeout.0 <= self.realtime_ping_interval.0 {
            return Err(invalid(
                "realtime_idle_timeout",
                format!(
                    "{} is not longer than realtime_ping_interval ({}): every idle client would be closed before its pong",
                    self.realtime_idle_timeout, self.realtime_ping_interval
                ),
                "make it at least twice realtime_ping_interval, e.g. 60s with 20s",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid(
                "max_connections",
                "must be at least 1".to_owned(),
                "set it to the number of clients to serve at once, e.g. 10000",
            ));
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return Err(invalid(
                "host",
                format!("`{}` is not an IP address", self.host),
                "use an address such as 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)",
            ));
        }
        let urls = std::iter::once(("database_url".to_owned(), &self.database_url)).chain(
            self.databases
                .iter()
                .map(|(name, database)| (format!("databases.{name}.url"), &database.url)),
        );
        for (key, url) in urls {
            if let Err(problem) = crate::db::check_url(url) {
                return Err(invalid(&key, problem, crate::db::refused_url_fix(url)));
            }
        }
        for (key, url) in [
            ("static_url", &self.static_url),
            ("media_url", &self.media_url),
        ] {
            if !is_url_prefix(url) {
                return Err(invalid(
                    key,
                    format!("`{url}` is not a URL prefix"),
                    "use a path that starts and ends with `/`, e.g. \"/static/\", or a full URL such as \"https://cdn.example.com/static/\"",
                ));
            }
        }
        if self.static_url == self.media_url {
            return Err(invalid(
                "media_url",
                format!(
                    "`{}` is static_url too; uploads and static files need prefixes of their own",
                    self.media_url
                ),
                "use e.g. static_url = \"/static/\" and media_url = \"/media/\"",
            ));
        }
        if self.upload_max_files == 0 {
            return Err(invalid(
                "upload_max_files",
                "must be at least 1".to_owned(),
                "use a small number such as 10",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(invalid(
                "database_max_connections",
                "must be at least 1".to_owned(),
                "use a small number such as 10",
            ));
        }
        crate::cache::check_settings(self)
            .map_err(|(key, problem, fix)| invalid(key, problem, fix))?;
        crate::sessions::check_settings(self)
            .map_err(|(key, problem, fix)| invalid(key, problem, fix))?;
        crate::security::validate_settings(self)
            .map_err(|(key, problem, fix)| invalid(key, problem, fix))?;
        crate::realtime::check_settings(self)
            .map_err(|(key, problem, fix)| invalid(key, problem, fix))?;
        match (&self.secret_key, self.debug) {
            (None, false) => return Err(SettingsError::MissingSecretKey),
            (Some(key), false) if key.0.chars().count() < MIN_SECRET_KEY_LEN => {
                return Err(SettingsError::WeakSecretKey {
                    len: key.0.chars().count(),
                });
            }
            (None, true) => self.secret_key = Some(Secret(DEVELOPMENT_KEY.to_owned())),
            _ => {}
        }
        Ok(())
    }

    /// The address `runserver` listens on, from `host` and `port`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        let host = if self.host == "localhost" {
            "127.0.0.1"
        } else {
            &self.host
        };
        // `validate` has checked that `host` parses.
        let ip = host.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        SocketAddr::new(ip, self.port)
    }

    /// Whether the secret key is the built-in development key (debug mode without `secret_key`).
    #[must_use]
    pub fn uses_development_key(&self) -> bool {
        self.secret_key
            .as_ref()
            .is_some_and(|key| key.0 == DEVELOPMENT_KEY)
    }

    /// Whether logs should be JSON lines.
    #[must_use]
    pub fn json_logs(&self) -> bool {
        match self.log_format {
            LogFormat::Auto => !self.debug,
            LogFormat::Json => true,
            LogFormat::Pretty | LogFormat::Compact => false,
        }
    }

    /// Names of all known settings keys.
    #[must_use]
    pub fn known_keys() -> Vec<String> {
        match serde_json::to_value(Self::defaults_for(true)) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// Keys present in the file or environment that no setting reads: almost
/// always a typo, so they are reported with the closest known key.
fn unknown_keys(layers: &Figment) -> Vec<String> {
    let known = Settings::known_keys();
    let Ok(present) = layers.extract::<figment::value::Dict>() else {
        return Vec::new();
    };
    present
        .keys()
        .filter(|key| !known.contains(key))
        .map(|key| {
            let source = describe_source(layers, key);
            let mut warning = format!("unknown setting `{key}` ({source}) is ignored");
            if let Some(close) = closest(key, &known) {
                warning.push_str(&format!("; did you mean `{close}`?"));
            }
            warning
        })
        .collect()
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len() / 3 + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// Levenshtein distance; keys are short, so the quadratic table is fine.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A named database besides the default one (`[databases.NAME]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedDatabase {
    /// Its URL, as for `database_url`.
    pub url: String,
    /// Most connections in its pool (default: `database_max_connections`).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

/// Where the value of `key` came from, for warnings:
/// "environment variable KILN_PORT", "in /srv/site/kiln.toml".
fn describe_source(figment: &Figment, key: &str) -> String {
    describe_metadata(figment.find_metadata(key), key)
}

fn describe_metadata(meta: Option<&figment::Metadata>, key: &str) -> String {
    match meta {
        Some(meta) if meta.name.contains("environment") => {
            format!("environment variable {ENV_PREFIX}{}", key.to_uppercase())
        }
        Some(meta) => match &meta.source {
            Some(figment::Source::File(path)) => format!("in {}", path.display()),
            _ => meta.name.to_string(),
        },
        None => "built-in default".to_owned(),
    }
}

/// Where a bad value came from, for errors: "from environment variable
/// KILN_PORT", "in /srv/site/kiln.toml".
fn error_origin(meta: Option<&figment::Metadata>, key: &str) -> String {
    let source = describe_metadata(meta, key);
    if source.starts_with("in ") {
        source
    } else {
        format!("from {source}")
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Compact in debug mode, JSON in production.
    Auto,
    /// Multi-line, colourful, for people.
    Pretty,
    /// One line per event, for people.
    Compact,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; take care not to log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Why settings could not be loaded. Each message names the key, where its
/// value came from and how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file exists but cannot be read.
    #[error("cannot read settings file {}: {source}\n  fix: check that the file exists and is readable, or unset {CONFIG_ENV}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value has the wrong type or range, or the file is not valid TOML.
    #[error("invalid setting `{key}` ({origin}): {problem}\n  fix: {fix}")]
    Invalid {
        /// The setting.
        key: String,
        /// Where the value came from (file, environment variable, ...).
        origin: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The settings file is not valid TOML.
    #[error(
        "the settings file ({origin}) is not valid TOML: {problem}\n  fix: correct the syntax at the position shown"
    )]
    Syntax {
        /// Which file.
        origin: String,
        /// The parser's message, with the position.
        problem: String,
    },
    /// Production mode without a `secret_key`.
    #[error(
        "`secret_key` is not set, and production mode (debug = false) refuses to start without one\n  fix: set KILN_SECRET_KEY to a random string of {MIN_SECRET_KEY_LEN}+ characters (e.g. `openssl rand -base64 48`), or set debug = true for local development"
    )]
    MissingSecretKey,
    /// Production mode with an empty `allowed_hosts`.
    #[error(
        "`allowed_hosts` is empty, and production mode (debug = false) refuses to start without it: every request would be refused\n  fix: list the host names the site serves, e.g. allowed_hosts = [\"www.example.com\"] in kiln.toml or KILN_ALLOWED_HOSTS='[\"www.example.com\"]'"
    )]
    NoAllowedHosts,
    /// Production mode with a short `secret_key`.
    #[error(
        "`secret_key` is only {len} character(s); production mode needs at least {MIN_SECRET_KEY_LEN}\n  fix: set KILN_SECRET_KEY to a longer random string (e.g. `openssl rand -base64 48`)"
    )]
    WeakSecretKey {
        /// Length of the key given.
        len: usize,
    },
}

impl SettingsError {
    fn from_figment(figment: &Figment, error: figment::Error) -> Self {
        let key = error.path.join(".");
        let origin = error_origin(
            error
                .metadata
                .as_ref()
                .or_else(|| figment.find_metadata(&key)),
            &key,
        );
        // serde names Rust types ("expected u16"); say what a person would type.
        let problem = error
            .kind
            .to_string()
            .replace("expected u16", "expected a port number")
            .replace("expected usize", "expected a whole number");
        if key.is_empty() {
            // No key: the file itself does not parse.
            return Self::Syntax {
                origin,
                problem: error.to_string(),
            };
        }
        Self::Invalid {
            fix: fix_for(&key),
            key,
            origin,
            problem,
        }
    }
}

/// Whether `url` can prefix static or media URLs: a path of at least one
/// segment that starts and ends with `/`, or an `http(s)://` URL ending
/// with `/`.
fn is_url_prefix(url: &str) -> bool {
    let path_or_full =
        url.starts_with('/') || url.starts_with("https://") || url.starts_with("http://");
    path_or_full && url.ends_with('/') && url != "/"
}

/// The fix to suggest for a bad value of `key`.
fn fix_for(key: &str) -> String {
    match key {
        "port" => {
            "use a whole number from 1 to 65535 (or 0 for any free port), e.g. port = 8000".into()
        }
        "debug"
        | "access_log"
        | "compression"
        | "migrate_on_start"
        | "templates_from_disk"
        | "csrf_cookie_secure"
        | "secure_ssl_redirect"
        | "secure_hsts_include_subdomains"
        | "secure_hsts_preload" => {
            format!("use true or false, e.g. {key} = true")
        }
        "request_body_limit" | "upload_max_file_size" => {
            "use a size such as \"2 MiB\", \"512 KB\" or a number of bytes".into()
        }
        "request_timeout" | "header_read_timeout" | "shutdown_drain" | "shutdown_timeout" => {
            "use a duration such as \"30s\", \"500ms\", \"2m\" or a number of seconds".into()
        }
        "log_format" => "use one of auto, pretty, compact, json".into(),
        "session_engine" => "use one of database, redis, cookie".into(),
        "cache_timeout" => "use a duration such as \"300s\", \"5m\" or a number of seconds".into(),
        "cache_max_entries" => "use a whole number, e.g. 10000".into(),
        "session_cookie_samesite" => "use one of lax, strict, none".into(),
        "session_cookie_age" => {
            "use a duration such as \"336h\" (two weeks), \"30m\" or a number of seconds".into()
        }
        "session_expire_at_browser_close"
        | "session_save_every_request"
        | "session_cookie_secure"
        | "session_cookie_httponly" => format!("use true or false, e.g. {key} = true"),
        "max_connections" => "use a whole number, e.g. 10000".into(),
        "database_max_connections" | "database_min_connections" | "upload_max_files" => {
            "use a whole number, e.g. 10".into()
        }
        "database_connect_timeout" | "database_acquire_timeout" => {
            "use a duration such as \"5s\"".into()
        }
        "allowed_hosts" | "csrf_trusted_origins" | "secret_key_fallbacks" => format!(
            "use a list, e.g. {key} = [\"example.com\"] in kiln.toml or KILN_{}='[\"example.com\"]'",
            key.to_uppercase()
        ),
        _ => format!("see the `{key}` entry in docs/ref/settings.md"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults() {
        let settings = Settings::from_toml("port = 9001\nrequest_timeout = \"2m\"").unwrap();
        assert_eq!(settings.port, 9001);
        assert_eq!(settings.request_timeout.0, Duration::from_secs(120));
        assert_eq!(settings.host, "127.0.0.1");
    }

    #[test]
    fn zero_timeouts_and_bad_log_filters_are_refused() {
        for text in ["request_timeout = 0", "header_read_timeout = \"0s\""] {
            let error = Settings::from_toml(text).unwrap_err().to_string();
            assert!(error.contains("longer than zero"), "{error}");
        }
        let error = Settings::from_toml("log_level = \"info,[\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`log_level`") && error.contains("fix:"),
            "{error}"
        );
        assert!(Settings::from_toml("log_level = \"warn,kiln=debug\"").is_ok());
    }

    #[test]
    fn database_urls_are_checked_when_the_settings_load() {
        let error = Settings::from_toml("database_url = \"redis://127.0.0.1\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`database_url`") && error.contains("is not a database URL"),
            "{error}"
        );
        let error = Settings::from_toml("[databases.logs]\nurl = \"db.sqlite3\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`databases.logs.url`"), "{error}");
        assert!(Settings::from_toml("database_url = \"postgres://u:p@db/app\"").is_ok());
    }

    #[test]
    fn durations_accept_decimals_and_refuse_out_of_range_values() {
        let settings = Settings::from_toml("request_timeout = 1.5").unwrap();
        assert_eq!(settings.request_timeout.0, Duration::from_millis(1500));
        let error = Settings::from_toml("request_timeout = \"99999999999999999999999\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("out of range"), "{error}");
        assert!(Settings::from_toml("request_timeout = -1.0").is_err());
    }

    #[test]
    fn broken_toml_is_a_syntax_error_with_the_position() {
        let error = Settings::from_toml("port = [").unwrap_err();
        assert!(matches!(error, SettingsError::Syntax { .. }), "{error:?}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn realtime_limits_that_cannot_work_are_refused() {
        for (toml, key) in [
            ("realtime_read_buffer = \"100 B\"", "realtime_read_buffer"),
            ("realtime_send_queue = 0", "realtime_send_queue"),
            ("realtime_max_connections = 0", "realtime_max_connections"),
            ("realtime_presence_ttl = \"0s\"", "realtime_presence_ttl"),
            (
                "realtime_ping_interval = \"30s\"\nrealtime_idle_timeout = \"30s\"",
                "realtime_idle_timeout",
            ),
        ] {
            let error = Settings::from_toml(toml).unwrap_err().to_string();
            assert!(error.contains(key), "{toml}: {error}");
        }
        let fine = Settings::from_toml("realtime_max_message_size = \"1 MiB\"").unwrap();
        assert_eq!(fine.realtime_max_message_size.0, 1024 * 1024);
        let small = Settings::from_toml("realtime_read_buffer = \"1 KiB\"").unwrap();
        assert_eq!(small.realtime_read_buffer.0, 1024);
    }

    #[test]
    fn secret_key_length_counts_characters() {
        let key = "é".repeat(MIN_SECRET_KEY_LEN - 1);
        let error = Settings::from_toml(&format!("debug = false\nsecret_key = \"{key}\""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("only {}", MIN_SECRET_KEY_LEN - 1)),
            "{error}"
        );
    }

    #[test]
    fn mode_defaults_to_the_callers_choice_unless_set() {
        let empty = || Figment::from(Toml::string(""));
        assert!(Settings::resolve(empty(), true).unwrap().debug);
        assert!(matches!(
            Settings::resolve(empty(), false),
            Err(SettingsError::MissingSecretKey)
        ));
        let key = "k".repeat(MIN_SECRET_KEY_LEN);
        let production = Figment::from(Toml::string(&format!(
            "debug = false\nsecret_key = \"{key}\""
        )));
        assert!(!Settings::resolve(production, true).unwrap().debug);
    }

    #[test]
    fn bad_port_names_key_and_fix() {
        let error = Settings::from_toml("port = 70000").unwrap_err().to_string();
        assert!(error.contains("`port`"), "{error}");
        assert!(error.contains("1 to 65535"), "{error}");
    }

    #[test]
    fn unknown_key_is_warned_with_suggestion() {
        let settings = Settings::from_toml("prot = 1").unwrap();
        assert_eq!(settings.warnings.len(), 1, "{:?}", settings.warnings);
        assert!(settings.uses_development_key());
        assert!(settings.warnings[0].contains("unknown setting `prot`"));
        assert!(settings.warnings[0].contains("did you mean `port`"));
    }

    #[test]
    fn production_requires_secret_key() {
        let error = Settings::from_toml("debug = false").unwrap_err();
        assert!(matches!(error, SettingsError::MissingSecretKey), "{error}");
        let error = Settings::from_toml("debug = false\nsecret_key = \"short\"").unwrap_err();
        assert!(
            matches!(error, SettingsError::WeakSecretKey { len: 5 }),
            "{error}"
        );
        let key = "k".repeat(40);
        let settings =
            Settings::from_toml(&format!("debug = false\nsecret_key = \"{key}\"")).unwrap();
        assert!(!settings.debug);
        assert!(settings.json_logs());
    }

    #[test]
    fn production_and_debug_defaults_differ() {
        let debug = Settings::defaults_for(true);
        let production = Settings::defaults_for(false);
        assert_ne!(debug.log_level, production.log_level);
        assert!(!debug.json_logs());
        assert!(production.json_logs());
    }

    #[test]
    fn later_layers_override_the_file() {
        // Environment variables are merged the same way; the real `KILN_*` path
        // is exercised by the CLI tests, which run the binary with a changed environment.
        let layers =
            Figment::from(Toml::string("port = 9001")).merge(Serialized::default("port", 9002));
        assert_eq!(Settings::resolve(layers, true).unwrap().port, 9002);
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let error = Settings::load_from(Some(&missing), Env::prefixed("KILN_TEST_UNUSED_"), true)
            .unwrap_err();
        assert!(matches!(error, SettingsError::Unreadable { .. }), "{error}");
        assert!(error.to_string().contains("nope.toml"));
    }

    #[test]
    fn secret_key_is_hidden_in_debug_output() {
        let settings = Settings::from_toml("secret_key = \"hunter2-hunter2\"").unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("port", "prot"), 2);
        assert_eq!(edit_distance("debug", "debug"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
