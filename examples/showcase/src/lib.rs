//! The showcase project: its apps and how they are mounted. A library as well
//! as a binary so that tests (and later, benchmarks) can build the same project.

use kiln::prelude::*;

pub mod api;
pub mod pages;
pub mod polls;
pub mod videos;

/// The project: each app under its URL prefix.
#[must_use]
pub fn project() -> Project {
    kiln::project!()
        .templates(kiln::templates_dir!("templates"))
        .mount("/", kiln::sessions::app())
        .mount("/", pages::app())
        .mount("/polls", polls::app())
        .mount("/api", api::app())
        .mount("/videos", videos::app())
        .mount("/accounts", accounts())
}

/// The auth app with the sign-up page, which Kiln leaves to each project
/// (open registration is a choice).
fn accounts() -> App {
    use kiln::auth::views::signup;
    kiln::auth::app().route("/signup/", "signup", get(signup).post(signup))
}
