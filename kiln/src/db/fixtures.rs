//! Fixtures: Django's `dumpdata` and `loaddata`, in Django's JSON format.
//!
//! Both work from Kiln's [`ProjectState`] (the tables the migrations
//! build), so they need no entity types and see every column, whatever the
//! models declare. A fixture is a JSON array of entries:
//!
//! ```json
//! [
//!   {"model": "polls.polls_question", "pk": 1,
//!    "fields": {"question_text": "What's new?", "pub_date": "2024-05-01T09:30:00Z"}},
//!   {"model": "polls.polls_vote", "pk": {"choice_id": 1, "voter_id": 7},
//!    "fields": {"weight": 1}}
//! ]
//! ```
//!
//! - `model` is `app.table`.
//! - `pk` is the primary key's value; for a composite key, an object of its
//!   columns (a list of values in key order is accepted when loading); for
//!   a table without one, `null`. `fields` holds the other columns.
//! - Values by column [`Type`]: integers and floats are JSON numbers (NaN
//!   and infinities are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`);
//!   decimals are strings (`"12.50"`, with the column's scale); booleans
//!   are booleans; dates, times and date-times are ISO 8601 strings
//!   (`"2024-05-01"`, `"09:30:00.25"`, `"2024-05-01T09:30:00"`, and for
//!   [`Type::TimestampTz`] UTC with a `Z`); UUIDs are hyphenated strings;
//!   JSON columns hold their JSON value; binary columns are base64 strings;
//!   enums and custom types are strings. SQL NULL is `null` (so a JSON
//!   column's JSON `null` reads back as SQL NULL).
//! - Entries come in dependency order (referenced tables first), each
//!   table's rows by primary key; object keys are sorted, as `serde_json`
//!   keeps them.
//!
//! [`load`] inserts a fixture in one transaction: every entry or none. It
//! checks every entry before the first insert, orders the entries by
//! dependency (and rows that reference rows of their own table after
//! them), and on PostgreSQL moves each loaded table's sequence past the
//! largest key, so that the next insert does not collide. Errors name the
//! entry, the model, the field and the fix.
//!
//! # Examples
//!
//! ```
//! use kiln::db::fixtures::{self, Selector};
//! use kiln::db::migrations::{Field, ModelState, ProjectState, Type};
//! use kiln::db::ConnectionTrait;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut state = ProjectState::default();
//! state.models.insert(
//!     ("polls".into(), "polls_question".into()),
//!     ModelState::new("polls_question")
//!         .field(Field::new("id", Type::BigInteger).auto_increment())
//!         .field(Field::new("question_text", Type::string(200)))
//!         .primary_key(&["id"]),
//! );
//! let db = kiln::db::sea_orm::Database::connect("sqlite::memory:").await?;
//! db.execute_unprepared(
//!     "CREATE TABLE polls_question (id integer PRIMARY KEY, question_text varchar(200) NOT NULL)",
//! )
//! .await?;
//!
//! let fixture = serde_json::json!([
//!     {"model": "polls.polls_question", "pk": 1, "fields": {"question_text": "What's new?"}}
//! ]);
//! let report = fixtures::load(&db, &state, &fixture).await?;
//! assert_eq!(report.objects, 1);
//!
//! let dumped = fixtures::dump(&db, &state, &["polls".parse::<Selector>()?]).await?;
//! assert_eq!(dumped, fixture);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use sea_orm::sea_query::prelude::{Decimal, Uuid, chrono};
use sea_orm::sea_query::{Alias, Expr, Func, Order, Query};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, SqlErr, TransactionSession, TransactionTrait,
    TryGetable,
};
use serde_json::{Map, Number, Value as Json};

use super::migrations::{Field, ModelState, ProjectState, Type};

/// What to dump: a whole app, or one of its tables.
///
/// Parsed from `app` or `app.table`, as Django's `dumpdata` arguments:
///
/// ```
/// use kiln::db::fixtures::Selector;
///
/// assert_eq!("polls".parse::<Selector>().unwrap(), Selector::App("polls".into()));
/// assert_eq!(
///     "polls.polls_choice".parse::<Selector>().unwrap(),
///     Selector::Model { app: "polls".into(), table: "polls_choice".into() }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every table of an app.
    App(String),
    /// One table of an app.
    Model { app: String, table: String },
}

impl FromStr for Selector {
    type Err = FixtureError;

    fn from_str(text: &str) -> Result<Self, FixtureError> {
        match text.split_once('.') {
            _ if text.is_empty() => Err(FixtureError::Selection {
                selector: String::new(),
                problem: "an empty selection".to_owned(),
                fix: "name an app (`polls`) or a table of an app (`polls.polls_question`)"
                    .to_owned(),
            }),
            Some((app, table)) => Ok(Self::Model {
                app: app.to_owned(),
                table: table.to_owned(),
            }),
            None => Ok(Self::App(text.to_owned())),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::App(app) => f.write_str(app),
            Self::Model { app, table } => write!(f, "{app}.{table}"),
        }
    }
}

/// What [`load`] inserted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows inserted.
    pub objects: usize,
    /// Rows inserted per `app.table`.
    pub models: BTreeMap<String, usize>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Installed {} object(s) into {} model(s)",
            self.objects,
            self.models.len()
        )
    }
}

