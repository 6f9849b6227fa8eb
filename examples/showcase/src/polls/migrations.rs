//! The migrations of the `polls` app, oldest first. Maintained by
//! `makemigrations`; add hand-written data migrations here too.

mod m0001_initial;
mod m0002_demo_questions;

/// Every migration of the app.
pub(crate) fn migrations() -> Vec<kiln::db::migrations::Migration> {
    vec![
        m0001_initial::migration(),
        m0002_demo_questions::migration(),
    ]
}
