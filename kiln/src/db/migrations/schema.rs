//! The schema editor: the SQL that takes a database from one
//! [`ProjectState`] to the next, for SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! [`schema_sql`] is given an operation and the states before and after it
//! (the caller computes `after` with [`Operation::apply`]) and returns the
//! statements to run, in order. Rolling back uses the same function: the SQL
//! of `operation.inverse(app, &before)` taken from `after` to `before`.
//!
//! Statements are built with sea-query so that quoting, value literals and
//! type names are sea-query's (and so SeaORM's); the few statements it cannot
//! express are written by hand and marked so in a comment.
//!
//! See [`schema_sql`] for the names the editor gives constraints and for
//! what the executor must run around a migration on SQLite.

mod mysql;
mod postgres;
mod sqlite;

use sea_orm::DbBackend;
use sea_query::{
    Alias, ColumnDef, ColumnType, Expr, ExprTrait, ForeignKey as SeaForeignKey, ForeignKeyAction,
    ForeignKeyCreateStatement, Index as SeaIndex, MysqlQueryBuilder, PostgresQueryBuilder, Query,
    SqliteQueryBuilder, Table, TableBuilder,
};

use super::operations::Operation;
use super::state::{Action, DefaultValue, Field, Index, ModelState, ProjectState, Type};

/// Run on the migration's connection before its transaction begins, on
/// SQLite: table rebuilds drop tables that others reference.
pub const SQLITE_BEFORE_MIGRATION: &str = "PRAGMA foreign_keys = OFF";

/// Run inside the migration's transaction, after its statements and before
/// `COMMIT`, on SQLite. It returns one row per broken reference; any row
/// means the migration must be rolled back.
pub const SQLITE_CHECK_FOREIGN_KEYS: &str = "PRAGMA foreign_key_check";

/// Run on the migration's connection after its transaction ends (committed
/// or rolled back), on SQLite.
pub const SQLITE_AFTER_MIGRATION: &str = "PRAGMA foreign_keys = ON";

/// Why the editor could not write SQL for an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error(
        "model `{table}` is missing from the state {side} the operation; compute the states \
         with `Operation::apply` from the migrations replayed in order"
    )]
    MissingModel { table: String, side: &'static str },
    #[error(
        "field `{table}.{column}` is missing from the state {side} the operation; compute the \
         states with `Operation::apply` from the migrations replayed in order"
    )]
    MissingField {
        table: String,
        column: String,
        side: &'static str,
    },
    #[error(
        "index `{name}` on `{table}` is missing from the state {side} the operation; compute the \
         states with `Operation::apply` from the migrations replayed in order"
    )]
    MissingIndex {
        table: String,
        name: String,
        side: &'static str,
    },
    #[error(
        "field `{table}.{column}` is auto-increment but of type {ty}; give it an integer type \
         (such as `Type::BigInteger`) or drop `auto_increment()`"
    )]
    AutoIncrementType {
        table: String,
        column: String,
        ty: String,
    },
    #[error(
        "field `{table}.{column}` is auto-increment but is not the table's whole primary key; \
         databases number rows only through a single-column primary key, so make it \
         `primary_key(&[\"{column}\"])` or drop `auto_increment()`"
    )]
    AutoIncrementNotPrimaryKey { table: String, column: String },
    #[error(
        "enum type `{name}` changes its values on `{table}.{column}` but is also used by \
         `{other}`; on PostgreSQL an enum type is shared, so give the changed enum a new name"
    )]
    SharedEnumChanged {
        name: String,
        table: String,
        column: String,
        other: String,
    },
    #[error("database backend {0:?} is not supported by the schema editor")]
    UnsupportedBackend(DbBackend),
}

