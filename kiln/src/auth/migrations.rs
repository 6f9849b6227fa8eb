//! The migrations of the `auth` app, oldest first.
//!
//! Written as `makemigrations` writes an app's (and checked against the
//! models by a test that runs the same comparison as `makemigrations --check`).

mod m0001_initial;

/// The `auth` app's migrations, oldest first.
pub(crate) fn migrations() -> Vec<crate::db::migrations::Migration> {
    vec![m0001_initial::migration()]
}
