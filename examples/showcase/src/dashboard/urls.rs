//! Routes of the `dashboard` app.

use kiln::prelude::*;

use super::views;

pub(super) fn urls() -> Urls {
    Urls::new().route("/", "index", get(views::index)).route(
        "/events/",
        "events",
        get(views::events),
    )
}
