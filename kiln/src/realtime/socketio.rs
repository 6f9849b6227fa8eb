//! Socket.IO: the protocol of the `socket.io-client` npm package (v5, which
//! socket.io 3 and 4 speak), served by [socketioxide] as a named route of an
//! app (cargo feature `socketio`).
//!
//! Kiln's own [consumers](super::Consumer) are the native way to do real-time
//! work; this module is for clients that already speak Socket.IO. Handlers
//! are socketioxide's: async functions whose arguments are its extractors
//! ([`SocketRef`], [`Data`], [`AckSender`], ...), plus Kiln's [`Site`] and
//! [`CurrentUser`](crate::auth::CurrentUser). Rooms, broadcasts and acks are
//! socketioxide's too. The types here are socketioxide's with Kiln's adapter
//! filled in, so import them from this module rather than from socketioxide.
//!
//! The endpoint runs inside Kiln's middleware stack (request id, allowed
//! hosts, sessions, access log); it is exempt from CSRF checks because the
//! polling transport posts without a token (the session id the handshake
//! returns, readable only by the page that made it, plays that part). Its
//! limits come from the `realtime_*` settings:
//!
//! | socketioxide | Kiln setting |
//! |---|---|
//! | `ping_interval` | `realtime_ping_interval` |
//! | `ping_timeout` | `realtime_idle_timeout` minus `realtime_ping_interval` |
//! | `max_payload`, `ws_max_message_size` | `realtime_max_message_size` |
//! | `max_buffer_size` | `realtime_send_queue` |
//!
//! Kiln adds the two limits socketioxide lacks, with the settings of its own
//! WebSockets:
//!
//! - **Connections**: every namespace connection takes a place under
//!   `realtime_max_connections`, counted together with Kiln's consumers, and
//!   gives it back when the socket goes. Past it the client's connect is
//!   refused: socket.io-client gets a `connect_error` whose message names
//!   the limit, and the connections already open carry on.
//! - **Rate**: a client may send `realtime_rate_limit` messages a second
//!   (`realtime_rate_burst` at once), counted per connection as for Kiln's
//!   WebSockets: WebSocket messages (read from the frame headers, see
//!   `realtime::rate`) and long-polling packets. Past it the connection is
//!   cut (a WebSocket is closed, a polling post gets `429` and the client
//!   drops the session), and only that one.
//!
//! With the `redis` feature too and a `redis://` `channel_layer`, broadcasts
//! and room operations reach the sockets of every node through socketioxide's
//! Redis adapter (`Project::connect_channel_layer` connects it, as
//! `runserver` does). Otherwise a Socket.IO server is one process.
//!
//! # Examples
//!
//! ```no_run
//! use kiln::prelude::*;
//! use kiln::realtime::socketio::{AckSender, Data, SocketRef};
//!
//! async fn on_connect(socket: SocketRef) {
//!     socket.on("join", async |socket: SocketRef, Data::<String>(room)| {
//!         socket.join(room);
//!     });
//!     socket.on("say", async |socket: SocketRef, Data::<(String, String)>((room, text)), ack: AckSender| {
//!         let sent = socket.to(room).emit("said", &text).await.is_ok();
//!         let _ = ack.send(&sent);
//!     });
//! }
//!
//! let chat = App::new("chat").socketio("/socket.io/", "socketio", |io| {
//!     io.ns("/", on_connect);
//! });
//! kiln::project!().mount("/", chat).main();
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use socketioxide::adapter::Emitter;
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

pub use socketioxide::extract::{Data, Extension, HttpExtension, MaybeExtension, TryData};
pub use socketioxide::socket::DisconnectReason;

use super::rate::{FrameMeter, RateLimit};
use crate::project::Site;
use crate::settings::Settings;
use crate::urls::Endpoint;

/// The adapter of every Kiln Socket.IO server: socketioxide's remote
/// adapter over a [`Bus`], which is Redis or nothing (one node). One type
/// whatever the backend, so that handlers need not be generic over it.
pub type Adapter = CustomRedisAdapter<Emitter, Bus>;
/// A connected socket (socketioxide's `SocketRef` with Kiln's adapter).
pub type SocketRef = socketioxide::extract::SocketRef<Adapter>;
/// The server's handle: namespaces, broadcasts, rooms (socketioxide's
/// `SocketIo` with Kiln's adapter). Cheap to clone.
pub type SocketIo = socketioxide::SocketIo<Adapter>;
/// The extractor that answers a client's `emitWithAck`.
pub type AckSender = socketioxide::extract::AckSender<Adapter>;

