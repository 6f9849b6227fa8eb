//! Routes of the `games` app.

use kiln::prelude::*;

use super::{consumer, views};

pub(super) fn urls() -> Urls {
    Urls::new()
        .route("/tictactoe/", "tictactoe", get(views::index))
        .route("/tictactoe/{id:int}/", "tictactoe_game", get(views::game))
        .route(
            "/tictactoe/ws/",
            "tictactoe_socket",
            kiln::realtime::websocket::<consumer::TicTacToe>(),
        )
}
