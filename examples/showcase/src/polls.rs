//! The `polls` app of Django's tutorial: questions, their choices, and votes.
//!
//! Its models are in `polls/models.rs`; `makemigrations` wrote
//! `polls/migrations/`, and `migrate` (run automatically by `runserver` in
//! debug mode) creates the tables and seeds demo questions.

use kiln::prelude::*;

mod migrations;
pub mod models;
mod urls;
mod views;

/// The app, mounted at `/polls` by the project.
#[must_use]
pub fn app() -> App {
    App::new("polls")
        .model::<models::question::Entity>()
        .model::<models::choice::Entity>()
        .urls(urls::urls())
        .migrations(migrations::migrations())
}