type Service = socketioxide::service::SocketIoService<NotFound, Adapter>;

/// What socketioxide's service calls for a path outside its own: nothing,
/// since the route only sends it its path, but it needs an inner service.
#[derive(Clone, Debug)]
struct NotFound;

impl tower::Service<Request> for NotFound {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request) -> Self::Future {
        std::future::ready(Ok(crate::http::not_found_response()))
    }
}
type InitFuture = socketioxide_redis::InitRes<Bus>;

/// How socketioxide's adapter reaches the other nodes: through Redis
/// pub/sub, or nowhere when the project runs as one process.
#[derive(Clone)]
pub struct Bus(BusKind);

#[derive(Clone)]
enum BusKind {
    Local,
    #[cfg(feature = "redis")]
    Redis(socketioxide_redis::drivers::redis::RedisDriver),
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            BusKind::Local => "Bus::Local",
            #[cfg(feature = "redis")]
            BusKind::Redis(_) => "Bus::Redis",
        })
    }
}

/// A failure of the Redis connection under a [`Bus`].
#[derive(Debug)]
pub struct BusError(String);

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Socket.IO's Redis adapter: {}", self.0)
    }
}

impl std::error::Error for BusError {}

impl Driver for Bus {
    type Error = BusError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), BusError> {
        match &self.0 {
            BusKind::Local => {
                let _ = (chan, val);
                Ok(())
            }
            #[cfg(feature = "redis")]
            BusKind::Redis(driver) => driver
                .publish(chan, val)
                .await
                .map_err(|error| BusError(error.to_string())),
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, BusError> {
        match &self.0 {
            BusKind::Local => {
                let _ = (chan, size);
                Ok(MessageStream::new_empty())
            }
            #[cfg(feature = "redis")]
            BusKind::Redis(driver) => driver
                .subscribe(chan, size)
                .await
                .map_err(|error| BusError(error.to_string())),
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), BusError> {
        match &self.0 {
            BusKind::Local => {
                let _ = chan;
                Ok(())
            }
            #[cfg(feature = "redis")]
            BusKind::Redis(driver) => driver
                .unsubscribe(chan)
                .await
                .map_err(|error| BusError(error.to_string())),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, BusError> {
        match &self.0 {
            // This node alone: requests that wait for other nodes' answers
            // (fetch_sockets, rooms, broadcasts with acks) expect none.
            BusKind::Local => {
                let _ = chan;
                Ok(1)
            }
            #[cfg(feature = "redis")]
            BusKind::Redis(driver) => driver
                .num_serv(chan)
                .await
                .map_err(|error| BusError(error.to_string())),
        }
    }
}

/// Connects the Redis bus of the `channel_layer` URL `url` (its `prefix`
/// names the channels: see `build`).
#[cfg(feature = "redis")]
pub(crate) async fn connect_redis(url: &str) -> Result<Bus, super::LayerError> {
    let (url, _prefix) = super::split_prefix(url);
    let masked = crate::db::mask_password(&url);
    let fail = |action: &str, error: &dyn fmt::Display| {
        super::LayerError::new(
            "redis",
            format!(
                "Socket.IO cannot {action} at {masked}: {error}; check that Redis 7 runs there \
                 (`redis-cli -u <url> ping`) or change channel_layer"
            ),
        )
    };
    let client = redis::Client::open(url.as_str()).map_err(|e| fail("open the URL", &e))?;
    // socketioxide's driver reads pub/sub messages as RESP3 pushes.
    let info = client.get_connection_info().clone();
    let resp3 = info.clone().set_redis_settings(
        info.redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3),
    );
    let client = redis::Client::open(resp3).map_err(|e| fail("open the URL", &e))?;
    let connect = socketioxide_redis::drivers::redis::RedisDriver::new(&client);
    let driver = match tokio::time::timeout(std::time::Duration::from_secs(4), connect).await {
        Ok(Ok(driver)) => driver,
        Ok(Err(error)) => return Err(fail("connect", &error)),
        Err(_) => return Err(fail("connect", &"no answer within 4 s")),
    };
    Ok(Bus(BusKind::Redis(driver)))
}

/// The bus a project uses when none was connected: this node alone.
pub(crate) fn local_bus() -> Bus {
    Bus(BusKind::Local)
}

/// What an app's Socket.IO setup function gets: register namespaces with
/// [`ns`](Self::ns); [`io`](Self::io) is the server's handle for anything
/// else (dynamic namespaces, broadcasting later from other tasks).
pub struct SocketIoSetup {
    io: SocketIo,
    pending: Vec<InitFuture>,
}

impl SocketIoSetup {
    /// Registers the connect handler of namespace `path` (`"/"` is the one
    /// a client gets with `io(url)`): see socketioxide's `SocketIo::ns`.
    /// The namespace is ready before the endpoint serves its first request.
    pub fn ns<C, T>(&mut self, path: impl Into<Cow<'static, str>>, handler: C) -> &mut Self
    where
        C: ConnectHandler<Adapter, T>,
        T: Send + Sync + 'static,
    {
        self.pending.push(self.io.ns(path, handler.with(admit)));
        self
    }

    /// The server's handle; clone it to emit from outside handlers.
    #[must_use]
    pub fn io(&self) -> &SocketIo {
        &self.io
    }
}

impl fmt::Debug for SocketIoSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoSetup")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Kiln's connect middleware, run before the app's own on every namespace:
/// the socket takes a place under `realtime_max_connections` (shared with
/// Kiln's WebSockets), kept in its extensions and so given back when the
/// socket is dropped, or the connect is refused with a `connect_error`.
async fn admit(socket: SocketRef, site: Site) -> Result<(), Refused> {
    let Some(permit) = site.channels().0.try_permit() else {
        let limit = site.settings().realtime_max_connections;
        tracing::warn!(
            target: "kiln::realtime",
            namespace = %socket.ns(),
            "a Socket.IO connection was refused: realtime_max_connections ({limit}) reached"
        );
        return Err(Refused { limit });
    };
    socket.extensions.insert(Admitted {
        _permit: Arc::new(permit),
    });
    Ok(())
}

/// A socket's place under `realtime_max_connections`, held until the
/// socket is dropped.
#[derive(Clone)]
struct Admitted {
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// What a client refused at the connection limit reads in its `connect_error`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server is at its connection limit (realtime_max_connections = {limit}); try again later"
)]
struct Refused {
    limit: usize,
}

/// An app's setup function, run when the project is built.
pub(crate) type Setup = Box<dyn FnOnce(&mut SocketIoSetup) + Send>;

/// A Socket.IO route waiting for the project's build, which knows the
/// settings, the full path and the bus.
pub(crate) struct Pending {
    pub(crate) path: String,
    pub(crate) slot: Arc<OnceLock<Ready>>,
    pub(crate) setup: Setup,
}

/// A built Socket.IO server: socketioxide's service, and the namespaces'
/// initialisation (the Redis subscriptions), which every request waits for.
pub(crate) struct Ready {
    service: Service,
    init: futures_util::future::Shared<BoxFuture<'static, Result<(), Arc<str>>>>,
    rate: Rate,
    /// To disconnect a polling session that went over the rate limit.
    io: SocketIo,
}

/// The per-connection rate limit of one Socket.IO endpoint.
struct Rate {
    /// `realtime_rate_limit` and `realtime_rate_burst`; a limit of 0 is off.
    limit: u32,
    burst: u32,
    /// Polling sessions' buckets by engine.io session id, with when each was
    /// last used (entries idle past `forget_after` are pruned).
    polling: std::sync::Mutex<std::collections::HashMap<String, (RateLimit, std::time::Instant)>>,
    forget_after: std::time::Duration,
    /// The longest polling body counted (`realtime_max_message_size`);
    /// socketioxide refuses longer ones.
    max_body: usize,
}

impl Rate {
    /// Takes `packets` tokens from session `sid`'s bucket; false when the
    /// session went over the limit.
    fn take_polling(&self, sid: &str, packets: usize) -> bool {
        let now = std::time::Instant::now();
        let mut sessions = self
            .polling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !sessions.contains_key(sid) {
            // Sessions end without telling the gate: forget the idle ones
            // when a new one comes, so the map stays as big as the live set.
            let forget_after = self.forget_after;
            sessions.retain(|_, (_, used)| now.duration_since(*used) < forget_after);
        }
        let (bucket, used) = sessions
            .entry(sid.to_owned())
            .or_insert_with(|| (RateLimit::new(self.limit, self.burst.max(1)), now));
        *used = now;
        (0..packets).all(|_| bucket.take())
    }
}

/// The endpoint `App::socketio` registers: empty until the project is
/// built, then socketioxide's service behind the initialisation gate.
pub(crate) fn endpoint(slot: Arc<OnceLock<Ready>>) -> Endpoint {
    Endpoint::service(Gate { slot }).csrf_exempt()
}

#[derive(Clone)]
struct Gate {
    slot: Arc<OnceLock<Ready>>,
}

impl tower::Service<Request> for Gate {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(ready) = self.slot.get() else {
            // Only reachable by serving an app's router without Project::build.
            return Box::pin(async {
                Ok(crate::Error::internal(std::io::Error::other(
                    "the Socket.IO endpoint was not built: serve the project through Project::build",
                ))
                .into_response())
            });
        };
        let mut service = ready.service.clone();
        let init = ready.init.clone();
        let slot = Arc::clone(&self.slot);
        Box::pin(async move {
            let request = match limit_rate(&slot, request).await {
                Ok(request) => request,
                Err(refused) => return Ok(refused),
            };
            if let Err(error) = init.await {
                return Ok((
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "5")],
                    format!("Socket.IO is unavailable: {error}\n"),
                )
                    .into_response());
            }
            let response = tower::Service::call(&mut service, request).await;
            Ok(match response {
                Ok(response) => response.map(axum::body::Body::new).into_response(),
                Err(infallible) => match infallible {},
            })
        })
    }
}

