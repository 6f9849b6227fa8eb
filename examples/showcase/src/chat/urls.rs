//! Routes of the `chat` app.

use kiln::prelude::*;

use super::{consumer, views};

pub(super) fn urls() -> Urls {
    Urls::new()
        .route("/", "index", get(views::index))
        .route("/rooms/{room}/", "room", get(views::room))
        .route(
            "/ws/",
            "socket",
            kiln::realtime::websocket::<consumer::Chat>(),
        )
}
