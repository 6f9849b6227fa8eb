//! The tic-tac-toe consumer: matching, moves and the game state, over the
//! room `tictactoe.<id>` of each game.

use std::sync::Arc;
use std::time::Duration;

use kiln::prelude::*;
use kiln::realtime::{ConnectRequest, Consumer, Presence, Socket};
use serde_json::{Value, json};

use super::tictactoe::{Game, Games, Refusal};

/// As the chat's: a page's token outlives a game.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(3600);

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum GameIn {
    /// Join a game as a player: the waiting one, or a new one.
    Find,
    /// The current state of a game, and the sender's role in it.
    State { game: u64 },
    /// Put the sender's mark in `cell` (0 to 8, row by row).
    Move { game: u64, cell: usize },
}

/// One connection: a logged-in player, or an anonymous spectator.
pub(crate) struct TicTacToe {
    user: Option<String>,
    games: Arc<Games>,
}

/// The realtime room of game `id`.
pub(super) fn room(id: u64) -> String {
    format!("tictactoe.{id}")
}

fn game_of_room(room: &str) -> Option<u64> {
    room.strip_prefix("tictactoe.")?.parse().ok()
}

fn refused(refusal: Refusal) -> Value {
    json!({ "ok": false, "code": refusal.code(), "error": refusal.message() })
}

impl Consumer for TicTacToe {
    type Message = GameIn;

    /// Everyone may watch; the session's user (or the page's token) plays.
    async fn connect(request: &ConnectRequest) -> Result<Self, Error> {
        let games = request
            .parts()
            .extensions
            .get::<Arc<Games>>()
            .cloned()
            .ok_or_else(|| {
                Error::internal(std::io::Error::other(
                    "the games app's Games extension is missing",
                ))
            })?;
        let user = match request.user().user() {
            Some(user) => Some(user.username.clone()),
            None => request.token(TOKEN_MAX_AGE),
        };
        Ok(Self { user, games })
    }

    async fn receive(&mut self, socket: &Socket, message: GameIn) -> Value {
        match message {
            GameIn::Find => {
                let Some(user) = &self.user else {
                    return json!({ "ok": false, "code": "log_in", "error": "log in to play" });
                };
                match self.games.find(user) {
                    Ok((game, started)) => {
                        if started {
                            broadcast(socket, &game).await;
                        }
                        json!({ "ok": true, "game": game, "role": game.role_of(Some(user)) })
                    }
                    Err(refusal) => refused(refusal),
                }
            }
            GameIn::State { game } => match self.games.get(game) {
                Some(game) => {
                    json!({ "ok": true, "game": game, "role": game.role_of(self.user.as_deref()) })
                }
                None => refused(Refusal::NoSuchGame),
            },
            GameIn::Move { game, cell } => {
                let Some(user) = &self.user else {
                    return refused(Refusal::Spectator);
                };
                match self.games.play(game, user, cell) {
                    Ok(game) => {
                        broadcast(socket, &game).await;
                        json!({ "ok": true, "game": game })
                    }
                    Err(refusal) => refused(refusal),
                }
            }
        }
    }

    /// Only the rooms of games that exist.
    async fn can_join(&mut self, _socket: &Socket, room: &str) -> bool {
        game_of_room(room).is_some_and(|id| self.games.get(id).is_some())
    }

    /// Players and spectators show in the room, with their role.
    fn presence(&self, room: &str) -> Option<Presence> {
        let game = game_of_room(room).and_then(|id| self.games.get(id))?;
        let role = game.role_of(self.user.as_deref());
        let name = self.user.clone().unwrap_or_else(|| "guest".to_owned());
        Some(Presence::new(name).meta(json!({ "role": role })))
    }
}

/// Sends the whole state to the game's room. A lost broadcast is repaired
/// by the clients' next `state` request, so it is only logged.
async fn broadcast(socket: &Socket, game: &Game) {
    if let Err(error) = socket.broadcast(&room(game.id), "state", game).await {
        kiln::deps::tracing::warn!(%error, game = game.id, "game state not broadcast");
    }
}