/// Applies the rate limit to one request of the endpoint: a WebSocket gets
/// a [`FrameMeter`] on its connection's reads (the server's `ReadTap`), a
/// polling post has its packets counted against its session's bucket.
/// `Err` is the answer to a post over the limit.
async fn limit_rate(slot: &OnceLock<Ready>, request: Request) -> Result<Request, Response> {
    let Some(ready) = slot.get() else {
        return Ok(request);
    };
    let rate = &ready.rate;
    if rate.limit == 0 {
        return Ok(request);
    }
    let query = request.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then_some(value)
        })
    };
    if param("transport") == Some("websocket") {
        if let Some(tap) = request.extensions().get::<crate::server::ReadTap>() {
            tap.install(FrameMeter::new(rate.limit, rate.burst));
        }
        return Ok(request);
    }
    let Some(sid) = param("sid").map(str::to_owned) else {
        return Ok(request);
    };
    if request.method() != axum::http::Method::POST {
        return Ok(request);
    }
    // A body over the size limit goes on untouched: socketioxide refuses it
    // and ends the session, as it would without the rate limit.
    let max_body = u64::try_from(rate.max_body).unwrap_or(u64::MAX);
    if axum::body::HttpBody::size_hint(request.body()).lower() > max_body {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, rate.max_body).await else {
        // A body without a length that turned out too long: refused, and
        // the session ended, as socketioxide does.
        disconnect(&ready.io, &sid);
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "the polling request's body is over realtime_max_message_size\n",
        )
            .into_response());
    };
    // engine.io 4 separates the packets of a payload with 0x1E.
    let packets = 1 + bytes.iter().filter(|&&byte| byte == 0x1E).count();
    if !rate.take_polling(&sid, packets) {
        tracing::warn!(
            target: "kiln::realtime",
            "a Socket.IO polling session sent more than realtime_rate_limit allows: \
             its post is refused (429) and its sockets are disconnected"
        );
        // The client drops the session when its post fails; the server's
        // sockets go now rather than at the ping timeout.
        disconnect(&ready.io, &sid);
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded (realtime_rate_limit)\n",
        )
            .into_response());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// Disconnects the sockets of engine.io session `sid` in every namespace.