/// A fixture that cannot be dumped or loaded. When loading, nothing has
/// been inserted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// A [`Selector`] names no app or table of the project.
    #[error("cannot dump `{selector}`: {problem}\n  fix: {fix}")]
    Selection {
        selector: String,
        problem: String,
        fix: String,
    },
    /// The fixture is not an array of `{"model", "pk", "fields"}` objects.
    #[error("{}{problem}\n  fix: {fix}", entry_prefix(*index))]
    Format {
        /// The entry, when the problem is in one.
        index: Option<usize>,
        problem: String,
        fix: String,
    },
    /// An entry names a model the project does not have.
    #[error("fixture entry {index}: unknown model `{model}`\n  fix: {fix}")]
    UnknownModel {
        index: usize,
        model: String,
        fix: String,
    },
    /// An entry names a column its table does not have.
    #[error("fixture entry {index} ({model}): unknown field `{field}`\n  fix: {fix}")]
    UnknownField {
        index: usize,
        model: String,
        field: String,
        fix: String,
    },
    /// A value does not fit its column's type.
    #[error("fixture entry {index} ({model}), field `{field}`: {problem}\n  fix: {fix}")]
    InvalidValue {
        index: usize,
        model: String,
        field: String,
        problem: String,
        fix: String,
    },
    /// The database refused an entry's row (a unique or foreign key
    /// constraint, a value out of range); the transaction was rolled back.
    #[error(
        "fixture entry {index} ({model}): the database refused the row, nothing was loaded: {source}\n  fix: {fix}"
    )]
    Constraint {
        index: usize,
        model: String,
        fix: String,
        source: DbErr,
    },
    /// The database failed outside any one entry (reading a table while
    /// dumping, `BEGIN`, `COMMIT`).
    #[error("{context}: {source}")]
    Database { context: String, source: DbErr },
}

fn entry_prefix(index: Option<usize>) -> String {
    index.map_or_else(
        || "fixture: ".to_owned(),
        |index| format!("fixture entry {index}: "),
    )
}

/// The rows of the selected tables (every table when `selection` is
/// empty) as a Django fixture: see the [module docs](self) for the format.
///
/// # Errors
///
/// [`FixtureError::Selection`] for a selector that names nothing;
/// [`FixtureError::Database`] when a table cannot be read.
pub async fn dump<C>(
    db: &C,
    state: &ProjectState,
    selection: &[Selector],
) -> Result<Json, FixtureError>
where
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let models = dependency_order(selected(state, selection)?);
    let mut entries = Vec::new();
    for (app, model) in models {
        let label = format!("{app}.{}", model.table);
        let mut query = Query::select();
        query.from(Alias::new(&model.table));
        let plans: Vec<Read> = model
            .fields
            .iter()
            .map(|field| {
                let (expr, read) = read_plan(field, backend);
                query.expr_as(expr, Alias::new(&field.name));
                read
            })
            .collect();
        for column in order_columns(model) {
            query.order_by(Alias::new(column), Order::Asc);
        }
        let rows = db
            .query_all(&query)
            .await
            .map_err(|source| FixtureError::Database {
                context: format!("dumping {label}"),
                source,
            })?;
        for row in rows {
            let mut values = Map::new();
            for (index, (field, read)) in model.fields.iter().zip(&plans).enumerate() {
                let value = read_value(&row, index, *read, &field.ty).map_err(|source| {
                    FixtureError::Database {
                        context: format!("dumping {label}, column `{}`", field.name),
                        source,
                    }
                })?;
                values.insert(field.name.clone(), value);
            }
            entries.push(entry_json(&label, model, values));
        }
    }
    Ok(Json::Array(entries))
}

/// `{"model", "pk", "fields"}` from a row's column values.
fn entry_json(label: &str, model: &ModelState, mut values: Map<String, Json>) -> Json {
    let pk = match model.primary_key.as_slice() {
        [] => Json::Null,
        [column] => values.remove(column).unwrap_or(Json::Null),
        columns => Json::Object(
            columns
                .iter()
                .map(|column| {
                    let value = values.remove(column).unwrap_or(Json::Null);
                    (column.clone(), value)
                })
                .collect(),
        ),
    };
    let mut entry = Map::new();
    entry.insert("model".to_owned(), Json::String(label.to_owned()));
    entry.insert("pk".to_owned(), pk);
    entry.insert("fields".to_owned(), Json::Object(values));
    Json::Object(entry)
}

/// The primary key; for a table without one, every column that can be
/// compared (JSON cannot on PostgreSQL), for a stable order.
fn order_columns(model: &ModelState) -> Vec<&str> {
    if model.primary_key.is_empty() {
        model
            .fields
            .iter()
            .filter(|field| !matches!(field.ty, Type::Json | Type::JsonBinary | Type::Custom(_)))
            .map(|field| field.name.as_str())
            .collect()
    } else {
        model.primary_key.iter().map(String::as_str).collect()
    }
}

fn selected<'a>(
    state: &'a ProjectState,
    selection: &[Selector],
) -> Result<Vec<(&'a str, &'a ModelState)>, FixtureError> {
    let all = || {
        state
            .models
            .iter()
            .map(|((app, _), model)| (app.as_str(), model))
    };
    if selection.is_empty() {
        return Ok(all().collect());
    }
    let mut chosen: Vec<(&str, &ModelState)> = Vec::new();
    for selector in selection {
        let matches: Vec<_> = all()
            .filter(|(app, model)| match selector {
                Selector::App(name) => app == name,
                Selector::Model { app: name, table } => app == name && &model.table == table,
            })
            .collect();
        if matches.is_empty() {
            let apps: Vec<&str> = {
                let mut apps: Vec<&str> = all().map(|(app, _)| app).collect();
                apps.dedup();
                apps
            };
            let (problem, fix) = match selector {
                Selector::App(_) => (
                    "no app has this label".to_owned(),
                    format!("use one of: {}", apps.join(", ")),
                ),
                Selector::Model { app, .. } => (
                    "no table of this app has this name".to_owned(),
                    format!(
                        "use `app.table` with one of: {}",
                        model_labels(all().filter(|(owner, _)| owner == app))
                    ),
                ),
            };
            return Err(FixtureError::Selection {
                selector: selector.to_string(),
                problem,
                fix,
            });
        }
        for found in matches {
            if !chosen.iter().any(|(_, model)| model.table == found.1.table) {
                chosen.push(found);
            }
        }
    }
    Ok(chosen)
}

