//! The operations a migration is made of, and what each does to the state.
//!
//! Every schema operation knows its inverse given the state before it, so
//! rolling back is "apply the inverse": one SQL generator serves both
//! directions. Data operations are reversible when given a reverse.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use sea_orm::{DatabaseTransaction, DbErr};

use super::state::{Field, Index, ModelState, ProjectState};

/// A Rust function run by a data migration, inside the migration's
/// transaction.
///
/// ```
/// use kiln::db::migrations::{DataFn, BoxFuture};
/// use kiln::db::{ConnectionTrait, DatabaseTransaction, DbErr};
///
/// fn seed(db: &DatabaseTransaction) -> BoxFuture<'_, Result<(), DbErr>> {
///     Box::pin(async move {
///         db.execute_unprepared("INSERT INTO polls_question (question_text) VALUES ('Hi?')")
///             .await?;
///         Ok(())
///     })
/// }
/// const SEED: DataFn = seed;
/// ```
pub type DataFn = for<'a> fn(&'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>>;

/// A boxed, sendable future, as data migration functions return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One step of a migration.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Creates a table with its columns and indexes.
    CreateModel(ModelState),
    /// Drops a table.
    DeleteModel { table: String },
    /// Renames a table; foreign keys that point to it follow.
    RenameModel { old: String, new: String },
    /// Adds a column.
    AddField { table: String, field: Field },
    /// Drops a column.
    RemoveField { table: String, column: String },
    /// Changes a column's type, nullability, default, uniqueness or key.
    AlterField { table: String, field: Field },
    /// Renames a column; indexes and foreign keys that use it follow.
    RenameField {
        table: String,
        old: String,
        new: String,
    },
    /// Adds an index (a unique one over several columns is `unique_together`).
    AddIndex { table: String, index: Index },
    /// Drops an index.
    RemoveIndex { table: String, name: String },
    /// Runs SQL statements; irreversible without `backwards`.
    RunSql {
        forwards: Vec<String>,
        backwards: Option<Vec<String>>,
    },
    /// Runs a Rust function; irreversible without `backwards`.
    RunRust(DataStep),
}

/// A data migration step: a named Rust function and, optionally, its reverse.
#[derive(Clone)]
pub struct DataStep {
    /// Names the step in `migrate`'s output and in comparisons.
    pub name: String,
    pub forwards: DataFn,
    pub backwards: Option<DataFn>,
}

impl DataStep {
    /// A step that cannot be rolled back.
    #[must_use]
    pub fn new(name: &str, forwards: DataFn) -> Self {
        Self {
            name: name.to_owned(),
            forwards,
            backwards: None,
        }
    }

    /// Gives the step a reverse, so the migration can be rolled back.
    #[must_use]
    pub fn backwards(mut self, backwards: DataFn) -> Self {
        self.backwards = Some(backwards);
        self
    }
}

impl fmt::Debug for DataStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataStep")
            .field("name", &self.name)
            .field("reversible", &self.backwards.is_some())
            .finish()
    }
}

/// Functions cannot be compared reliably; steps compare by name.
impl PartialEq for DataStep {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.backwards.is_some() == other.backwards.is_some()
    }
}

/// A migration that replays onto a state it does not fit, named precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("model `{table}` does not exist in app `{app}`")]
    UnknownModel { app: String, table: String },
    #[error("model `{table}` already exists (in app `{app}`)")]
    ModelExists { app: String, table: String },
    #[error("model `{table}` has no field `{column}`")]
    UnknownField { table: String, column: String },
    #[error("model `{table}` already has a field `{column}`")]
    FieldExists { table: String, column: String },
    #[error("model `{table}` has no index `{name}`")]
    UnknownIndex { table: String, name: String },
    #[error("model `{table}` already has an index `{name}`")]
    IndexExists { table: String, name: String },
    #[error("field `{table}.{column}` is used by index `{index}`; remove the index first")]
    FieldInIndex {
        table: String,
        column: String,
        index: String,
    },
    #[error("field `{table}.{column}` is part of the primary key and cannot be removed")]
    PrimaryKeyField { table: String, column: String },
    #[error("model `{table}` is referenced by `{from}`; remove or change that foreign key first")]
    Referenced { table: String, from: String },
}

/// Raised when rolling back past an operation that has no reverse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} cannot be reversed; give it a `backwards` step or roll back no further")]
pub struct Irreversible(pub String);

