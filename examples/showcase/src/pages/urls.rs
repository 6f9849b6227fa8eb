//! Routes of the `pages` app.

use kiln::prelude::*;

use super::views;

pub(super) fn urls() -> Urls {
    Urls::new()
        .route("/", "home", get(views::home))
        .route("/about/", "about", get(views::about))
        .route("/boom/", "boom", get(views::boom))
        .route("/crash/", "crash", get(views::crash))
}
