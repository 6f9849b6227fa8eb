//! Routes of the `videos` app.

use kiln::prelude::*;

use super::views;

pub(super) fn urls() -> Urls {
    Urls::new().route("/", "index", get(views::index)).route(
        "/upload/",
        "upload",
        post(views::upload),
    )
}
