//! Views of the `games` app: the list of games and a game's page.

use std::sync::Arc;

use kiln::auth::CurrentUser;
use kiln::deps::axum::Extension;
use kiln::prelude::*;
use kiln::realtime::Channels;
use kiln::templates::{Value, context, render};

use super::tictactoe::{Games, Status};

/// A token for the page's socket, when someone is logged in.
fn token(user: &CurrentUser, channels: &Channels) -> Option<String> {
    user.user().map(|user| channels.sign_token(&user.username))
}

/// The latest games, and the "Play" button.
pub(super) async fn index(
    parts: Parts,
    user: CurrentUser,
    channels: Channels,
    Extension(games): Extension<Arc<Games>>,
) -> Result<Response, Error> {
    let games: Vec<Value> = games
        .latest(20)
        .iter()
        .map(|game| {
            let status = match game.status {
                Status::Waiting => "waiting for an opponent",
                Status::Playing => "in play",
                Status::Won { .. } => "won",
                Status::Draw => "draw",
            };
            context! { id => game.id, x => &game.x, o => &game.o, status }
        })
        .collect();
    render(
        &parts,
        "games/tictactoe.html",
        context! { games, token => token(&user, &channels) },
    )
}

/// One game: players play, everyone else watches.
pub(super) async fn game(
    parts: Parts,
    user: CurrentUser,
    channels: Channels,
    Extension(games): Extension<Arc<Games>>,
    Path(id): Path<u64>,
) -> Result<Response, Error> {
    let game = games
        .get(id)
        .ok_or_else(|| Error::not_found("no such game"))?;
    render(
        &parts,
        "games/game.html",
        context! {
            id => game.id,
            room => super::consumer::room(game.id),
            token => token(&user, &channels),
        },
    )
}
