//! The sessions app's migrations.

mod m0001_initial;

/// Every migration of the sessions app, in order.
pub(crate) fn all() -> Vec<crate::db::migrations::Migration> {
    vec![m0001_initial::migration()]
}
