//! Applying and rolling back migrations, and recording which are applied.
//!
//! Each migration runs in one transaction on PostgreSQL and SQLite, so a
//! failure leaves nothing half-applied. MySQL commits every DDL statement
//! at once; there a failure reports which statements had already run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sea_orm::sea_query::{Alias, ColumnDef, Expr, ExprTrait, Query, Table};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};

use super::graph::{Graph, GraphError, Key};
use super::operations::{Irreversible, Operation, StateError};
use super::schema::{
    SQLITE_AFTER_MIGRATION, SQLITE_BEFORE_MIGRATION, SQLITE_CHECK_FOREIGN_KEYS, SchemaError,
    schema_sql,
};
use super::state::ProjectState;

/// The table that records applied migrations.
pub const RECORDER_TABLE: &str = "kiln_migrations";

/// Where `migrate` should take the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every app's latest migration.
    Latest,
    /// One app's latest migration (and what it depends on).
    AppLatest(String),
    /// Exactly this migration: apply up to it, or roll back what follows it.
    To(Key),
    /// Roll back every migration of the app (`migrate polls zero`).
    Zero(String),
}

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Rollback,
}

/// One migration to apply or roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub key: Key,
    pub direction: Direction,
}

/// Why `migrate` stopped. Each message names the migration and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("{0}")]
    Irreversible(#[from] Irreversible),
    #[error(
        "migration {}.{} does not replay: {source}\n  fix: correct the operation in src/{}/migrations/m{}.rs (was it edited by hand?)",
        key.0, key.1, key.0, key.1
    )]
    State { key: Key, source: StateError },
    #[error("migration {}.{}: {source}", key.0, key.1)]
    Schema { key: Key, source: Box<SchemaError> },
    #[error(
        "migration {}.{} is recorded as applied in the database but is not in the code\n  fix: restore src/{}/migrations/m{}.rs (and its line in src/{}/migrations.rs), or, if it was removed on purpose and its changes undone, delete its row: DELETE FROM {RECORDER_TABLE} WHERE app = '{}' AND name = '{}'",
        key.0, key.1, key.0, key.1, key.0, key.0, key.1
    )]
    MissingInCode { key: Key },
    #[error(
        "migration {}.{} is applied but its dependency {}.{} is not: the database's history is inconsistent\n  fix: apply {}.{} by hand or roll {}.{} back, then run migrate again",
        key.0, key.1, dependency.0, dependency.1, dependency.0, dependency.1, key.0, key.1
    )]
    InconsistentHistory { key: Key, dependency: Key },
    #[error("{0}")]
    Statement(Box<StatementFailure>),
    #[error("cannot read or write the {RECORDER_TABLE} table: {0}")]
    Recorder(DbErr),
    #[error(
        "migrations on SQLite need a pool of one connection, and this one may open {0}: `PRAGMA foreign_keys` is per connection, so a table rebuild could leave another connection without foreign keys\n  fix: give the executor a pool opened with max_connections(1), as `kiln migrate` does"
    )]
    SqlitePoolTooLarge(u32),
}

/// A statement of a migration that the database refused.
#[derive(Debug)]
pub struct StatementFailure {
    pub key: Key,
    /// The operation it belongs to, as `migrate` describes it.
    pub operation: String,
    pub statement: String,
    pub source: DbErr,
    /// Statements of this migration that ran before the failing one and
    /// stayed (MySQL, or a non-atomic migration).
    pub already_applied: Vec<String>,
    /// Whether the migration's transaction was rolled back.
    pub rolled_back: bool,
}

impl std::fmt::Display for StatementFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&failure_message(self))
    }
}

