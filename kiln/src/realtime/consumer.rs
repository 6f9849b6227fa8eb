//! Consumers: the app's code for one WebSocket connection (Django Channels'
//! consumer), and [`websocket`], the endpoint that serves one.

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::connection::{self, Socket};
use super::presence::Presence;
use crate::auth::CurrentUser;
use crate::project::Site;
use crate::urls::Endpoint;

/// What a WebSocket endpoint does with one connection. The value is the
/// connection's state: [`connect`](Self::connect) builds it from the upgrade
/// request, and every other method gets it by `&mut self`.
///
/// ```
/// use kiln::prelude::*;
/// use kiln::realtime::{ConnectRequest, Consumer, Presence, Socket};
///
/// #[derive(Deserialize)]
/// #[serde(tag = "type", rename_all = "snake_case")]
/// enum ChatIn {
///     Say { room: String, text: String },
/// }
///
/// struct Chat {
///     user: String,
/// }
///
/// impl Consumer for Chat {
///     type Message = ChatIn;
///
///     async fn connect(request: &ConnectRequest) -> Result<Self, kiln::Error> {
///         let user = request.user();
///         let user = user.user().ok_or_else(|| kiln::Error::forbidden("log in first"))?;
///         Ok(Chat { user: user.username.clone() })
///     }
///
///     async fn receive(&mut self, socket: &Socket, message: ChatIn) -> serde_json::Value {
///         let ChatIn::Say { room, text } = message;
///         let sent = socket
///             .broadcast(&room, "said", &serde_json::json!({ "user": self.user, "text": text }))
///             .await;
///         serde_json::json!({ "ok": sent.is_ok() })
///     }
///
///     fn presence(&self, _room: &str) -> Option<Presence> {
///         Some(Presence::new(&self.user))
///     }
/// }
///
/// let app = App::new("chat").route("/ws/", "socket", kiln::realtime::websocket::<Chat>());
/// # let _ = app;
/// ```
pub trait Consumer: Sized + Send + 'static {
    /// The JSON messages the client sends (the `data` of its `msg` frames).
    /// A message that does not decode gets a `bad_message` error frame.
    type Message: DeserializeOwned + Send;

    /// Accepts (the consumer's initial state) or refuses the connection,
    /// before the upgrade: an error is the HTTP answer (403 with
    /// [`kiln::Error::forbidden`](crate::Error::forbidden), ...).
    fn connect(request: &ConnectRequest)
    -> impl Future<Output = Result<Self, crate::Error>> + Send;

    /// Runs once the connection is open, before any client frame: join the
    /// rooms every connection belongs to, greet the client...
    fn connected(&mut self, socket: &Socket) -> impl Future<Output = ()> + Send {
        let _ = socket;
        async {}
    }

    /// Handles one client message. The value returned is the reply a
    /// client that asked for an ack gets (`{"t":"ack","ack":n,"data":...}`);
    /// it is dropped otherwise.
    fn receive(
        &mut self,
        socket: &Socket,
        message: Self::Message,
    ) -> impl Future<Output = Value> + Send;

    /// Handles a binary frame; ignored by default.
    fn receive_binary(&mut self, socket: &Socket, data: Bytes) -> impl Future<Output = ()> + Send {
        let _ = (socket, data);
        async {}
    }

    /// Whether the client may join `room` (every room by default). A refusal
    /// is a `forbidden` error frame; the connection stays open.
    fn can_join(&mut self, socket: &Socket, room: &str) -> impl Future<Output = bool> + Send {
        let _ = (socket, room);
        async { true }
    }

    /// This connection's presence in `room`, or `None` to stay invisible
    /// (the default).
    fn presence(&self, room: &str) -> Option<Presence> {
        let _ = room;
        None
    }

    /// Runs when the connection has ended, however it ended; the socket
    /// still names its rooms, which Kiln leaves right after.
    fn disconnect(&mut self, socket: &Socket) -> impl Future<Output = ()> + Send {
        let _ = socket;
        async {}
    }
}

/// The upgrade request as [`Consumer::connect`] sees it.
#[derive(Debug)]
pub struct ConnectRequest {
    parts: Parts,
    site: Site,
}

/// The salt of realtime tokens (see [`Channels::sign_token`](super::Channels::sign_token)).
pub(crate) const TOKEN_SALT: &str = "kiln.realtime.token";

impl ConnectRequest {
    /// The request's method, URI, headers and extensions.
    #[must_use]
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The site.
    #[must_use]
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The session's user (anonymous without the sessions and auth apps).
    #[must_use]
    pub fn user(&self) -> CurrentUser {
        CurrentUser::from_parts(&self.parts)
    }

    /// A query parameter of the URL, decoded.
    #[must_use]
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.parts.uri.query()?;
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    }

    /// The value of the `token` query parameter, when it was made by
    /// [`Channels::sign_token`](super::Channels::sign_token) no longer than
    /// `max_age` ago: how a client without the session cookie (another
    /// origin, a native app) proves who it is.
    #[must_use]
    pub fn token(&self, max_age: Duration) -> Option<String> {
        let token = self.query("token")?;
        let signer = self.site.channels().0.signer();
        signer
            .unsign_timestamped(&token, max_age)
            .ok()
            .map(str::to_owned)
    }
}

/// The endpoint of consumer `C`: register it as a route of its app,
/// `.route("/ws/", "socket", websocket::<Chat>())`.
///
/// Before the upgrade it answers 503 (with `Retry-After`) at
/// `realtime_max_connections` open connections, and the error of
/// [`Consumer::connect`] when that refuses.
#[must_use]
pub fn websocket<C: Consumer>() -> Endpoint {
    crate::urls::get(upgrade::<C>)
}

async fn upgrade<C: Consumer>(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let site = match Site::from_request_parts(&mut parts, &()).await {
        Ok(site) => site,
        Err(error) => return error.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let hub = std::sync::Arc::clone(&site.channels().0);
    let Some(permit) = hub.try_permit() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many WebSocket connections; try again shortly\n",
        )
            .into_response();
    };
    let request = ConnectRequest { parts, site };
    let consumer = match C::connect(&request).await {
        Ok(consumer) => consumer,
        Err(error) => return error.into_response(),
    };
    let max = hub.limits.max_message_size;
    upgrade
        // tungstenite's default read buffer is 128 KiB per connection; the
        // setting's 4 KiB keeps an idle connection small, and larger
        // messages still arrive (the buffer grows while one is read). The
        // write buffer gathers the frames of one writer batch into a few
        // writes (the writer flushes at the end of each batch, so nothing
        // waits in it); 4 KiB, not tungstenite's 128 KiB, since it keeps
        // what it grew to.
        .read_buffer_size(hub.limits.read_buffer)
        .write_buffer_size(4 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |ws| connection::run(ws, consumer, hub, permit))
}
