//! The showcase project: its apps and how they are mounted. A library as well
//! as a binary so that tests (and later, benchmarks) can build the same project.

use kiln::prelude::*;

pub mod api;
pub mod chat;
pub mod dashboard;
pub mod games;
pub mod pages;
pub mod polls;
pub mod videos;

/// The project: each app under its URL prefix.
#[must_use]
pub fn project() -> Project {
    let metrics = dashboard::Metrics::new();
    kiln::project!()
        .templates(kiln::templates_dir!("templates"))
        .mount("/", kiln::sessions::app())
        .mount("/", pages::app())
        .mount("/polls", polls::app())
        .mount("/api", api::app())
        .mount("/videos", videos::app())
        .mount("/chat", chat::app())
        .mount("/dashboard", dashboard::app(&metrics))
        .mount("/games", games::app())
        .mount("/accounts", accounts())
        .layer(kiln::deps::axum::middleware::from_fn_with_state(
            metrics,
            dashboard::count_request,
        ))
}

/// The auth app with the sign-up page, which Kiln leaves to each project
/// (open registration is a choice).
fn accounts() -> App {
    use kiln::auth::views::signup;
    kiln::auth::app().route("/signup/", "signup", get(signup).post(signup))
}
