//! Routes of the `api` app.

use kiln::prelude::*;

use super::views;

pub(super) fn urls() -> Urls {
    Urls::new()
        .route("/status", "status", get(views::status))
        .route("/square/{n:int}", "square", get(views::square))
        .route("/echo", "echo", post(views::echo))
        .route("/sleep/{ms:int}", "sleep", get(views::sleep))
}