/// The statements that take the database from `before` to `after`, the
/// states around `operation` (a migration of `app`), in the order to run
/// them.
///
/// `RunSql` returns its `forwards` statements and `RunRust` nothing (the
/// executor runs the function). Rolling back is the SQL of
/// `operation.inverse(app, &before)` taken from `after` to `before`.
///
/// # Names
///
/// Constraints carry fixed names so that a later migration can find what an
/// earlier one created: a foreign key is `fk_{table}_{column}`
/// ([`ForeignKey::constraint_name`](super::ForeignKey::constraint_name)), a
/// single-column unique constraint `uq_{table}_{column}`
/// ([`unique_constraint_name`]); indexes carry their own name in the state.
/// Renaming a table or a column renames these with it (except on SQLite,
/// where names inside a `CREATE TABLE` are never addressed: any later change
/// rebuilds the table from the state).
///
/// # Executing on SQLite
///
/// SQLite cannot alter most of a table, so the editor rebuilds it as Django
/// does: create `new__{table}` from the new state, copy the rows, drop the old
/// table and rename the new one. Dropping a table that others reference needs
/// foreign key enforcement off, and SQLite ignores `PRAGMA foreign_keys`
/// inside a transaction, so the executor runs, for each migration on SQLite:
///
/// 1. [`SQLITE_BEFORE_MIGRATION`] (`PRAGMA foreign_keys = OFF`), outside any
///    transaction;
/// 2. `BEGIN`, the statements of every operation, then
///    [`SQLITE_CHECK_FOREIGN_KEYS`] (`PRAGMA foreign_key_check`): any row it
///    returns is a broken reference, so roll back and report it; otherwise
///    `COMMIT`;
/// 3. [`SQLITE_AFTER_MIGRATION`] (`PRAGMA foreign_keys = ON`), whatever the
///    outcome, on the same connection.
///
/// All three must run on the one connection that runs the migration (a
/// pragma is per connection), and `PRAGMA legacy_alter_table` must stay off
/// (its default) so that renaming a table or column updates the foreign keys
/// that point to it.
///
/// # Examples
///
/// ```
/// use kiln::db::migrations::*;
/// use sea_orm::DbBackend;
///
/// let operation = Operation::CreateModel(
///     ModelState::new("polls_question")
///         .field(Field::new("id", Type::BigInteger).auto_increment())
///         .field(Field::new("question_text", Type::string(200)))
///         .primary_key(&["id"]),
/// );
/// let before = ProjectState::default();
/// let mut after = before.clone();
/// operation.apply("polls", &mut after).unwrap();
///
/// let sql = schema_sql(&operation, "polls", &before, &after, DbBackend::Postgres).unwrap();
/// assert_eq!(
///     sql,
///     [r#"CREATE TABLE "polls_question" ( "id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, "question_text" varchar(200) NOT NULL )"#]
/// );
/// ```
///
/// # Errors
///
/// [`SchemaError`] when the states do not hold what the operation names, or
/// when a field cannot exist (auto-increment on a column that is not an
/// integer primary key, a shared PostgreSQL enum whose values change).
pub fn schema_sql(
    operation: &Operation,
    app: &str,
    before: &ProjectState,
    after: &ProjectState,
    backend: DbBackend,
) -> Result<Vec<String>, SchemaError> {
    let dialect = Dialect::of(backend)?;
    let states = States { app, before, after };
    match operation {
        Operation::RunSql { forwards, .. } => Ok(forwards.clone()),
        Operation::RunRust(_) => Ok(Vec::new()),
        Operation::CreateModel(model) => {
            let model = states.after_model(&model.table)?;
            match dialect {
                Dialect::Sqlite => sqlite::create_model(model),
                Dialect::Postgres => postgres::create_model(&states, model),
                Dialect::Mysql => create_model_common(Dialect::Mysql, model),
            }
        }
        Operation::DeleteModel { table } => {
            let model = states.before_model(table)?;
            match dialect {
                Dialect::Postgres => Ok(postgres::delete_model(&states, model)),
                Dialect::Sqlite | Dialect::Mysql => Ok(vec![drop_table(dialect, table)]),
            }
        }
        Operation::RenameModel { old, new } => {
            let old_model = states.before_model(old)?;
            let new_model = states.after_model(new)?;
            Ok(match dialect {
                Dialect::Sqlite => vec![rename_table(dialect, old, new)],
                Dialect::Postgres => postgres::rename_model(old_model, new_model),
                Dialect::Mysql => mysql::rename_model(old_model, new_model),
            })
        }
        Operation::AddField { table, field } => {
            let old_model = states.before_model(table)?;
            let model = states.after_model(table)?;
            let field = states.field(model, &field.name, "after")?;
            match dialect {
                Dialect::Sqlite => sqlite::add_field(old_model, model, field),
                Dialect::Postgres => postgres::add_field(&states, model, field),
                Dialect::Mysql => mysql::add_field(model, field),
            }
        }
        Operation::RemoveField { table, column } => {
            let model = states.before_model(table)?;
            let new_model = states.after_model(table)?;
            let field = states.field(model, column, "before")?;
            match dialect {
                Dialect::Sqlite => sqlite::remove_field(model, new_model, field),
                Dialect::Postgres => Ok(postgres::remove_field(&states, model, field)),
                Dialect::Mysql => Ok(mysql::remove_field(model, field)),
            }
        }
        Operation::AlterField { table, field } => {
            let old_model = states.before_model(table)?;
            let model = states.after_model(table)?;
            let old = states.field(old_model, &field.name, "before")?;
            let new = states.field(model, &field.name, "after")?;
            match dialect {
                Dialect::Sqlite => sqlite::alter_field(old_model, model),
                Dialect::Postgres => postgres::alter_field(&states, model, old, new),
                Dialect::Mysql => mysql::alter_field(model, old, new),
            }
        }
        Operation::RenameField { table, old, new } => {
            let old_model = states.before_model(table)?;
            let model = states.after_model(table)?;
            let old_field = states.field(old_model, old, "before")?;
            let new_field = states.field(model, new, "after")?;
            Ok(match dialect {
                Dialect::Sqlite => vec![rename_column(dialect, table, old, new)],
                Dialect::Postgres => postgres::rename_field(model, old_field, new_field),
                Dialect::Mysql => mysql::rename_field(model, old_field, new_field),
            })
        }
        Operation::AddIndex { table, index } => {
            let model = states.after_model(table)?;
            let index = model
                .get_index(&index.name)
                .ok_or_else(|| SchemaError::MissingIndex {
                    table: table.clone(),
                    name: index.name.clone(),
                    side: "after",
                })?;
            Ok(vec![create_index(dialect, table, index)])
        }
        Operation::RemoveIndex { table, name } => {
            let model = states.before_model(table)?;
            let index = model
                .get_index(name)
                .ok_or_else(|| SchemaError::MissingIndex {
                    table: table.clone(),
                    name: name.clone(),
                    side: "before",
                })?;
            Ok(match dialect {
                Dialect::Mysql => mysql::remove_index(model, index),
                Dialect::Sqlite | Dialect::Postgres => vec![drop_index(dialect, table, name)],
            })
        }
    }
}

