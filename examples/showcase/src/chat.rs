//! The `chat` app: rooms where logged-in users talk live.
//!
//! - A message is a row of `chat_message` (`chat/models.rs`), saved through
//!   the ORM *before* it is broadcast, so nothing is ever shown live that the
//!   history would not show after a reload.
//! - The room page renders the last [`HISTORY`] messages from the database;
//!   the page then joins the room's realtime room (`chat.<name>`) and asks
//!   the consumer for anything saved after the newest message it rendered,
//!   so a message sent while the page loaded is not lost.
//! - Presence (who is here) and typing notices come from the WebSocket
//!   consumer in `chat/consumer.rs`; anonymous visitors are asked to log in
//!   (the socket refuses them with 403).

use kiln::prelude::*;

mod consumer;
mod migrations;
pub mod models;
mod urls;
mod views;

/// How many messages the room page shows from the database.
pub const HISTORY: u64 = 50;

/// The longest message, in characters.
pub const MAX_LENGTH: usize = 500;

/// The longest room name, in characters.
pub const MAX_ROOM_NAME: usize = 40;

/// The app, mounted at `/chat` by the project.
#[must_use]
pub fn app() -> App {
    App::new("chat")
        .model::<models::message::Entity>()
        .templates(kiln::templates_dir!("src/chat/templates"))
        .urls(urls::urls())
        .migrations(migrations::migrations())
}

/// Checks a room name: 1 to 40 lowercase letters, digits and dashes, so
/// that it is safe in URLs, room names and CSS classes alike.
///
/// # Errors
///
/// What is wrong with the name, for the client.
pub fn room_name(name: &str) -> Result<&str, String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > MAX_ROOM_NAME || !valid_chars {
        return Err(format!(
            "a room name has 1 to {MAX_ROOM_NAME} lowercase letters, digits or dashes"
        ));
    }
    Ok(name)
}

/// The realtime room of chat room `name`; other apps use other prefixes.
#[must_use]
pub fn realtime_room(name: &str) -> String {
    format!("chat.{name}")
}