fn model_labels<'a>(models: impl Iterator<Item = (&'a str, &'a ModelState)>) -> String {
    let labels: Vec<String> = models
        .map(|(app, model)| format!("{app}.{}", model.table))
        .collect();
    if labels.is_empty() {
        "(none)".to_owned()
    } else {
        labels.join(", ")
    }
}

/// Referenced tables first; otherwise by app and table name. A cycle of
/// foreign keys is broken at the first table by name.
fn dependency_order<'a>(
    mut pending: Vec<(&'a str, &'a ModelState)>,
) -> Vec<(&'a str, &'a ModelState)> {
    pending.sort_by(|a, b| (a.0, &a.1.table).cmp(&(b.0, &b.1.table)));
    let mut ordered: Vec<(&str, &ModelState)> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, model)| {
                model.fields.iter().all(|field| {
                    field.foreign_key.as_ref().is_none_or(|key| {
                        key.table == model.table
                            || !pending.iter().any(|(_, other)| other.table == key.table)
                    })
                })
            })
            .unwrap_or(0);
        ordered.push(pending.remove(ready));
    }
    ordered
}

/// How one column is selected and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    I64,
    U64,
    /// An integer as text (PostgreSQL's unsigned 64-bit columns may be
    /// `numeric`).
    IntegerText,
    F32,
    F64,
    /// An integer 0 / 1 (MySQL's `TINYINT(1)`, SQLite's integers).
    IntBool,
    Bool,
    Text,
    /// A decimal as text, rescaled to the column's scale.
    DecimalText,
    Date,
    Time,
    DateTime,
    TimestampTz,
    Uuid,
    JsonText,
    Bytes,
}

fn read_plan(field: &Field, backend: DbBackend) -> (Expr, Read) {
    let column = || Expr::col(Alias::new(&field.name));
    let cast = |to: &str| Expr::from(Func::cast_as(column(), Alias::new(to)));
    let text = || match backend {
        DbBackend::MySql => cast("CHAR"),
        _ => cast("TEXT"),
    };
    let plain = |read| (column(), read);
    let unsigned = matches!(
        field.ty,
        Type::TinyUnsigned | Type::SmallUnsigned | Type::Unsigned | Type::BigUnsigned
    );
    match (&field.ty, backend) {
        (Type::BigUnsigned, DbBackend::Postgres) => (text(), Read::IntegerText),
        (ty, DbBackend::Postgres) if ty.is_integer() => (cast("BIGINT"), Read::I64),
        (ty, DbBackend::MySql) if ty.is_integer() && unsigned => (cast("UNSIGNED"), Read::U64),
        (ty, DbBackend::MySql) if ty.is_integer() => (cast("SIGNED"), Read::I64),
        (ty, _) if ty.is_integer() => plain(Read::I64),
        (Type::Float, DbBackend::Postgres | DbBackend::MySql) => plain(Read::F32),
        (Type::Float | Type::Double, _) => plain(Read::F64),
        (Type::Decimal(_), _) => (text(), Read::DecimalText),
        (Type::Boolean, DbBackend::Postgres) => plain(Read::Bool),
        (Type::Boolean, DbBackend::MySql) => (cast("SIGNED"), Read::IntBool),
        (Type::Boolean, _) => plain(Read::IntBool),
        (Type::Date, _) => plain(Read::Date),
        (Type::Time, _) => plain(Read::Time),
        (Type::DateTime, _) => plain(Read::DateTime),
        (Type::TimestampTz, _) => plain(Read::TimestampTz),
        (Type::Uuid, _) => plain(Read::Uuid),
        (Type::Json | Type::JsonBinary, DbBackend::Sqlite) => plain(Read::JsonText),
        (Type::Json | Type::JsonBinary, _) => (text(), Read::JsonText),
        (Type::Binary, _) => plain(Read::Bytes),
        (Type::Enum { .. } | Type::Custom(_), DbBackend::Sqlite) => (cast("TEXT"), Read::Text),
        (Type::Enum { .. } | Type::Custom(_), _) => (text(), Read::Text),
        (Type::String(_) | Type::Char(_) | Type::Text, _) => plain(Read::Text),
        // Every integer type is matched above; the compiler cannot tell.
        (_, _) => plain(Read::Text),
    }
}

fn get<T: TryGetable>(row: &QueryResult, index: usize) -> Result<Option<T>, DbErr> {
    row.try_get_by_index::<Option<T>>(index)
}

/// `first`, or when its type does not match the column, `second`.
fn get_either<A: TryGetable, B: TryGetable>(
    row: &QueryResult,
    index: usize,
) -> Result<Option<Result<A, B>>, DbErr> {
    match get::<A>(row, index) {
        Ok(value) => Ok(value.map(Ok)),
        Err(error) => get::<B>(row, index)
            .map(|value| value.map(Err))
            .map_err(|_| error),
    }
}

