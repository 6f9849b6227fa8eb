//! Versioned, auto-detected schema migrations, as in Django.
//!
//! An app's migrations live in `src/<app>/migrations/`, one Rust file per
//! migration written by `makemigrations`, listed in `src/<app>/migrations.rs`
//! and handed to the app with `App::migrations`. Each file builds one
//! [`Migration`]: a name, the migrations it depends on and its operations.
//!
//! ```
//! use kiln::db::migrations::*;
//!
//! let initial = Migration::new("0001_initial").create_model(
//!     ModelState::new("polls_question")
//!         .field(Field::new("id", Type::BigInteger).auto_increment())
//!         .field(Field::new("question_text", Type::string(200)))
//!         .primary_key(&["id"]),
//! );
//! let votes = Migration::new("0002_choice_votes")
//!     .depends_on("polls", "0001_initial")
//!     .add_field("polls_question", Field::new("votes", Type::Integer).default(0));
//! assert_eq!(votes.operations.len(), 1);
//! # let _ = initial;
//! ```

pub mod autodetect;
mod executor;
mod graph;
mod operations;
mod schema;
mod state;
pub mod writer;

pub(crate) use executor::statements_for;
pub use executor::{
    Direction, Executor, MigrateError, Progress, RECORDER_TABLE, StatementFailure, Step, Target,
};
pub use graph::{Graph, GraphError, Key};
pub use operations::{BoxFuture, DataFn, DataStep, Irreversible, Operation, StateError};
pub use schema::{
    SQLITE_AFTER_MIGRATION, SQLITE_BEFORE_MIGRATION, SQLITE_CHECK_FOREIGN_KEYS, SchemaError,
    schema_sql, unique_constraint_name,
};
pub use state::{Action, DefaultValue, Field, ForeignKey, Index, ModelState, ProjectState, Type};

/// One migration: what it needs to run after, and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// `0002_choice_votes`: a number that orders the app's migrations and a
    /// description.
    pub name: String,
    /// `(app, migration)` pairs that must be applied first.
    pub dependencies: Vec<(String, String)>,
    pub operations: Vec<Operation>,
    /// Run inside one transaction where the database allows DDL in one
    /// (PostgreSQL, SQLite). Turn off for statements that refuse to run in a
    /// transaction, such as PostgreSQL's `CREATE INDEX CONCURRENTLY`.
    pub atomic: bool,
}

impl Migration {
    /// An empty migration.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dependencies: Vec::new(),
            operations: Vec::new(),
            atomic: true,
        }
    }

    /// Runs after `app`'s migration `name`.
    #[must_use]
    pub fn depends_on(mut self, app: &str, name: &str) -> Self {
        self.dependencies.push((app.to_owned(), name.to_owned()));
        self
    }

    /// Runs outside a transaction.
    #[must_use]
    pub fn non_atomic(mut self) -> Self {
        self.atomic = false;
        self
    }

    /// Appends any operation.
    #[must_use]
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operations.push(operation);
        self
    }

    /// Creates a table.
    #[must_use]
    pub fn create_model(self, model: ModelState) -> Self {
        self.operation(Operation::CreateModel(model))
    }

    /// Drops a table.
    #[must_use]
    pub fn delete_model(self, table: &str) -> Self {
        self.operation(Operation::DeleteModel {
            table: table.to_owned(),
        })
    }

    /// Renames a table.
    #[must_use]
    pub fn rename_model(self, old: &str, new: &str) -> Self {
        self.operation(Operation::RenameModel {
            old: old.to_owned(),
            new: new.to_owned(),
        })
    }

    /// Adds a column.
    #[must_use]
    pub fn add_field(self, table: &str, field: Field) -> Self {
        self.operation(Operation::AddField {
            table: table.to_owned(),
            field,
        })
    }

    /// Drops a column.
    #[must_use]
    pub fn remove_field(self, table: &str, column: &str) -> Self {
        self.operation(Operation::RemoveField {
            table: table.to_owned(),
            column: column.to_owned(),
        })
    }

    /// Changes a column to `field` (matched by name).
    #[must_use]
    pub fn alter_field(self, table: &str, field: Field) -> Self {
        self.operation(Operation::AlterField {
            table: table.to_owned(),
            field,
        })
    }

    /// Renames a column.
    #[must_use]
    pub fn rename_field(self, table: &str, old: &str, new: &str) -> Self {
        self.operation(Operation::RenameField {
            table: table.to_owned(),
            old: old.to_owned(),
            new: new.to_owned(),
        })
    }

    /// Adds an index.
    #[must_use]
    pub fn add_index(self, table: &str, index: Index) -> Self {
        self.operation(Operation::AddIndex {
            table: table.to_owned(),
            index,
        })
    }

    /// Drops an index.
    #[must_use]
    pub fn remove_index(self, table: &str, name: &str) -> Self {
        self.operation(Operation::RemoveIndex {
            table: table.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Runs SQL; `backwards` (or `None` for irreversible) undoes it.
    #[must_use]
    pub fn run_sql(self, forwards: &[&str], backwards: Option<&[&str]>) -> Self {
        let owned = |statements: &[&str]| statements.iter().map(|&s| s.to_owned()).collect();
        self.operation(Operation::RunSql {
            forwards: owned(forwards),
            backwards: backwards.map(owned),
        })
    }

    /// Runs a Rust function.
    #[must_use]
    pub fn run_rust(self, step: DataStep) -> Self {
        self.operation(Operation::RunRust(step))
    }
}
