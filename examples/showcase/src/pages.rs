//! The `pages` app: the home page and the about page.

use kiln::prelude::*;

mod urls;
mod views;

/// The app, mounted at `/` by the project.
#[must_use]
pub fn app() -> App {
    App::new("pages").urls(urls::urls())
}