fn read_value(row: &QueryResult, index: usize, read: Read, ty: &Type) -> Result<Json, DbErr> {
    let value = match read {
        Read::I64 => get::<i64>(row, index)?.map(Json::from),
        Read::U64 => get::<u64>(row, index)?.map(Json::from),
        Read::IntegerText => get::<String>(row, index)?.map(|text| {
            text.parse::<i64>().map_or_else(
                |_| {
                    text.parse::<u64>()
                        .map_or(Json::String(text.clone()), Json::from)
                },
                Json::from,
            )
        }),
        Read::F32 => get_either::<f32, f64>(row, index)?.map(|value| match value {
            // f32's shortest decimal form, so that a `REAL` 0.1 dumps as 0.1.
            Ok(single) => float_json(single.to_string().parse().unwrap_or(f64::NAN)),
            Err(double) => float_json(double),
        }),
        Read::F64 => get_either::<f64, f32>(row, index)?
            .map(|value| float_json(value.unwrap_or_else(f64::from))),
        Read::Bool => get::<bool>(row, index)?.map(Json::Bool),
        Read::IntBool => get::<i64>(row, index)?.map(|value| Json::Bool(value != 0)),
        Read::Text => get::<String>(row, index)?.map(Json::String),
        Read::DecimalText => get::<String>(row, index)?.map(|text| {
            let scale = match ty {
                Type::Decimal(Some((_, scale))) => Some(*scale),
                _ => None,
            };
            Json::String(decimal_text(&text, scale))
        }),
        Read::Date => get_either::<chrono::NaiveDate, String>(row, index)?
            .map(|value| text_or(value, |date| date.format("%Y-%m-%d").to_string())),
        Read::Time => get_either::<chrono::NaiveTime, String>(row, index)?
            .map(|value| text_or(value, |time| time.format("%H:%M:%S%.f").to_string())),
        Read::DateTime => get_either::<chrono::NaiveDateTime, String>(row, index)?
            .map(|value| text_or(value, |at| at.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
        Read::TimestampTz => get_either::<chrono::DateTime<chrono::Utc>, String>(row, index)?
            .map(|value| text_or(value, |at| at.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())),
        Read::Uuid => get_either::<Uuid, String>(row, index)?
            .map(|value| text_or(value, |uuid| uuid.hyphenated().to_string())),
        Read::JsonText => get_either::<String, Vec<u8>>(row, index)?.map(|value| {
            let text = value.unwrap_or_else(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        }),
        Read::Bytes => {
            get::<Vec<u8>>(row, index)?.map(|bytes| Json::String(base64::encode(&bytes)))
        }
    };
    Ok(value.unwrap_or(Json::Null))
}

fn text_or<T>(value: Result<T, String>, format: impl FnOnce(T) -> String) -> Json {
    Json::String(value.map_or_else(|text| text, format))
}

fn float_json(value: f64) -> Json {
    Number::from_f64(value).map_or_else(
        || {
            Json::String(
                if value.is_nan() {
                    "NaN"
                } else if value > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        Json::Number,
    )
}

/// `text` with `scale` digits after the point when it is a decimal that
/// fits `rust_decimal` (SQLite stores `12.50` as the REAL 12.5); as it is
/// otherwise.
fn decimal_text(text: &str, scale: Option<u32>) -> String {
    let Some(scale) = scale else {
        return text.to_owned();
    };
    match Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text)) {
        Ok(mut value) => {
            value.rescale(scale);
            value.to_string()
        }
        Err(_) => text.to_owned(),
    }
}

/// One checked entry, ready to insert.
#[derive(Debug)]
struct Row<'a> {
    index: usize,
    label: String,
    model: &'a ModelState,
    /// Column values as given, for ordering rows of self-referencing tables.
    raw: HashMap<&'a str, &'a Json>,
    columns: Vec<(&'a str, Expr)>,
}

/// Inserts a fixture's rows in one transaction (a savepoint when `db` is a
/// transaction already): every entry, or none.
///
/// See the [module docs](self) for the format. Columns an entry leaves out
/// take their database default; an auto-increment key given as `null` (or
/// left out) is numbered by the database.
///
/// # Errors
///
/// [`FixtureError::Format`], [`UnknownModel`](FixtureError::UnknownModel),
/// [`UnknownField`](FixtureError::UnknownField) or
/// [`InvalidValue`](FixtureError::InvalidValue) for the first entry that
/// does not fit the project, before anything is inserted;
/// [`FixtureError::Constraint`] for the first row the database refuses,
/// after which the transaction is rolled back.
pub async fn load<C>(
    db: &C,
    state: &ProjectState,
    fixture: &Json,
) -> Result<LoadReport, FixtureError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let backend = db.get_database_backend();
    let entries = fixture.as_array().ok_or_else(|| FixtureError::Format {
        index: None,
        problem: format!(
            "expected a JSON array of entries, found {}",
            kind_of(fixture)
        ),
        fix: r#"write the fixture as [{"model": "app.table", "pk": 1, "fields": {...}}, ...]"#
            .to_owned(),
    })?;
    let mut rows = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        rows.push(check_entry(index, entry, state, backend)?);
    }
    let rows = load_order(rows);

    let database = |context: &str| {
        let context = context.to_owned();
        move |source| FixtureError::Database { context, source }
    };
    let tx = db
        .begin()
        .await
        .map_err(database("starting the fixture's transaction"))?;
    let mut report = LoadReport::default();
    for row in &rows {
        let mut insert = Query::insert();
        insert.into_table(Alias::new(&row.model.table));
        if row.columns.is_empty() {
            insert.or_default_values();
        } else {
            insert.columns(row.columns.iter().map(|(name, _)| Alias::new(*name)));
            insert.values_panic(row.columns.iter().map(|(_, value)| value.clone()));
        }
        if let Err(source) = tx.execute(&insert).await {
            // Rolled back explicitly rather than on drop, so that the
            // connection is clean when it returns to the pool.
            let _ = tx.rollback().await;
            return Err(FixtureError::Constraint {
                index: row.index,
                model: row.label.clone(),
                fix: constraint_fix(&source),
                source,
            });
        }
        report.objects += 1;
        *report.models.entry(row.label.clone()).or_default() += 1;
    }
    if backend == DbBackend::Postgres {
        let mut reset: Vec<&ModelState> = rows.iter().map(|row| row.model).collect();
        reset.sort_by(|a, b| a.table.cmp(&b.table));
        reset.dedup_by(|a, b| a.table == b.table);
        for model in reset {
            for sql in sequence_resets(model) {
                if let Err(source) = tx.execute_unprepared(&sql).await {
                    let _ = tx.rollback().await;
                    return Err(FixtureError::Database {
                        context: format!("resetting the sequence of `{}`", model.table),
                        source,
                    });
                }
            }
        }
    }
    tx.commit()
        .await
        .map_err(database("committing the fixture"))?;
    Ok(report)
}

/// `setval` for each integer key column PostgreSQL may number with a
/// sequence (serial or identity); a column without one yields NULL.
fn sequence_resets(model: &ModelState) -> Vec<String> {
    let single_key = match model.primary_key.as_slice() {
        [key] => Some(key.as_str()),
        _ => None,
    };
    model
        .fields
        .iter()
        .filter(|field| {
            field.ty.is_integer() && (field.auto_increment || single_key == Some(&*field.name))
        })
        .map(|field| {
            let table = quote_postgres(&model.table);
            let column = quote_postgres(&field.name);
            format!(
                "SELECT setval(pg_get_serial_sequence('{}', '{}'), COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table}",
                table.replace('\'', "''"),
                field.name.replace('\'', "''"),
            )
        })
        .collect()
}

fn quote_postgres(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn constraint_fix(error: &DbErr) -> String {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            "a row with this key or unique value exists already (in the database or earlier in the fixture): load into an empty table, or change the entry's key".to_owned()
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            "the row this entry references does not exist: add it to the fixture (or load its fixture first)".to_owned()
        }
        _ => "check the entry's values against the column definitions in the message".to_owned(),
    }
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn check_entry<'a>(
    index: usize,
    entry: &'a Json,
    state: &'a ProjectState,
    backend: DbBackend,
) -> Result<Row<'a>, FixtureError> {
    let format = |problem: String, fix: &str| FixtureError::Format {
        index: Some(index),
        problem,
        fix: fix.to_owned(),
    };
    let object = entry.as_object().ok_or_else(|| {
        format(
            format!("expected an object, found {}", kind_of(entry)),
            r#"write each entry as {"model": "app.table", "pk": 1, "fields": {...}}"#,
        )
    })?;
    let label = object.get("model").and_then(Json::as_str).ok_or_else(|| {
        format(
            "no \"model\" string".to_owned(),
            r#"add "model": "app.table""#,
        )
    })?;
    let unknown_model = || {
        let known = model_labels(
            state
                .models
                .iter()
                .map(|((app, _), model)| (app.as_str(), model)),
        );
        let mut fix = format!("name a model as `app.table`; this project has: {known}");
        if let Some((app, _)) = state.find_table(label.rsplit('.').next().unwrap_or(label)) {
            fix = format!(
                "the table belongs to app `{app}`: write \"{app}.{}\"",
                label.rsplit('.').next().unwrap_or(label)
            );
        }
        FixtureError::UnknownModel {
            index,
            model: label.to_owned(),
            fix,
        }
    };
    let (app, table) = label.split_once('.').ok_or_else(unknown_model)?;
    let model = state.model(app, table).ok_or_else(unknown_model)?;
    for key in object.keys() {
        if !matches!(key.as_str(), "model" | "pk" | "fields") {
            return Err(format(
                format!("unexpected key `{key}`"),
                r#"an entry has only "model", "pk" and "fields""#,
            ));
        }
    }
    let fields = match object.get("fields") {
        None | Some(Json::Null) => &EMPTY,
        Some(Json::Object(fields)) => fields,
        Some(other) => {
            return Err(format(
                format!("\"fields\" is {}, not an object", kind_of(other)),
                r#"write "fields": {"column": value, ...}"#,
            ));
        }
    };

    let mut given: Vec<(&'a Field, &'a Json)> = Vec::new();
    let pk = object.get("pk").unwrap_or(&Json::Null);
    let key_fields: Vec<&Field> = model
        .primary_key
        .iter()
        .filter_map(|key| model.get_field(key))
        .collect();
    match (key_fields.as_slice(), pk) {
        (_, Json::Null) => {}
        ([], _) => {
            return Err(format(
                format!("`{label}` has no primary key, but the entry gives one"),
                r#"write "pk": null"#,
            ));
        }
        ([field], value) => given.push((field, value)),
        (fields, Json::Object(values)) => {
            for (name, value) in values {
                let field = fields
                    .iter()
                    .find(|field| &field.name == name)
                    .ok_or_else(|| FixtureError::UnknownField {
                        index,
                        model: label.to_owned(),
                        field: format!("pk.{name}"),
                        fix: format!(
                            "the primary key's columns are: {}",
                            model.primary_key.join(", ")
                        ),
                    })?;
                given.push((field, value));
            }
        }
        (fields, Json::Array(values)) if values.len() == fields.len() => {
            given.extend(fields.iter().copied().zip(values));
        }
        (_, other) => {
            return Err(format(
                format!(
                    "the primary key of `{label}` has several columns, and \"pk\" is {}",
                    kind_of(other)
                ),
                &format!(
                    "write \"pk\" as an object of {} (or a list in that order)",
                    model.primary_key.join(", ")
                ),
            ));
        }
    }
    for (name, value) in fields {
        let Some(field) = model.get_field(name) else {
            let mut known: Vec<&str> = model
                .fields
                .iter()
                .filter(|field| !model.is_primary_key(&field.name))
                .map(|field| field.name.as_str())
                .collect();
            known.sort_unstable();
            return Err(FixtureError::UnknownField {
                index,
                model: label.to_owned(),
                field: name.clone(),
                fix: format!("`{label}` has the fields: {}", known.join(", ")),
            });
        };
        if given.iter().any(|(known, _)| known.name == *name) {
            return Err(FixtureError::UnknownField {
                index,
                model: label.to_owned(),
                field: name.clone(),
                fix: format!("`{name}` is part of the primary key: give it once, in \"pk\""),
            });
        }
        given.push((field, value));
    }
    for field in &key_fields {
        if !field.auto_increment && !given.iter().any(|(known, _)| known.name == field.name) {
            return Err(FixtureError::InvalidValue {
                index,
                model: label.to_owned(),
                field: field.name.clone(),
                problem: "the primary key is missing".to_owned(),
                fix: "give the key as \"pk\" (only an auto-increment key may be left out)"
                    .to_owned(),
            });
        }
    }

    let mut raw = HashMap::new();
    let mut columns = Vec::with_capacity(given.len());
    for (field, value) in given {
        raw.insert(field.name.as_str(), value);
        if value.is_null() && field.auto_increment && model.is_primary_key(&field.name) {
            continue;
        }
        let expr = value_expr(field, value, backend).map_err(|(problem, fix)| {
            FixtureError::InvalidValue {
                index,
                model: label.to_owned(),
                field: field.name.clone(),
                problem,
                fix,
            }
        })?;
        columns.push((field.name.as_str(), expr));
    }
    Ok(Row {
        index,
        label: label.to_owned(),
        model,
        raw,
        columns,
    })
}

