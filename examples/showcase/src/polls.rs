//! The `polls` app of Django's tutorial: questions, their choices, and votes.
//!
//! Its models are in `polls/models.rs`; `makemigrations` wrote
//! `polls/migrations/`, and `migrate` (run automatically by `runserver` in
//! debug mode) creates the tables and seeds demo questions. Its templates
//! are in `polls/templates/polls/`.

use kiln::prelude::*;

mod migrations;
pub mod models;
mod urls;
mod views;

/// The app, mounted at `/polls` by the project.
#[must_use]
pub fn app() -> App {
    use kiln::db::{FieldOptions, ModelOptions};
    use models::{choice, question};

    App::new("polls")
        .model_with::<question::Entity>(
            ModelOptions::new()
                .ordering(&["-pub_date"])
                .display(|q: &question::Model| q.question_text.clone())
                .field(
                    "question_text",
                    FieldOptions::new()
                        .verbose_name("question")
                        .help_text("What to ask, in 200 characters or fewer."),
                )
                .field(
                    "pub_date",
                    FieldOptions::new().verbose_name("date published"),
                ),
        )
        .model_with::<choice::Entity>(
            ModelOptions::new()
                .display(|c: &choice::Model| c.choice_text.clone())
                .field("votes", FieldOptions::new().editable(false)),
        )
        .templates(kiln::templates_dir!("src/polls/templates"))
        .urls(urls::urls())
        .migrations(migrations::migrations())
}