/// The name of the unique constraint (or unique index, on MySQL) of a
/// `unique` field, fixed so that later migrations can drop it.
#[must_use]
pub fn unique_constraint_name(table: &str, column: &str) -> String {
    format!("uq_{table}_{column}")
}

/// The three SQL dialects, so that matches over them are exhaustive
/// (`DbBackend` is `#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    fn of(backend: DbBackend) -> Result<Self, SchemaError> {
        match backend {
            DbBackend::Sqlite => Ok(Self::Sqlite),
            DbBackend::Postgres => Ok(Self::Postgres),
            DbBackend::MySql => Ok(Self::Mysql),
            // `DbBackend` is non_exhaustive; a new backend needs its own editor.
            other => Err(SchemaError::UnsupportedBackend(other)),
        }
    }
}

/// The states around the operation, with look-ups that name what is
/// missing.
pub(super) struct States<'a> {
    app: &'a str,
    pub(super) before: &'a ProjectState,
    pub(super) after: &'a ProjectState,
}

impl<'a> States<'a> {
    fn before_model(&self, table: &str) -> Result<&'a ModelState, SchemaError> {
        self.before
            .model(self.app, table)
            .ok_or_else(|| SchemaError::MissingModel {
                table: table.to_owned(),
                side: "before",
            })
    }

    fn after_model(&self, table: &str) -> Result<&'a ModelState, SchemaError> {
        self.after
            .model(self.app, table)
            .ok_or_else(|| SchemaError::MissingModel {
                table: table.to_owned(),
                side: "after",
            })
    }

    fn field<'m>(
        &self,
        model: &'m ModelState,
        column: &str,
        side: &'static str,
    ) -> Result<&'m Field, SchemaError> {
        model
            .get_field(column)
            .ok_or_else(|| SchemaError::MissingField {
                table: model.table.clone(),
                column: column.to_owned(),
                side,
            })
    }
}