static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);

/// The SQL value of `value` for `field`, or what is wrong and the fix.
fn value_expr(field: &Field, value: &Json, backend: DbBackend) -> Result<Expr, (String, String)> {
    use sea_orm::sea_query::Value;

    let wrong = |expected: &str, example: &str| {
        (
            format!(
                "expected {expected} for a {} column, found {}",
                field.ty,
                describe(value)
            ),
            format!("write the value as {example}"),
        )
    };
    let cast = |value: Value, to: String| -> Expr {
        Func::cast_as(Expr::val(value), Alias::new(to)).into()
    };
    if value.is_null() {
        return if field.null || field.auto_increment {
            Ok(Expr::cust("NULL"))
        } else {
            Err((
                "null for a column that is NOT NULL".to_owned(),
                "give a value, or leave the field out to take the column's default".to_owned(),
            ))
        };
    }
    let expr = match &field.ty {
        ty if ty.is_integer() => {
            let (min, max): (i128, i128) = match ty {
                Type::TinyInteger => (i8::MIN.into(), i8::MAX.into()),
                Type::SmallInteger => (i16::MIN.into(), i16::MAX.into()),
                Type::Integer => (i32::MIN.into(), i32::MAX.into()),
                Type::TinyUnsigned => (0, u8::MAX.into()),
                Type::SmallUnsigned => (0, u16::MAX.into()),
                Type::Unsigned => (0, u32::MAX.into()),
                Type::BigUnsigned => (0, u64::MAX.into()),
                _ => (i64::MIN.into(), i64::MAX.into()),
            };
            let number = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))
                .ok_or_else(|| wrong("an integer", "a JSON number without fraction, such as 42"))?;
            if !(min..=max).contains(&number) {
                return Err((
                    format!(
                        "{number} is out of range for a {} column ({min} to {max})",
                        field.ty
                    ),
                    "use a value within the column's range".to_owned(),
                ));
            }
            match i64::try_from(number) {
                Ok(number) => Expr::val(number),
                Err(_) if backend == DbBackend::MySql => {
                    Expr::val(u64::try_from(number).unwrap_or(u64::MAX))
                }
                Err(_) => {
                    return Err((
                        format!(
                            "{number} does not fit the signed 64-bit integers {backend:?} stores"
                        ),
                        "use a value up to 9223372036854775807".to_owned(),
                    ));
                }
            }
        }
        Type::Float | Type::Double => {
            let number = match value {
                Json::Number(number) => number.as_f64(),
                Json::String(text) => match text.as_str() {
                    "NaN" => Some(f64::NAN),
                    "Infinity" => Some(f64::INFINITY),
                    "-Infinity" => Some(f64::NEG_INFINITY),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| {
                wrong(
                    "a number",
                    "a JSON number such as 2.5 (or \"NaN\", \"Infinity\", \"-Infinity\")",
                )
            })?;
            Expr::val(number)
        }
        Type::Decimal(_) => {
            let text = match value {
                Json::String(text) => text.trim().to_owned(),
                Json::Number(number) => number.to_string(),
                _ => String::new(),
            };
            if !is_decimal(&text) {
                return Err(wrong("a decimal string", "a string such as \"12.50\""));
            }
            match backend {
                DbBackend::Postgres => cast(Value::from(text), "NUMERIC".to_owned()),
                _ => Expr::val(text),
            }
        }
        Type::Boolean => Expr::val(
            value
                .as_bool()
                .ok_or_else(|| wrong("a boolean", "true or false"))?,
        ),
        Type::Date => {
            let text = value.as_str().unwrap_or_default();
            let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| wrong("an ISO 8601 date", "\"2024-05-01\""))?;
            Expr::val(date)
        }
        Type::Time => {
            let text = value.as_str().unwrap_or_default();
            let time = chrono::NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveTime::parse_from_str(text, "%H:%M"))
                .map_err(|_| wrong("an ISO 8601 time", "\"09:30:00\" or \"09:30:00.250\""))?;
            Expr::val(time)
        }
        Type::DateTime => {
            let at = parse_datetime(value.as_str().unwrap_or_default())
                .map(|(at, _)| at)
                .ok_or_else(|| wrong("an ISO 8601 date and time", "\"2024-05-01T09:30:00\""))?;
            Expr::val(at)
        }
        Type::TimestampTz => {
            let at = parse_datetime(value.as_str().unwrap_or_default())
                .map(|(naive, offset)| {
                    // A time without offset is taken as UTC.
                    naive - chrono::Duration::seconds(offset.into())
                })
                .ok_or_else(|| {
                    wrong(
                        "an ISO 8601 date and time",
                        "\"2024-05-01T09:30:00Z\" (or with an offset, +02:00)",
                    )
                })?;
            Expr::val(chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(
                at,
                chrono::Utc,
            ))
        }
        Type::Uuid => {
            let uuid = value
                .as_str()
                .and_then(|text| Uuid::parse_str(text).ok())
                .ok_or_else(|| {
                    wrong("a UUID string", "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"")
                })?;
            Expr::val(uuid)
        }
        Type::Json | Type::JsonBinary => {
            let text = value.to_string();
            match (backend, &field.ty) {
                (DbBackend::Postgres, Type::Json) => cast(Value::from(text), "JSON".to_owned()),
                (DbBackend::Postgres, _) => cast(Value::from(text), "JSONB".to_owned()),
                _ => Expr::val(text),
            }
        }
        Type::Binary => {
            let bytes = value.as_str().and_then(base64::decode).ok_or_else(|| {
                wrong(
                    "a base64 string",
                    "the bytes in standard base64, such as \"S2lsbg==\"",
                )
            })?;
            Expr::val(bytes)
        }
        Type::Enum { name, variants } => {
            let text = value
                .as_str()
                .filter(|text| variants.iter().any(|variant| variant == text))
                .ok_or_else(|| {
                    wrong(
                        &format!("one of {}", variants.join(", ")),
                        "one of the enum's values, as a string",
                    )
                })?;
            match backend {
                DbBackend::Postgres => cast(Value::from(text), quote_postgres(name)),
                _ => Expr::val(text),
            }
        }
        Type::Custom(spelling) => {
            let text = match value {
                Json::String(text) => text.clone(),
                Json::Number(_) | Json::Bool(_) => value.to_string(),
                _ => {
                    return Err(wrong(
                        "a string",
                        "the value as the database writes it, in a string",
                    ));
                }
            };
            match backend {
                DbBackend::Postgres => cast(Value::from(text), spelling.clone()),
                _ => Expr::val(text),
            }
        }
        Type::String(_) | Type::Char(_) | Type::Text => Expr::val(
            value
                .as_str()
                .ok_or_else(|| wrong("a string", "a JSON string"))?,
        ),
        // Every integer type is matched above; the compiler cannot tell.
        _ => return Err(wrong("a value", "a JSON value")),
    };
    Ok(expr)
}