fn failure_message(failure: &StatementFailure) -> String {
    let StatementFailure {
        key,
        operation,
        statement,
        source,
        already_applied,
        rolled_back,
    } = failure;
    let rolled_back = *rolled_back;
    let mut message = format!(
        "migration {}.{} failed at \"{operation}\": {source}\n  statement: {statement}",
        key.0, key.1
    );
    if rolled_back {
        message.push_str(&format!(
            "\n  nothing of {}.{} was applied: its transaction was rolled back",
            key.0, key.1
        ));
    } else if already_applied.is_empty() {
        message.push_str("\n  no statement of this migration had run before it");
    } else {
        message.push_str("\n  these statements had already run and stay applied (this database cannot roll back schema changes):");
        for done in already_applied {
            message.push_str("\n    ");
            message.push_str(done);
        }
    }
    message.push_str("\n  fix: correct the data or the migration, then run migrate again");
    message
}

/// What happened to one step, for progress output.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub step: &'a Step,
    pub elapsed: Duration,
}

/// Applies and rolls back migrations on one connection.
///
/// On SQLite the connection must be a pool of one connection: the table
/// rebuild needs `PRAGMA foreign_keys = OFF` on the very connection that
/// runs the migration.
#[derive(Debug)]
pub struct Executor<'a> {
    db: &'a DatabaseConnection,
    graph: &'a Graph,
}

impl<'a> Executor<'a> {
    /// An executor for `graph` on `db`.
    #[must_use]
    pub fn new(db: &'a DatabaseConnection, graph: &'a Graph) -> Self {
        Self { db, graph }
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Creates the recorder table if it does not exist.
    async fn ensure_recorder(&self) -> Result<(), MigrateError> {
        let statement = Table::create()
            .table(Alias::new(RECORDER_TABLE))
            .if_not_exists()
            .col(
                ColumnDef::new(Alias::new("id"))
                    .integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Alias::new("app")).string_len(255).not_null())
            .col(
                ColumnDef::new(Alias::new("name"))
                    .string_len(255)
                    .not_null(),
            )
            .col(
                ColumnDef::new(Alias::new("applied"))
                    .timestamp()
                    .not_null()
                    .default(Expr::current_timestamp()),
            )
            .to_owned();
        self.db
            .execute(&statement)
            .await
            .map_err(MigrateError::Recorder)?;
        Ok(())
    }