impl Operation {
    /// Applies the operation to `state`, as replaying `app`'s migrations does.
    ///
    /// # Errors
    ///
    /// A [`StateError`] when the operation does not fit the state, which
    /// means a hand-edited or out-of-order migration.
    pub fn apply(&self, app: &str, state: &mut ProjectState) -> Result<(), StateError> {
        match self {
            Self::CreateModel(model) => {
                if let Some((owner, _)) = state.find_table(&model.table) {
                    return Err(StateError::ModelExists {
                        app: owner.to_owned(),
                        table: model.table.clone(),
                    });
                }
                state
                    .models
                    .insert((app.to_owned(), model.table.clone()), model.clone());
            }
            Self::DeleteModel { table } => {
                model_mut(state, app, table)?;
                if let Some((from, field)) = state
                    .references_to(table)
                    .find(|(model, _)| &model.table != table)
                {
                    return Err(StateError::Referenced {
                        table: table.clone(),
                        from: format!("{}.{}", from.table, field.name),
                    });
                }
                state.models.remove(&(app.to_owned(), table.clone()));
            }
            Self::RenameModel { old, new } => {
                if let Some((owner, _)) = state.find_table(new) {
                    return Err(StateError::ModelExists {
                        app: owner.to_owned(),
                        table: new.clone(),
                    });
                }
                let mut model = model_mut(state, app, old)?.clone();
                state.models.remove(&(app.to_owned(), old.clone()));
                model.table.clone_from(new);
                state.models.insert((app.to_owned(), new.clone()), model);
                for model in state.models.values_mut() {
                    for field in &mut model.fields {
                        if let Some(key) = &mut field.foreign_key
                            && &key.table == old
                        {
                            key.table.clone_from(new);
                        }
                    }
                }
            }
            Self::AddField { table, field } => {
                let model = model_mut(state, app, table)?;
                if model.get_field(&field.name).is_some() {
                    return Err(StateError::FieldExists {
                        table: table.clone(),
                        column: field.name.clone(),
                    });
                }
                model.fields.push(field.clone());
            }
            Self::RemoveField { table, column } => {
                let model = model_mut(state, app, table)?;
                field_mut(model, column)?;
                if model.is_primary_key(column) {
                    return Err(StateError::PrimaryKeyField {
                        table: table.clone(),
                        column: column.clone(),
                    });
                }
                if let Some(index) = model
                    .indexes
                    .iter()
                    .find(|index| index.columns.contains(column))
                {
                    return Err(StateError::FieldInIndex {
                        table: table.clone(),
                        column: column.clone(),
                        index: index.name.clone(),
                    });
                }
                model.fields.retain(|field| &field.name != column);
            }
            Self::AlterField { table, field } => {
                let model = model_mut(state, app, table)?;
                *field_mut(model, &field.name)? = field.clone();
            }
            Self::RenameField { table, old, new } => {
                let model = model_mut(state, app, table)?;
                if model.get_field(new).is_some() {
                    return Err(StateError::FieldExists {
                        table: table.clone(),
                        column: new.clone(),
                    });
                }
                field_mut(model, old)?.name.clone_from(new);
                let columns = model.primary_key.iter_mut().chain(
                    model
                        .indexes
                        .iter_mut()
                        .flat_map(|index| &mut index.columns),
                );
                for column in columns.filter(|column| *column == old) {
                    column.clone_from(new);
                }
                for model in state.models.values_mut() {
                    for field in &mut model.fields {
                        if let Some(key) = &mut field.foreign_key
                            && &key.table == table
                            && &key.column == old
                        {
                            key.column.clone_from(new);
                        }
                    }
                }
            }
            Self::AddIndex { table, index } => {
                let model = model_mut(state, app, table)?;
                if model.get_index(&index.name).is_some() {
                    return Err(StateError::IndexExists {
                        table: table.clone(),
                        name: index.name.clone(),
                    });
                }
                for column in &index.columns {
                    field_mut(model, column)?;
                }
                model.indexes.push(index.clone());
            }
            Self::RemoveIndex { table, name } => {
                let model = model_mut(state, app, table)?;
                if model.get_index(name).is_none() {
                    return Err(StateError::UnknownIndex {
                        table: table.clone(),
                        name: name.clone(),
                    });
                }
                model.indexes.retain(|index| &index.name != name);
            }
            Self::RunSql { .. } | Self::RunRust(_) => {}
        }
        Ok(())
    }

