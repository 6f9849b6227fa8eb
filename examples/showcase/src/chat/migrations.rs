//! The migrations of this app, oldest first.
//!
//! Maintained by Kiln's `makemigrations`, which adds a line here for each
//! migration it writes to `migrations/`; a hand-written migration is listed
//! the same way.

mod m0001_initial;

/// This app's migrations, oldest first.
pub(crate) fn migrations() -> Vec<kiln::db::migrations::Migration> {
    vec![m0001_initial::migration()]
}
