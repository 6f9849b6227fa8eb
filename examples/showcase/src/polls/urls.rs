//! Routes of the `polls` app.

use kiln::prelude::*;

use super::views;

pub(super) fn urls() -> Urls {
    Urls::new()
        .route("/", "index", get(views::index))
        .route("/{id:int}/", "detail", get(views::detail))
        .route("/{id:int}/results/", "results", get(views::results))
        .route("/{id:int}/vote/", "vote", post(views::vote))
        .route("/votes/", "votes", get(views::votes))
        .route(
            "/suggest/",
            "suggest",
            get(views::suggest).post(views::suggest_save),
        )
}