/// `2024-05-01T09:30:00[.fff][Z|±hh:mm]` (or with a space for the `T`),
/// and the offset in seconds.
fn parse_datetime(text: &str) -> Option<(chrono::NaiveDateTime, i32)> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some((at.naive_local(), at.offset().local_minus_utc()));
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
    .map(|at| (at, 0))
}

/// `[+-]digits[.digits][e[+-]digits]`, what every backend's DECIMAL parses.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction) && exponent_ok
}

fn describe(value: &Json) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!(
            "{} {}…",
            kind_of(value),
            text.chars().take(40).collect::<String>()
        )
    } else {
        format!("{} {text}", kind_of(value))
    }
}

/// Tables in dependency order, each table's rows in fixture order except
/// that a row referencing another row of its table comes after it.
fn load_order(rows: Vec<Row<'_>>) -> Vec<Row<'_>> {
    let mut by_table: BTreeMap<&str, Vec<Row<'_>>> = BTreeMap::new();
    let mut models: Vec<(&str, &ModelState)> = Vec::new();
    for row in rows {
        if !by_table.contains_key(row.model.table.as_str()) {
            models.push(("", row.model));
        }
        by_table
            .entry(row.model.table.as_str())
            .or_default()
            .push(row);
    }
    let mut ordered = Vec::new();
    for (_, model) in dependency_order(models) {
        let rows = by_table.remove(model.table.as_str()).unwrap_or_default();
        ordered.extend(parents_first(model, rows));
    }
    ordered
}

fn parents_first<'a>(model: &ModelState, rows: Vec<Row<'a>>) -> Vec<Row<'a>> {
    let self_keys: Vec<(&str, &str)> = model
        .fields
        .iter()
        .filter_map(|field| {
            let key = field.foreign_key.as_ref()?;
            (key.table == model.table).then_some((field.name.as_str(), key.column.as_str()))
        })
        .collect();
    if self_keys.is_empty() {
        return rows;
    }
    // Row position by (referenced column, value as JSON text).
    let mut position: HashMap<(&str, String), usize> = HashMap::new();
    for (at, row) in rows.iter().enumerate() {
        for (_, target) in &self_keys {
            if let Some(value) = row.raw.get(target) {
                position.insert((target, value.to_string()), at);
            }
        }
    }
    let parents = |at: usize| -> Vec<usize> {
        self_keys
            .iter()
            .filter_map(|(column, target)| {
                let value = rows[at].raw.get(column)?;
                position.get(&(*target, value.to_string())).copied()
            })
            .collect()
    };
    // Depth first, without recursion: a long chain of parents must not
    // overflow the stack. A cycle is broken where it is found.
    let mut state = vec![0_u8; rows.len()]; // 0 new, 1 in progress, 2 placed
    let mut order = Vec::with_capacity(rows.len());
    for start in 0..rows.len() {
        let mut stack = vec![(start, false)];
        while let Some((at, expanded)) = stack.pop() {
            if expanded {
                state[at] = 2;
                order.push(at);
            } else if state[at] == 0 {
                state[at] = 1;
                stack.push((at, true));
                stack.extend(
                    parents(at)
                        .into_iter()
                        .filter(|&p| state[p] == 0)
                        .map(|p| (p, false)),
                );
            }
        }
    }
    let mut slots: Vec<Option<Row<'a>>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|at| slots[at].take())
        .collect()
}