/// Renders a sea-query statement with the dialect's builder.
macro_rules! render {
    ($dialect:expr, $statement:expr) => {
        match $dialect {
            Dialect::Sqlite => $statement.to_string(sea_query::SqliteQueryBuilder),
            Dialect::Postgres => $statement.to_string(sea_query::PostgresQueryBuilder),
            Dialect::Mysql => $statement.to_string(sea_query::MysqlQueryBuilder),
        }
    };
}
pub(super) use render;

/// Quotes an identifier for statements written by hand.
pub(super) fn quote(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
        Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// The sea-query type of a field on one backend.
pub(super) fn column_type(dialect: Dialect, field: &Field) -> ColumnType {
    match &field.ty {
        Type::String(length) => ColumnType::string(*length),
        Type::Char(length) => ColumnType::Char(*length),
        Type::Text => ColumnType::Text,
        // SQLite numbers rows only through a column declared exactly
        // `INTEGER PRIMARY KEY`.
        ty if field.auto_increment && dialect == Dialect::Sqlite && ty.is_integer() => {
            ColumnType::Integer
        }
        Type::TinyInteger => ColumnType::TinyInteger,
        Type::SmallInteger => ColumnType::SmallInteger,
        Type::Integer => ColumnType::Integer,
        Type::BigInteger => ColumnType::BigInteger,
        // PostgreSQL's identity columns take only its three signed types, so
        // the unsigned ones map to the signed type wide enough for them (the
        // same types sea-query picks for them without auto-increment).
        Type::TinyUnsigned if dialect == Dialect::Postgres => ColumnType::SmallInteger,
        Type::SmallUnsigned if dialect == Dialect::Postgres => ColumnType::Integer,
        Type::Unsigned | Type::BigUnsigned if dialect == Dialect::Postgres => {
            ColumnType::BigInteger
        }
        Type::TinyUnsigned => ColumnType::TinyUnsigned,
        Type::SmallUnsigned => ColumnType::SmallUnsigned,
        Type::Unsigned => ColumnType::Unsigned,
        Type::BigUnsigned => ColumnType::BigUnsigned,
        Type::Float => ColumnType::Float,
        Type::Double => ColumnType::Double,
        Type::Decimal(precision) => ColumnType::Decimal(*precision),
        Type::Boolean => ColumnType::Boolean,
        Type::Date => ColumnType::Date,
        Type::Time => ColumnType::Time,
        Type::DateTime => ColumnType::DateTime,
        Type::TimestampTz => ColumnType::TimestampWithTimeZone,
        Type::Uuid => ColumnType::Uuid,
        Type::Json => ColumnType::Json,
        Type::JsonBinary => ColumnType::JsonBinary,
        Type::Binary => ColumnType::Blob,
        Type::Enum { name, variants } => match dialect {
            Dialect::Sqlite => ColumnType::Text,
            // sea-query writes the type's name unquoted; quoting it here
            // keeps a mixed-case name the same as in `CREATE TYPE`.
            Dialect::Postgres => ColumnType::custom(Alias::new(quote(dialect, name))),
            // sea-query writes MySQL enum values between quotes without
            // escaping them.
            Dialect::Mysql => ColumnType::Enum {
                name: Alias::new(name.as_str()).into(),
                variants: variants
                    .iter()
                    .map(|variant| {
                        Alias::new(variant.replace('\\', "\\\\").replace('\'', "''")).into()
                    })
                    .collect(),
            },
        },
        Type::Custom(spelling) => ColumnType::custom(Alias::new(spelling.as_str())),
    }
}

/// The column type as the backend spells it, to compare two fields and to
/// write casts.
pub(super) fn type_sql(dialect: Dialect, field: &Field) -> String {
    let ty = column_type(dialect, field);
    let mut sql = String::new();
    match dialect {
        Dialect::Sqlite => TableBuilder::prepare_column_type(&SqliteQueryBuilder, &ty, &mut sql),
        Dialect::Postgres => PostgresQueryBuilder.prepare_column_type(&ty, &mut sql),
        Dialect::Mysql => MysqlQueryBuilder.prepare_column_type(&ty, &mut sql),
    }
    sql
}

/// A default as an SQL expression: values become literals quoted by
/// sea-query, `Expr` passes through.
pub(super) fn default_expr(default: &DefaultValue) -> Expr {
    match default {
        DefaultValue::Bool(value) => Expr::val(*value),
        DefaultValue::Int(value) => Expr::val(*value),
        DefaultValue::Float(value) => Expr::val(*value),
        DefaultValue::Str(value) => Expr::val(value.as_str()),
        DefaultValue::Expr(sql) => Expr::cust(sql.clone()),
    }
}

/// Checks that an auto-increment field can be one.
fn check_auto_increment(model: &ModelState, field: &Field) -> Result<(), SchemaError> {
    if !field.auto_increment {
        return Ok(());
    }
    if !field.ty.is_integer() {
        return Err(SchemaError::AutoIncrementType {
            table: model.table.clone(),
            column: field.name.clone(),
            ty: field.ty.to_string(),
        });
    }
    if model.primary_key != [field.name.as_str()] {
        return Err(SchemaError::AutoIncrementNotPrimaryKey {
            table: model.table.clone(),
            column: field.name.clone(),
        });
    }
    Ok(())
}

/// Whether the primary key is declared on the field itself rather than as a
/// table constraint: an auto-increment key must be (SQLite's `INTEGER
/// PRIMARY KEY AUTOINCREMENT`), and the others never are, so that every
/// backend reads the same.
fn inline_primary_key(model: &ModelState, field: &Field) -> bool {
    field.auto_increment && model.primary_key == [field.name.as_str()]
}

/// A field's column definition: type, nullability, default and
/// auto-increment, without unique or key constraints (which are named
/// constraints of their own). `with_primary_key` adds an inline `PRIMARY
/// KEY` for an auto-increment key, in `CREATE TABLE` only.
pub(super) fn column_def(
    dialect: Dialect,
    model: &ModelState,
    field: &Field,
    with_primary_key: bool,
) -> Result<ColumnDef, SchemaError> {
    check_auto_increment(model, field)?;
    let mut column = ColumnDef::new_with_type(Alias::new(field.name.as_str()), {
        column_type(dialect, field)
    });
    if field.null {
        column.null();
    } else {
        column.not_null();
    }
    if let Some(default) = &field.default {
        column.default(default_expr(default));
    }
    if field.auto_increment {
        column.auto_increment();
    }
    if with_primary_key && inline_primary_key(model, field) {
        column.primary_key();
    }
    Ok(column)
}

fn action(action: Action) -> ForeignKeyAction {
    match action {
        Action::NoAction => ForeignKeyAction::NoAction,
        Action::Restrict => ForeignKeyAction::Restrict,
        Action::Cascade => ForeignKeyAction::Cascade,
        Action::SetNull => ForeignKeyAction::SetNull,
        Action::SetDefault => ForeignKeyAction::SetDefault,
    }
}

/// The named foreign key of `field` in `table`, if it has one.
pub(super) fn foreign_key(table: &str, field: &Field) -> Option<ForeignKeyCreateStatement> {
    let key = field.foreign_key.as_ref()?;
    let mut statement = SeaForeignKey::create();
    statement
        .name(key.constraint_name(table, &field.name))
        .from(Alias::new(table), Alias::new(field.name.as_str()))
        .to(
            Alias::new(key.table.as_str()),
            Alias::new(key.column.as_str()),
        );
    if key.on_delete != Action::NoAction {
        statement.on_delete(action(key.on_delete));
    }
    if key.on_update != Action::NoAction {
        statement.on_update(action(key.on_update));
    }
    Some(statement)
}

/// `ALTER TABLE ... ADD CONSTRAINT fk_... FOREIGN KEY ...` (not SQLite).
pub(super) fn add_foreign_key(dialect: Dialect, table: &str, field: &Field) -> Option<String> {
    foreign_key(table, field).map(|statement| render!(dialect, statement))
}

/// `ALTER TABLE ... DROP CONSTRAINT` / `DROP FOREIGN KEY` for the key of
/// `field`, if it has one (not SQLite).
pub(super) fn drop_foreign_key(dialect: Dialect, table: &str, field: &Field) -> Option<String> {
    let key = field.foreign_key.as_ref()?;
    Some(drop_foreign_key_named(
        dialect,
        table,
        &key.constraint_name(table, &field.name),
    ))
}

/// Drops the foreign key `name` of `table` (not SQLite).
pub(super) fn drop_foreign_key_named(dialect: Dialect, table: &str, name: &str) -> String {
    render!(
        dialect,
        SeaForeignKey::drop().name(name).table(Alias::new(table))
    )
}

/// `CREATE TABLE` for `model` under the name `name`: columns, primary key,
/// unique constraints and foreign keys, all inline.
pub(super) fn create_table(
    dialect: Dialect,
    model: &ModelState,
    name: &str,
) -> Result<String, SchemaError> {
    let mut statement = Table::create();
    statement.table(Alias::new(name));
    for field in &model.fields {
        statement.col(column_def(dialect, model, field, true)?);
    }
    let inline_key = model
        .fields
        .iter()
        .any(|field| inline_primary_key(model, field));
    if !model.primary_key.is_empty() && !inline_key {
        let mut key = SeaIndex::create();
        for column in &model.primary_key {
            key.col(Alias::new(column.as_str()));
        }
        statement.primary_key(&mut key);
    }
    for field in model.fields.iter().filter(|field| field.unique) {
        statement.index(
            SeaIndex::create()
                .name(unique_constraint_name(&model.table, &field.name))
                .col(Alias::new(field.name.as_str()))
                .unique(),
        );
    }
    for field in &model.fields {
        if let Some(mut key) = foreign_key(&model.table, field) {
            statement.foreign_key(&mut key);
        }
    }
    Ok(render!(dialect, statement))
}

/// `CREATE TABLE` then the model's indexes.
pub(super) fn create_model_common(
    dialect: Dialect,
    model: &ModelState,
) -> Result<Vec<String>, SchemaError> {
    let mut sql = vec![create_table(dialect, model, &model.table)?];
    sql.extend(
        model
            .indexes
            .iter()
            .map(|index| create_index(dialect, &model.table, index)),
    );
    Ok(sql)
}

pub(super) fn drop_table(dialect: Dialect, table: &str) -> String {
    render!(dialect, Table::drop().table(Alias::new(table)))
}

pub(super) fn rename_table(dialect: Dialect, old: &str, new: &str) -> String {
    render!(
        dialect,
        Table::rename().table(Alias::new(old), Alias::new(new))
    )
}

pub(super) fn rename_column(dialect: Dialect, table: &str, old: &str, new: &str) -> String {
    render!(
        dialect,
        Table::alter()
            .table(Alias::new(table))
            .rename_column(Alias::new(old), Alias::new(new))
    )
}

pub(super) fn add_column(
    dialect: Dialect,
    model: &ModelState,
    field: &Field,
) -> Result<String, SchemaError> {
    Ok(render!(
        dialect,
        Table::alter()
            .table(Alias::new(model.table.as_str()))
            .add_column(column_def(dialect, model, field, false)?)
    ))
}

pub(super) fn drop_column(dialect: Dialect, table: &str, column: &str) -> String {
    render!(
        dialect,
        Table::alter()
            .table(Alias::new(table))
            .drop_column(Alias::new(column))
    )
}

pub(super) fn create_index(dialect: Dialect, table: &str, index: &Index) -> String {
    let mut statement = SeaIndex::create();
    statement.name(index.name.as_str()).table(Alias::new(table));
    for column in &index.columns {
        statement.col(Alias::new(column.as_str()));
    }
    if index.unique {
        statement.unique();
    }
    render!(dialect, statement)
}

pub(super) fn drop_index(dialect: Dialect, table: &str, name: &str) -> String {
    render!(
        dialect,
        SeaIndex::drop().name(name).table(Alias::new(table))
    )
}

/// `UPDATE t SET col = default WHERE col IS NULL`, run before a column with
/// a default becomes `NOT NULL` (as Django does), so existing NULLs take the
/// default instead of failing the change.
pub(super) fn fill_nulls(
    dialect: Dialect,
    table: &str,
    old: &Field,
    new: &Field,
) -> Option<String> {
    let default = new.default.as_ref().filter(|_| old.null && !new.null)?;
    Some(render!(
        dialect,
        Query::update()
            .table(Alias::new(table))
            .value(Alias::new(new.name.as_str()), default_expr(default))
            .and_where(Expr::col(Alias::new(new.name.as_str())).is_null())
    ))
}

#[cfg(test)]
mod tests {
    use sea_orm::{DatabaseTransaction, DbErr};

    use super::*;
    use crate::db::migrations::{BoxFuture, DataStep};

    const APP: &str = "polls";

    /// The SQL of `operation` applied to `before`, and the state after it.
    fn sql(
        operation: &Operation,
        before: &ProjectState,
        backend: DbBackend,
    ) -> (Result<Vec<String>, SchemaError>, ProjectState) {
        let mut after = before.clone();
        operation
            .apply(APP, &mut after)
            .unwrap_or_else(|error| panic!("{error}"));
        (schema_sql(operation, APP, before, &after, backend), after)
    }

    fn state(models: &[ModelState]) -> ProjectState {
        let mut state = ProjectState::default();
        for model in models {
            Operation::CreateModel(model.clone())
                .apply(APP, &mut state)
                .unwrap_or_else(|error| panic!("{error}"));
        }
        state
    }

    fn noop(_: &DatabaseTransaction) -> BoxFuture<'_, Result<(), DbErr>> {
        Box::pin(async { Ok(()) })
    }

    #[test]
    fn run_sql_passes_its_statements_through_and_run_rust_has_none() {
        let raw = Operation::RunSql {
            forwards: vec!["SELECT 1".to_owned()],
            backwards: None,
        };
        let before = ProjectState::default();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
            assert_eq!(
                sql(&raw, &before, backend).0,
                Ok(vec!["SELECT 1".to_owned()])
            );
            let rust = Operation::RunRust(DataStep::new("seed", noop));
            assert_eq!(sql(&rust, &before, backend).0, Ok(Vec::new()));
        }
    }

    #[test]
    fn rejects_auto_increment_on_text_naming_the_column() {
        let model = ModelState::new("polls_tag")
            .field(Field::new("slug", Type::Text).auto_increment())
            .primary_key(&["slug"]);
        let error = sql(
            &Operation::CreateModel(model),
            &ProjectState::default(),
            DbBackend::Postgres,
        )
        .0
        .expect_err("text cannot auto-increment");
        assert!(matches!(error, SchemaError::AutoIncrementType { .. }));
        assert!(error.to_string().contains("`polls_tag.slug`"), "{error}");
    }

    #[test]
    fn rejects_auto_increment_outside_a_single_column_primary_key() {
        let model = ModelState::new("polls_tag")
            .field(Field::new("id", Type::Integer))
            .field(Field::new("rank", Type::Integer).auto_increment())
            .primary_key(&["id"]);
        let error = sql(
            &Operation::CreateModel(model),
            &ProjectState::default(),
            DbBackend::Sqlite,
        )
        .0
        .expect_err("only the primary key auto-increments");
        assert_eq!(
            error,
            SchemaError::AutoIncrementNotPrimaryKey {
                table: "polls_tag".to_owned(),
                column: "rank".to_owned()
            }
        );
    }

    #[test]
    fn reports_a_model_missing_from_the_states() {
        let operation = Operation::DeleteModel {
            table: "polls_gone".to_owned(),
        };
        let error = schema_sql(
            &operation,
            APP,
            &ProjectState::default(),
            &ProjectState::default(),
            DbBackend::MySql,
        )
        .expect_err("nothing to delete");
        assert_eq!(
            error,
            SchemaError::MissingModel {
                table: "polls_gone".to_owned(),
                side: "before"
            }
        );
    }

    #[test]
    fn sqlite_alter_that_declares_the_same_table_emits_nothing() {
        let before = state(&[ModelState::new("polls_vote")
            .field(Field::new("id", Type::BigInteger).auto_increment())
            .field(Field::new("count", Type::Integer))
            .primary_key(&["id"])]);
        let wider = Operation::AlterField {
            table: "polls_vote".to_owned(),
            field: Field::new("count", Type::BigInteger),
        };
        assert_eq!(sql(&wider, &before, DbBackend::Sqlite).0, Ok(Vec::new()));
        assert_eq!(
            sql(&wider, &before, DbBackend::Postgres).0,
            Ok(vec![
                r#"ALTER TABLE "polls_vote" ALTER COLUMN "count" TYPE bigint USING "count"::bigint"#
                    .to_owned()
            ])
        );
    }

    #[test]
    fn postgres_refuses_to_change_the_values_of_a_shared_enum() {
        let status = |variants: &[&str]| {
            Field::new(
                "status",
                Type::Enum {
                    name: "polls_status".to_owned(),
                    variants: variants.iter().map(|&v| v.to_owned()).collect(),
                },
            )
        };
        let before = state(&[
            ModelState::new("polls_a").field(status(&["x", "y"])),
            ModelState::new("polls_b").field(status(&["x", "y"])),
        ]);
        let operation = Operation::AlterField {
            table: "polls_a".to_owned(),
            field: status(&["x", "y", "z"]),
        };
        let error = sql(&operation, &before, DbBackend::Postgres)
            .0
            .expect_err("polls_b.status still uses the type");
        assert!(
            matches!(error, SchemaError::SharedEnumChanged { ref other, .. } if other == "polls_b.status")
        );
        // MySQL enums are inline, so each column changes alone.
        assert!(sql(&operation, &before, DbBackend::MySql).0.is_ok());
    }

    #[test]
    fn postgres_creates_a_shared_enum_type_once_and_drops_it_with_its_last_user() {
        let status = Field::new(
            "status",
            Type::Enum {
                name: "polls_status".to_owned(),
                variants: vec!["x".to_owned()],
            },
        );
        let first = ModelState::new("polls_a").field(status.clone());
        let (created, after_first) = sql(
            &Operation::CreateModel(first),
            &ProjectState::default(),
            DbBackend::Postgres,
        );
        assert!(created.unwrap_or_default()[0].starts_with("CREATE TYPE"));
        let second = ModelState::new("polls_b").field(status);
        let (created, after_second) = sql(
            &Operation::CreateModel(second),
            &after_first,
            DbBackend::Postgres,
        );
        assert_eq!(
            created.map(|sql| sql.len()),
            Ok(1),
            "the type exists already"
        );
        let delete = |table: &str| Operation::DeleteModel {
            table: table.to_owned(),
        };
        let (dropped, after_drop) = sql(&delete("polls_a"), &after_second, DbBackend::Postgres);
        assert_eq!(dropped.map(|sql| sql.len()), Ok(1), "polls_b still uses it");
        let (dropped, _) = sql(&delete("polls_b"), &after_drop, DbBackend::Postgres);
        assert_eq!(
            dropped,
            Ok(vec![
                r#"DROP TABLE "polls_b""#.to_owned(),
                r#"DROP TYPE "polls_status""#.to_owned()
            ])
        );
    }
}