    /// The operation that undoes this one, given the state before it ran.
    ///
    /// # Errors
    ///
    /// [`Irreversible`] for data operations without a reverse; a state
    /// mismatch is reported by [`apply`](Self::apply) before this is asked.
    pub fn inverse(&self, app: &str, before: &ProjectState) -> Result<Operation, Irreversible> {
        let missing = || Irreversible(format!("{self} (its state is missing)"));
        Ok(match self {
            Self::CreateModel(model) => Self::DeleteModel {
                table: model.table.clone(),
            },
            Self::DeleteModel { table } => {
                Self::CreateModel(before.model(app, table).ok_or_else(missing)?.clone())
            }
            Self::RenameModel { old, new } => Self::RenameModel {
                old: new.clone(),
                new: old.clone(),
            },
            Self::AddField { table, field } => Self::RemoveField {
                table: table.clone(),
                column: field.name.clone(),
            },
            Self::RemoveField { table, column }
            | Self::AlterField {
                table,
                field: Field { name: column, .. },
            } => {
                let field = before
                    .model(app, table)
                    .and_then(|model| model.get_field(column))
                    .ok_or_else(missing)?
                    .clone();
                if matches!(self, Self::RemoveField { .. }) {
                    Self::AddField {
                        table: table.clone(),
                        field,
                    }
                } else {
                    Self::AlterField {
                        table: table.clone(),
                        field,
                    }
                }
            }
            Self::RenameField { table, old, new } => Self::RenameField {
                table: table.clone(),
                old: new.clone(),
                new: old.clone(),
            },
            Self::AddIndex { table, index } => Self::RemoveIndex {
                table: table.clone(),
                name: index.name.clone(),
            },
            Self::RemoveIndex { table, name } => Self::AddIndex {
                table: table.clone(),
                index: before
                    .model(app, table)
                    .and_then(|model| model.get_index(name))
                    .ok_or_else(missing)?
                    .clone(),
            },
            Self::RunSql {
                forwards,
                backwards,
            } => Self::RunSql {
                forwards: backwards
                    .clone()
                    .ok_or_else(|| Irreversible(self.to_string()))?,
                backwards: Some(forwards.clone()),
            },
            Self::RunRust(step) => Self::RunRust(DataStep {
                name: format!("reverse of {}", step.name),
                forwards: step
                    .backwards
                    .ok_or_else(|| Irreversible(self.to_string()))?,
                backwards: Some(step.forwards),
            }),
        })
    }

    /// The table the operation changes, if it changes one.
    #[must_use]
    pub fn table(&self) -> Option<&str> {
        match self {
            Self::CreateModel(model) => Some(&model.table),
            Self::DeleteModel { table }
            | Self::AddField { table, .. }
            | Self::RemoveField { table, .. }
            | Self::AlterField { table, .. }
            | Self::RenameField { table, .. }
            | Self::AddIndex { table, .. }
            | Self::RemoveIndex { table, .. } => Some(table),
            Self::RenameModel { old, .. } => Some(old),
            Self::RunSql { .. } | Self::RunRust(_) => None,
        }
    }
}

fn model_mut<'a>(
    state: &'a mut ProjectState,
    app: &str,
    table: &str,
) -> Result<&'a mut ModelState, StateError> {
    state
        .models
        .get_mut(&(app.to_owned(), table.to_owned()))
        .ok_or_else(|| StateError::UnknownModel {
            app: app.to_owned(),
            table: table.to_owned(),
        })
}

fn field_mut<'a>(model: &'a mut ModelState, column: &str) -> Result<&'a mut Field, StateError> {
    let table = model.table.clone();
    model
        .get_field_mut(column)
        .ok_or_else(|| StateError::UnknownField {
            table,
            column: column.to_owned(),
        })
}

/// One line that says what the operation does, as `migrate` prints it.
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateModel(model) => write!(f, "Create model {}", model.table),
            Self::DeleteModel { table } => write!(f, "Delete model {table}"),
            Self::RenameModel { old, new } => write!(f, "Rename model {old} to {new}"),
            Self::AddField { table, field } => write!(f, "Add field {} to {table}", field.name),
            Self::RemoveField { table, column } => write!(f, "Remove field {column} from {table}"),
            Self::AlterField { table, field } => write!(f, "Alter field {} on {table}", field.name),
            Self::RenameField { table, old, new } => {
                write!(f, "Rename field {old} on {table} to {new}")
            }
            Self::AddIndex { table, index } => {
                let kind = if index.unique {
                    "unique index"
                } else {
                    "index"
                };
                write!(f, "Create {kind} {} on {table}", index.name)
            }
            Self::RemoveIndex { table, name } => write!(f, "Remove index {name} from {table}"),
            Self::RunSql { forwards, .. } => write!(f, "Raw SQL ({} statements)", forwards.len()),
            Self::RunRust(step) => write!(f, "Run Rust function {}", step.name),
        }
    }
}
