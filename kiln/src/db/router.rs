//! Database routers: which database a model's reads and writes go to, as
//! Django's `DATABASE_ROUTERS` decide.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::DEFAULT_DATABASE;

/// Decides, per table, which named database serves reads and writes, and
/// which databases `migrate` may change.
///
/// Every method has a default (the `default` database, migrate everywhere),
/// so a router overrides only what it cares about.
pub trait DatabaseRouter: Send + Sync + 'static {
    /// The database to read `table` from.
    fn db_for_read(&self, table: &str) -> &str {
        let _ = table;
        DEFAULT_DATABASE
    }

    /// The database to write `table` to.
    fn db_for_write(&self, table: &str) -> &str {
        let _ = table;
        DEFAULT_DATABASE
    }

    /// Whether `migrate --database database` may apply `app`'s migrations.
    /// A read replica receives its schema from its primary, so a replica
    /// router answers no for it.
    fn allow_migrate(&self, database: &str, app: &str) -> bool {
        let _ = (database, app);
        true
    }
}

/// Everything on the `default` database.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRouter;

impl DatabaseRouter for DefaultRouter {}

/// Writes to `default`, reads spread over the named replicas in turn.
///
/// ```
/// use kiln::db::ReadReplicas;
/// let project = kiln::Project::new("site").database_router(ReadReplicas::new(["replica"]));
/// # let _ = project;
/// ```
///
/// with, in `kiln.toml`:
///
/// ```toml
/// [databases.replica]
/// url = "postgres://reader:secret@replica:5432/site"
/// ```
pub struct ReadReplicas {
    replicas: Vec<String>,
    next: AtomicUsize,
}

impl ReadReplicas {
    /// Reads go to `replicas` (round robin); with none, to `default`.
    pub fn new<I, S>(replicas: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            replicas: replicas.into_iter().map(Into::into).collect(),
            next: AtomicUsize::new(0),
        }
    }
}

impl fmt::Debug for ReadReplicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadReplicas")
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl DatabaseRouter for ReadReplicas {
    fn db_for_read(&self, _table: &str) -> &str {
        if self.replicas.is_empty() {
            return DEFAULT_DATABASE;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len();
        &self.replicas[turn]
    }

    fn allow_migrate(&self, database: &str, _app: &str) -> bool {
        !self.replicas.iter().any(|replica| replica == database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_take_reads_in_turn_and_refuse_migrations() {
        let router = ReadReplicas::new(["r1", "r2"]);
        let reads: Vec<&str> = (0..4)
            .map(|_| router.db_for_read("polls_question"))
            .collect();
        assert_eq!(reads, ["r1", "r2", "r1", "r2"]);
        assert_eq!(router.db_for_write("polls_question"), DEFAULT_DATABASE);
        assert!(!router.allow_migrate("r1", "polls"));
        assert!(router.allow_migrate(DEFAULT_DATABASE, "polls"));
    }

    #[test]
    fn the_default_router_keeps_everything_on_default() {
        assert_eq!(DefaultRouter.db_for_read("t"), DEFAULT_DATABASE);
        assert_eq!(DefaultRouter.db_for_write("t"), DEFAULT_DATABASE);
        assert!(DefaultRouter.allow_migrate("anything", "polls"));
    }
}