    /// The migrations recorded as applied.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Recorder`] when the table cannot be read.
    pub async fn applied(&self) -> Result<BTreeSet<Key>, MigrateError> {
        self.ensure_recorder().await?;
        let query = Query::select()
            .columns([Alias::new("app"), Alias::new("name")])
            .from(Alias::new(RECORDER_TABLE))
            .to_owned();
        let rows = self
            .db
            .query_all(&query)
            .await
            .map_err(MigrateError::Recorder)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String>("", "app")
                        .map_err(MigrateError::Recorder)?,
                    row.try_get::<String>("", "name")
                        .map_err(MigrateError::Recorder)?,
                ))
            })
            .collect()
    }

    /// Checks that what the database says is applied matches the code.
    ///
    /// # Errors
    ///
    /// [`MigrateError::MissingInCode`] for a recorded migration of a known
    /// app that the code no longer has; [`MigrateError::InconsistentHistory`]
    /// for an applied migration whose dependency is not applied.
    pub fn check_history(&self, applied: &BTreeSet<Key>) -> Result<(), MigrateError> {
        let apps: BTreeSet<&str> = self.graph.apps().collect();
        for key in applied {
            // Rows of apps the project no longer mounts are left alone, as Django does.
            if apps.contains(key.0.as_str()) && !self.graph.contains(key) {
                return Err(MigrateError::MissingInCode { key: key.clone() });
            }
            if let Some(migration) = self.graph.migration(key) {
                for dependency in &migration.dependencies {
                    if !applied.contains(dependency) {
                        return Err(MigrateError::InconsistentHistory {
                            key: key.clone(),
                            dependency: dependency.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The steps that take the database from `applied` to `target`.
    ///
    /// # Errors
    ///
    /// [`GraphError`] for an unknown app.
    pub fn plan(
        &self,
        applied: &BTreeSet<Key>,
        target: &Target,
    ) -> Result<Vec<Step>, MigrateError> {
        let apply = |keys: Vec<Key>| {
            keys.into_iter()
                .filter(|key| !applied.contains(key))
                .map(|key| Step {
                    key,
                    direction: Direction::Apply,
                })
                .collect::<Vec<_>>()
        };
        let roll_back = |roots: Vec<Key>| {
            let mut seen = BTreeSet::new();
            let mut order: Vec<Key> = Vec::new();
            for root in roots {
                for key in self.graph.dependents_of(&root) {
                    if seen.insert(key.clone()) {
                        order.push(key);
                    }
                }
            }
            // Dependents first, in reverse of the order they were applied.
            let full = self.graph.full_plan();
            order.sort_by_key(|key| std::cmp::Reverse(full.iter().position(|k| k == key)));
            order
                .into_iter()
                .filter(|key| applied.contains(key))
                .map(|key| Step {
                    key,
                    direction: Direction::Rollback,
                })
                .collect::<Vec<_>>()
        };
        Ok(match target {
            Target::Latest => apply(self.graph.full_plan()),
            Target::AppLatest(app) => {
                let leaves = self.graph.leaves(app);
                if leaves.is_empty() {
                    return Err(GraphError::UnknownApp(app.clone()).into());
                }
                apply(self.graph.forwards_plan(leaves)?)
            }
            Target::To(key) if applied.contains(key) => {
                let children: Vec<Key> = self
                    .graph
                    .app_migrations(&key.0)
                    .iter()
                    .map(|m| (key.0.clone(), m.name.clone()))
                    .filter(|k| k != key && self.graph.dependents_of(key).contains(k))
                    .collect();
                roll_back(children)
            }
            Target::To(key) => apply(self.graph.forwards_plan([key.clone()])?),
            Target::Zero(app) => {
                let all: Vec<Key> = self
                    .graph
                    .app_migrations(app)
                    .iter()
                    .map(|m| (app.clone(), m.name.clone()))
                    .collect();
                if all.is_empty() {
                    return Err(GraphError::UnknownApp(app.clone()).into());
                }
                roll_back(all)
            }
        })
    }

    /// Runs `steps` in order, calling `progress` after each.
    ///
    /// # Errors
    ///
    /// [`MigrateError`] at the first step that fails; earlier steps stay done.
    pub async fn run(
        &self,
        steps: &[Step],
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<(), MigrateError> {
        self.refuse_a_shared_sqlite_pool()?;
        self.ensure_recorder().await?;
        // Refuse before touching anything if a step cannot complete: a
        // rollback past an irreversible operation, or a migration that does
        // not replay (an edited file) later in the plan. The SQL worked out
        // here is the SQL that runs.
        let plans = steps
            .iter()
            .map(|step| self.statements(step))
            .collect::<Result<Vec<_>, _>>()?;
        for (step, plan) in steps.iter().zip(&plans) {
            let started = Instant::now();
            self.run_step(step, plan).await?;
            progress(Progress {
                step,
                elapsed: started.elapsed(),
            });
        }
        Ok(())
    }

    /// The SQL of one step, operation by operation, without running it: what
    /// `sqlmigrate` prints and what `run_step` executes.
    ///
    /// # Errors
    ///
    /// [`MigrateError`] when the migration does not replay, an operation has
    /// no reverse, or the schema editor cannot express it.
    pub fn statements(&self, step: &Step) -> Result<Vec<(Operation, Vec<String>)>, MigrateError> {
        statements_for(self.graph, step, self.backend())
    }

    async fn run_step(
        &self,
        step: &Step,
        plan: &[(Operation, Vec<String>)],
    ) -> Result<(), MigrateError> {
        let key = &step.key;
        let migration = self
            .graph
            .migration(key)
            .ok_or_else(|| MigrateError::MissingInCode { key: key.clone() })?;
        let backend = self.backend();
        // MySQL commits each DDL statement; a transaction would only pretend.
        let transactional = migration.atomic && backend != DbBackend::MySql;
        let sqlite = backend == DbBackend::Sqlite;
        if sqlite {
            self.pragma(SQLITE_BEFORE_MIGRATION).await?;
        }
        let result = if transactional {
            self.run_in_transaction(step, plan).await
        } else {
            self.run_statement_by_statement(step, plan).await
        };
        if sqlite {
            self.pragma(SQLITE_AFTER_MIGRATION).await?;
        }
        result
    }

    fn refuse_a_shared_sqlite_pool(&self) -> Result<(), MigrateError> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        // Without the `sqlite` feature no connection is a SQLite one.
        #[cfg(feature = "sqlite")]
        match self
            .db
            .get_sqlite_connection_pool()
            .options()
            .get_max_connections()
        {
            1 => {}
            connections => return Err(MigrateError::SqlitePoolTooLarge(connections)),
        }
        Ok(())
    }

    async fn pragma(&self, sql: &str) -> Result<(), MigrateError> {
        self.db
            .execute_unprepared(sql)
            .await
            .map(drop)
            .map_err(MigrateError::Recorder)
    }

    async fn run_in_transaction(
        &self,
        step: &Step,
        plan: &[(Operation, Vec<String>)],
    ) -> Result<(), MigrateError> {
        let key = &step.key;
        let tx = self.db.begin().await.map_err(MigrateError::Recorder)?;
        for (operation, statements) in plan {
            for statement in statements {
                if let Err(source) = tx.execute_unprepared(statement).await {
                    // Dropping the transaction rolls it back.
                    drop(tx);
                    return Err(MigrateError::Statement(Box::new(StatementFailure {
                        key: key.clone(),
                        operation: operation.to_string(),
                        statement: statement.clone(),
                        source,
                        already_applied: Vec::new(),
                        rolled_back: true,
                    })));
                }
            }
            if let Err(source) = run_data_step(operation, &tx).await {
                drop(tx);
                return Err(MigrateError::Statement(Box::new(StatementFailure {
                    key: key.clone(),
                    operation: operation.to_string(),
                    statement: "(Rust function)".to_owned(),
                    source,
                    already_applied: Vec::new(),
                    rolled_back: true,
                })));
            }
        }
        if self.backend() == DbBackend::Sqlite {
            // The rebuilds ran with foreign keys off: check them before committing.
            let broken = tx
                .query_all_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    SQLITE_CHECK_FOREIGN_KEYS,
                ))
                .await
                .map_err(MigrateError::Recorder)?;
            if let Some(row) = broken.first() {
                let table: String = row.try_get_by_index(0).unwrap_or_default();
                let parent: String = row.try_get_by_index(2).unwrap_or_default();
                drop(tx);
                return Err(MigrateError::Statement(Box::new(StatementFailure {
                    key: key.clone(),
                    operation: "foreign key check".to_owned(),
                    statement: SQLITE_CHECK_FOREIGN_KEYS.to_owned(),
                    source: DbErr::Custom(format!(
                        "{} row(s) of {table} point to rows of {parent} that do not exist",
                        broken.len()
                    )),
                    already_applied: Vec::new(),
                    rolled_back: true,
                })));
            }
        }
        record(&tx, step).await?;
        tx.commit().await.map_err(MigrateError::Recorder)
    }

    async fn run_statement_by_statement(
        &self,
        step: &Step,
        plan: &[(Operation, Vec<String>)],
    ) -> Result<(), MigrateError> {
        let key = &step.key;
        let mut done: Vec<String> = Vec::new();
        for (operation, statements) in plan {
            for statement in statements {
                if let Err(source) = self.db.execute_unprepared(statement).await {
                    return Err(MigrateError::Statement(Box::new(StatementFailure {
                        key: key.clone(),
                        operation: operation.to_string(),
                        statement: statement.clone(),
                        source,
                        already_applied: done,
                        rolled_back: false,
                    })));
                }
                done.push(statement.clone());
            }
            if matches!(operation, Operation::RunRust(_)) {
                let tx = self.db.begin().await.map_err(MigrateError::Recorder)?;
                if let Err(source) = run_data_step(operation, &tx).await {
                    drop(tx);
                    return Err(MigrateError::Statement(Box::new(StatementFailure {
                        key: key.clone(),
                        operation: operation.to_string(),
                        statement: "(Rust function, rolled back)".to_owned(),
                        source,
                        already_applied: done,
                        rolled_back: false,
                    })));
                }
                tx.commit().await.map_err(MigrateError::Recorder)?;
            }
        }
        let tx = self.db.begin().await.map_err(MigrateError::Recorder)?;
        record(&tx, step).await?;
        tx.commit().await.map_err(MigrateError::Recorder)
    }
}

/// The statements of `step` for `backend`, per operation (inverse
/// operations, in reverse order, for a rollback).
pub(crate) fn statements_for(
    graph: &Graph,
    step: &Step,
    backend: DbBackend,
) -> Result<Vec<(Operation, Vec<String>)>, MigrateError> {
    let key = &step.key;
    let migration = graph
        .migration(key)
        .ok_or_else(|| MigrateError::MissingInCode { key: key.clone() })?;
    // States around every operation: states[i] is before operation i.
    let mut states: Vec<ProjectState> = vec![graph.state_before(key)?];
    for operation in &migration.operations {
        let mut next = states[states.len() - 1].clone();
        operation
            .apply(&key.0, &mut next)
            .map_err(|source| MigrateError::State {
                key: key.clone(),
                source,
            })?;
        states.push(next);
    }
    let schema = |operation: &Operation, before: &ProjectState, after: &ProjectState| {
        schema_sql(operation, &key.0, before, after, backend).map_err(|source| {
            MigrateError::Schema {
                key: key.clone(),
                source: Box::new(source),
            }
        })
    };
    match step.direction {
        Direction::Apply => migration
            .operations
            .iter()
            .enumerate()
            .map(|(i, operation)| {
                Ok((
                    operation.clone(),
                    schema(operation, &states[i], &states[i + 1])?,
                ))
            })
            .collect(),
        Direction::Rollback => migration
            .operations
            .iter()
            .enumerate()
            .rev()
            .map(|(i, operation)| {
                let inverse =
                    operation
                        .inverse(&key.0, &states[i])
                        .map_err(|Irreversible(what)| {
                            Irreversible(format!("{what}, in migration {}.{},", key.0, key.1))
                        })?;
                let sql = schema(&inverse, &states[i + 1], &states[i])?;
                Ok((inverse, sql))
            })
            .collect(),
    }
}

async fn run_data_step(operation: &Operation, tx: &DatabaseTransaction) -> Result<(), DbErr> {
    match operation {
        Operation::RunRust(step) => (step.forwards)(tx).await,
        _ => Ok(()),
    }
}

async fn record(tx: &DatabaseTransaction, step: &Step) -> Result<(), MigrateError> {
    let (app, name) = &step.key;
    let result = match step.direction {
        Direction::Apply => {
            let insert = Query::insert()
                .into_table(Alias::new(RECORDER_TABLE))
                .columns([Alias::new("app"), Alias::new("name")])
                .values_panic([app.as_str().into(), name.as_str().into()])
                .to_owned();
            tx.execute(&insert).await
        }
        Direction::Rollback => {
            let delete = Query::delete()
                .from_table(Alias::new(RECORDER_TABLE))
                .and_where(Expr::col(Alias::new("app")).eq(app.as_str()))
                .and_where(Expr::col(Alias::new("name")).eq(name.as_str()))
                .to_owned();
            tx.execute(&delete).await
        }
    };
    result.map(drop).map_err(MigrateError::Recorder)
}