fn disconnect(io: &SocketIo, sid: &str) {
    if let Ok(sid) = sid.parse::<socketioxide::socket::Sid>() {
        for namespace in io.nsps() {
            if let Some(socket) = namespace.get_socket(sid) {
                let _ = socket.disconnect();
            }
        }
    }
}

/// Builds the Socket.IO server of one route at its full `path`, with the
/// limits of `settings`, and fills the route's slot. Returns the server's
/// handle, which the site keeps to close its connections on shutdown.
///
/// # Errors
///
/// A message for settings that cannot work with the polling transport.
pub(crate) fn build(pending: Pending, settings: &Settings, bus: &Bus) -> Result<SocketIo, String> {
    let ping = settings.realtime_ping_interval.0;
    if ping >= settings.request_timeout.0 {
        return Err(format!(
            "Socket.IO at {}: realtime_ping_interval ({}) is not shorter than request_timeout ({}), \
             so every long-polling request would time out (408)\n  fix: make request_timeout \
             longer than realtime_ping_interval",
            pending.path, settings.realtime_ping_interval, settings.request_timeout
        ));
    }
    if pending.path.contains('{') {
        return Err(format!(
            "Socket.IO at {}: the path cannot hold parameters\n  fix: use a fixed path such as \"/socket.io/\"",
            pending.path
        ));
    }
    let config = RedisAdapterConfig::new().with_prefix(format!("{}socket.io", prefix_of(settings)));
    let (service, io) = socketioxide::SocketIo::builder()
        .req_path(pending.path.trim_end_matches('/').to_owned())
        .ping_interval(ping)
        .ping_timeout(settings.realtime_idle_timeout.0.saturating_sub(ping))
        .max_payload(settings.realtime_max_message_size.0)
        // max_payload bounds polling bodies only; WebSocket messages have
        // their own limits (64 MiB by default).
        .ws_max_message_size(settings.realtime_max_message_size.as_usize())
        .ws_max_frame_size(settings.realtime_max_message_size.as_usize())
        .max_buffer_size(settings.realtime_send_queue)
        .with_adapter::<Adapter>(RedisAdapterCtr::new_with_driver(bus.clone(), config))
        .build_with_inner_svc(NotFound);
    let mut setup = SocketIoSetup {
        io: io.clone(),
        pending: Vec::new(),
    };
    (pending.setup)(&mut setup);
    let namespaces = setup.pending;
    let path = pending.path.clone();
    let init: BoxFuture<'static, Result<(), Arc<str>>> = Box::pin(async move {
        for namespace in namespaces {
            if let Err(error) = namespace.await {
                tracing::error!(target: "kiln::realtime", %path, "Socket.IO namespace failed to start: {error}");
                return Err(Arc::from(error.to_string()));
            }
        }
        Ok(())
    });
    let init = init.shared();
    // Started now when there is a runtime (the Redis subscriptions are made
    // before the first client comes); otherwise by the first request.
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(init.clone());
    }
    let rate = Rate {
        limit: settings.realtime_rate_limit,
        burst: settings.realtime_rate_burst,
        polling: std::sync::Mutex::default(),
        forget_after: settings.realtime_idle_timeout.0 * 2,
        max_body: settings.realtime_max_message_size.as_usize(),
    };
    let _ = pending.slot.set(Ready {
        service,
        init,
        rate,
        io: io.clone(),
    });
    Ok(io)
}