/// Standard base64 (RFC 4648, with padding) for binary columns; no
/// dependency of Kiln exposes one.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let unpadded = text.trim_end_matches('=');
        let padding = text.len() - unpadded.len();
        if unpadded.len() % 4 == 1 || padding > 2 || (padding > 0 && !text.len().is_multiple_of(4))
        {
            return None;
        }
        let text = unpadded;
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut buffer = 0_u32;
        let mut bits = 0;
        for byte in text.bytes() {
            let value = ALPHABET.iter().position(|&c| c == byte)?;
            buffer = (buffer << 6) | u32::try_from(value).ok()?;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations::ForeignKey;

    #[test]
    fn base64_round_trips_every_length() {
        assert_eq!(base64::encode(b""), "");
        assert_eq!(base64::encode(b"f"), "Zg==");
        assert_eq!(base64::encode(b"fo"), "Zm8=");
        assert_eq!(base64::encode(b"foo"), "Zm9v");
        assert_eq!(base64::encode(b"foobar"), "Zm9vYmFy");
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..bytes.len() {
            let encoded = base64::encode(&bytes[..len]);
            assert_eq!(base64::decode(&encoded).as_deref(), Some(&bytes[..len]));
        }
        assert_eq!(base64::decode("Zm9"), Some(b"fo".to_vec()));
        assert_eq!(base64::decode("Z"), None);
        assert_eq!(base64::decode("Zm9v!"), None);
    }

    #[test]
    fn decimals_take_the_columns_scale() {
        assert_eq!(decimal_text("12.5", Some(2)), "12.50");
        assert_eq!(decimal_text("12", Some(2)), "12.00");
        assert_eq!(decimal_text("-0.125", Some(2)), "-0.13");
        assert_eq!(decimal_text("12.5", None), "12.5");
        assert!(is_decimal("12.50") && is_decimal("-1e5") && is_decimal(".5") && is_decimal("5."));
        assert!(!is_decimal("") && !is_decimal("1.2.3") && !is_decimal("abc") && !is_decimal("."));
        assert!(!is_decimal("1e") && !is_decimal("NaN"));
    }

    #[test]
    fn floats_that_json_cannot_hold_are_strings() {
        assert_eq!(float_json(f64::NAN), Json::String("NaN".into()));
        assert_eq!(
            float_json(f64::NEG_INFINITY),
            Json::String("-Infinity".into())
        );
        assert_eq!(float_json(0.1), serde_json::json!(0.1));
    }

    #[test]
    fn datetimes_parse_with_or_without_offset() {
        let (at, offset) = parse_datetime("2024-05-01T09:30:00+02:00").unwrap();
        assert_eq!(
            (at.to_string().as_str(), offset),
            ("2024-05-01 09:30:00", 7200)
        );
        let (at, offset) = parse_datetime("2024-05-01 09:30:00.5").unwrap();
        assert_eq!(
            (at.to_string().as_str(), offset),
            ("2024-05-01 09:30:00.500", 0)
        );
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn referenced_tables_come_first() {
        let a = ModelState::new("a_author")
            .field(Field::new("id", Type::Integer))
            .primary_key(&["id"]);
        let b = ModelState::new("b_book")
            .field(Field::new("id", Type::Integer))
            .field(
                Field::new("author_id", Type::Integer).references(ForeignKey::to("z_person", "id")),
            )
            .primary_key(&["id"]);
        let z = ModelState::new("z_person")
            .field(Field::new("id", Type::Integer))
            .field(
                Field::new("boss_id", Type::Integer).references(ForeignKey::to("z_person", "id")),
            )
            .primary_key(&["id"]);
        let order: Vec<&str> = dependency_order(vec![("x", &b), ("x", &z), ("x", &a)])
            .into_iter()
            .map(|(_, model)| model.table.as_str())
            .collect();
        assert_eq!(order, ["a_author", "z_person", "b_book"]);
    }
}
