//! The `games` app: tic-tac-toe between two logged-in players, watched
//! live by anyone.
//!
//! - **Matching**: "Play" asks the consumer to `find` a game: the player
//!   joins the game waiting for a second player, or opens a new one.
//! - **Moves** are checked on the server ([`tictactoe::Game::play`]): turn
//!   order, free cell, game not over, players only. Each accepted move is
//!   broadcast as the whole game state to the room `tictactoe.<id>`, so a
//!   client only ever draws the newest state (by `seq`).
//! - **Spectators**: anyone else who opens a game (a third player, or an
//!   anonymous visitor) watches: they join the room, ask for the `state`,
//!   and follow the broadcasts.
//! - **A player who leaves** does not lose: the game waits for them (the
//!   page shows "waiting for alice to come back" from the room's
//!   presence), and they carry on when they open the game again. Games live
//!   in the process's memory ([`tictactoe::Games`], at most
//!   [`tictactoe::MAX_GAMES`]): they end with it.

use std::sync::Arc;

use kiln::prelude::*;

mod consumer;
pub mod tictactoe;
mod urls;
mod views;

/// The app, mounted at `/games` by the project.
#[must_use]
pub fn app() -> App {
    App::new("games")
        .templates(kiln::templates_dir!("src/games/templates"))
        .urls(urls::urls())
        .layer(kiln::deps::axum::Extension(Arc::new(
            tictactoe::Games::default(),
        )))
}