/// The `prefix` of the `channel_layer` URL (Kiln's default otherwise).
fn prefix_of(settings: &Settings) -> String {
    super::split_prefix(&settings.channel_layer)
        .1
        .unwrap_or_else(|| "kiln:".to_owned())
}

/// Kiln's [`Site`] in a Socket.IO connect handler: settings, databases,
/// templates, channels (clone it into the message handlers that need it).
impl socketioxide::handler::FromConnectParts<Adapter> for Site {
    type Error = NotInKiln;

    fn from_connect_parts(
        socket: &Arc<socketioxide::socket::Socket<Adapter>>,
        _auth: &Option<socketioxide::handler::Value>,
    ) -> Result<Self, NotInKiln> {
        site_of(socket)
    }
}

/// The session's user of the request that opened the Socket.IO connection
/// (anonymous without the sessions and auth apps).
impl socketioxide::handler::FromConnectParts<Adapter> for crate::auth::CurrentUser {
    type Error = Infallible;

    fn from_connect_parts(
        socket: &Arc<socketioxide::socket::Socket<Adapter>>,
        _auth: &Option<socketioxide::handler::Value>,
    ) -> Result<Self, Infallible> {
        Ok(crate::auth::CurrentUser::from_parts(socket.req_parts()))
    }
}

fn site_of(socket: &socketioxide::socket::Socket<Adapter>) -> Result<Site, NotInKiln> {
    socket
        .req_parts()
        .extensions
        .get::<crate::http::RequestContext>()
        .map(|context| context.site.clone())
        .ok_or(NotInKiln)
}

/// The [`Site`] extractor ran outside Kiln's middleware stack.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Site extractor needs Kiln's middleware stack (serve the project built by Project::build)"
)]
pub struct NotInKiln;
