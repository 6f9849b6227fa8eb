//! The `api` app: a small JSON API. It can run alone as a microservice:
//! `cargo run -p showcase -- runserver --app api`.

use kiln::prelude::*;

mod urls;
mod views;

/// The app, mounted at `/api` by the project.
#[must_use]
pub fn app() -> App {
    App::new("api").urls(urls::urls())
}
