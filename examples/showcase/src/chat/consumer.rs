//! The chat's WebSocket consumer: who may connect, what a client may send,
//! and the order that keeps the database and the live stream in step
//! (save, then broadcast).

use std::time::{Duration, Instant};

use kiln::db::DatabaseConnection;
use kiln::db::prelude::*;
use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Presence, Socket};
use serde::de::{Deserializer, Error as _};
use serde_json::{Value, json};

use super::models::message;
use super::views::{Said, messages};

/// How long a token rendered into the room page stays valid; a page open
/// longer reconnects with its session cookie.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(3600);

/// At most one typing notice per connection in this interval: typing is
/// sent on every key press, and each notice is one send per member.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// What a client sends, in the `data` of its `msg` frames. Room names and
/// texts are checked while the message is decoded, so a bad one is refused
/// with a `bad_message` error frame (carrying the client's ack id) before
/// the consumer sees it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ChatIn {
    /// Say something in a room the connection has joined.
    Say { room: RoomName, text: ChatText },
    /// The user is typing in a room.
    Typing { room: RoomName },
    /// The stored messages after `after` (a message id), oldest first, a
    /// page of [`super::HISTORY`] at most (`more` says whether another may
    /// follow): how a page catches up after rendering its history, or after
    /// a `resync`.
    Since { room: RoomName, after: i64 },
}

/// A valid room name (see [`super::room_name`]).
#[derive(Debug)]
pub(crate) struct RoomName(String);

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        super::room_name(&name).map_err(D::Error::custom)?;
        Ok(Self(name))
    }
}

/// A message text: not blank, at most [`super::MAX_LENGTH`] characters.
#[derive(Debug)]
pub(crate) struct ChatText(String);

impl<'de> Deserialize<'de> for ChatText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Err(D::Error::custom(
                "the message is empty: write something first",
            ));
        }
        let length = text.chars().count();
        if length > super::MAX_LENGTH {
            return Err(D::Error::custom(format!(
                "the message has {length} characters; the limit is {}",
                super::MAX_LENGTH
            )));
        }
        Ok(Self(text))
    }
}

/// One connection: a logged-in user.
pub(crate) struct Chat {
    user_id: i64,
    username: String,
    db: DatabaseConnection,
    last_typing: Option<Instant>,
}

impl Consumer for Chat {
    type Message = ChatIn;

    /// The session's user, or the user named by the page's signed token;
    /// anyone else gets 403 before the upgrade.
    async fn connect(request: &ConnectRequest) -> Result<Self, Error> {
        let db = request
            .site()
            .databases()
            .default_db()
            .await
            .map_err(Error::internal)?
            .clone();
        let session_user = request.user().user().cloned();
        let user = match session_user {
            Some(user) => user,
            None => {
                let username = request
                    .token(TOKEN_MAX_AGE)
                    .ok_or_else(|| Error::forbidden("log in to chat"))?;
                kiln::auth::user::Entity::find()
                    .filter(kiln::auth::user::Column::Username.eq(username))
                    .filter(kiln::auth::user::Column::IsActive.eq(true))
                    .one(&db)
                    .await
                    .map_err(Error::internal)?
                    .ok_or_else(|| Error::forbidden("log in to chat"))?
            }
        };
        Ok(Self {
            user_id: user.id,
            username: user.username,
            db,
            last_typing: None,
        })
    }

    async fn receive(&mut self, socket: &Socket, message: ChatIn) -> Value {
        match message {
            ChatIn::Say { room, text } => self.say(socket, &room.0, text.0).await,
            ChatIn::Typing { room } => self.typing(socket, &room.0).await,
            ChatIn::Since { room, after } => {
                match messages(&self.db, &room.0, Some(after), super::HISTORY).await {
                    Ok(messages) => {
                        // A full page may have a next one: the client asks
                        // again after the last id it got.
                        let more = messages.len() as u64 == super::HISTORY;
                        json!({ "ok": true, "messages": messages, "more": more })
                    }
                    Err(error) => {
                        kiln::deps::tracing::error!(%error, "chat history read failed");
                        refused("the history could not be read; try again")
                    }
                }
            }
        }
    }

    /// Only chat rooms, by a valid name.
    async fn can_join(&mut self, _socket: &Socket, room: &str) -> bool {
        room.strip_prefix("chat.")
            .is_some_and(|name| super::room_name(name).is_ok())
    }

    fn presence(&self, _room: &str) -> Option<Presence> {
        Some(Presence::new(&self.username))
    }
}

impl Chat {
    /// Saves the message, then broadcasts it: a message that could not be
    /// saved is never shown.
    async fn say(&self, socket: &Socket, room: &str, text: String) -> Value {
        let realtime_room = super::realtime_room(room);
        if !socket.rooms().contains(&realtime_room) {
            return refused("join the room before you write in it");
        }
        let saved = message::ActiveModel {
            room: Set(room.to_owned()),
            user_id: Set(self.user_id),
            text: Set(text),
            created: Set(ChronoUtc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await;
        let saved = match saved {
            Ok(saved) => saved,
            Err(error) => {
                kiln::deps::tracing::error!(%error, room, "chat message not saved");
                return refused("the message could not be saved; try again");
            }
        };
        let said = Said::new(&saved, &self.username);
        if let Err(error) = socket.broadcast(&realtime_room, "said", &said).await {
            // Saved but not live: the others see it on their next catch-up
            // (`since`) or reload.
            kiln::deps::tracing::warn!(%error, room, "chat message saved but not broadcast");
        }
        json!({ "ok": true, "id": saved.id })
    }

    /// Tells the room's other connections that this user is typing. Sent to
    /// each present connection rather than broadcast, so that the notices
    /// stay out of the room's history: a client that reconnects does not
    /// replay stale ones.
    async fn typing(&mut self, socket: &Socket, room: &str) -> Value {
        let now = Instant::now();
        if self
            .last_typing
            .is_some_and(|last| now.duration_since(last) < TYPING_INTERVAL)
        {
            return json!({ "ok": true });
        }
        self.last_typing = Some(now);
        let realtime_room = super::realtime_room(room);
        if !socket.rooms().contains(&realtime_room) {
            return refused("join the room first");
        }
        let channels = socket.channels();
        let present = match channels.presence(&realtime_room).await {
            Ok(present) => present,
            Err(error) => {
                kiln::deps::tracing::warn!(%error, room, "presence read failed");
                return refused("the room is unavailable");
            }
        };
        let notice = json!({ "room": room, "user": self.username });
        for entry in present.iter().filter(|entry| entry.key != socket.id()) {
            // A member that left meanwhile is no loss for a typing notice.
            let _ = channels.send_to(&entry.key, "typing", &notice).await;
        }
        json!({ "ok": true })
    }
}

/// The reply to a request the consumer refuses.
pub(super) fn refused(error: &str) -> Value {
    json!({ "ok": false, "error": error })
}
