//! Kiln's picture of a database schema: what the models say, and what a list
//! of migrations builds when replayed.
//!
//! The autodetector compares two [`ProjectState`]s; the schema editor turns
//! an operation and the states around it into SQL. The types are Kiln's own
//! rather than sea-query's so that a migration file can spell them out as
//! short Rust (`Field::new("votes", Type::Integer).default(0)`) and so that
//! two states compare with `==`.

use std::collections::BTreeMap;
use std::fmt;

/// A column type, independent of the database.
///
/// Each maps to the natural type of every backend (see the schema editor);
/// `Custom` passes a backend-specific type through unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `VARCHAR(n)`; `None` is the backend's default length.
    String(Option<u32>),
    /// `CHAR(n)`.
    Char(Option<u32>),
    /// Unbounded text.
    Text,
    TinyInteger,
    SmallInteger,
    Integer,
    BigInteger,
    TinyUnsigned,
    SmallUnsigned,
    Unsigned,
    BigUnsigned,
    Float,
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal(Option<(u32, u32)>),
    Boolean,
    Date,
    Time,
    /// Date and time without a zone.
    DateTime,
    /// Date and time with a zone (stored as UTC).
    TimestampTz,
    Uuid,
    Json,
    /// `JSONB` on PostgreSQL, JSON elsewhere.
    JsonBinary,
    /// Variable-length bytes.
    Binary,
    /// A string limited to the listed values (a PostgreSQL enum type, a
    /// MySQL `ENUM`, text on SQLite).
    Enum {
        name: String,
        variants: Vec<String>,
    },
    /// A type spelled for one backend, passed through as written.
    Custom(String),
}

impl Type {
    /// `VARCHAR(length)`.
    #[must_use]
    pub fn string(length: u32) -> Self {
        Self::String(Some(length))
    }

    /// The maximum length, for string types that have one.
    #[must_use]
    pub fn max_length(&self) -> Option<u32> {
        match self {
            Self::String(length) | Self::Char(length) => *length,
            _ => None,
        }
    }

    /// Whether values of this type are integers (auto-increment needs one).
    #[must_use]
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            Self::TinyInteger
                | Self::SmallInteger
                | Self::Integer
                | Self::BigInteger
                | Self::TinyUnsigned
                | Self::SmallUnsigned
                | Self::Unsigned
                | Self::BigUnsigned
        )
    }
}

/// A column default, as a value or as an SQL expression. (Not `Default`,
/// which would shadow the standard trait in `use kiln::db::migrations::*`.)
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An SQL expression written the same on every backend, such as
    /// `CURRENT_TIMESTAMP`.
    Expr(String),
}

impl From<bool> for DefaultValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for DefaultValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for DefaultValue {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<f64> for DefaultValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<&str> for DefaultValue {
    fn from(value: &str) -> Self {
        Self::Str(value.to_owned())
    }
}

impl From<String> for DefaultValue {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}

/// What a foreign key does when the row it points to is deleted or its key
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Refuse while referencing rows exist (checked at the end of the
    /// statement). The default, as in SQL.
    #[default]
    NoAction,
    /// Refuse at once.
    Restrict,
    /// Delete (or update) the referencing rows too.
    Cascade,
    /// Set the referencing column to NULL.
    SetNull,
    /// Set the referencing column to its default.
    SetDefault,
}

/// A foreign key from one column to a column of another table.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    /// The referenced table.
    pub table: String,
    /// The referenced column, usually its primary key.
    pub column: String,
    pub on_delete: Action,
    pub on_update: Action,
}

impl ForeignKey {
    /// A key to `table.column` with `NO ACTION` on delete and update.
    #[must_use]
    pub fn to(table: &str, column: &str) -> Self {
        Self {
            table: table.to_owned(),
            column: column.to_owned(),
            on_delete: Action::NoAction,
            on_update: Action::NoAction,
        }
    }

    /// Sets what happens when the referenced row is deleted.
    #[must_use]
    pub fn on_delete(mut self, action: Action) -> Self {
        self.on_delete = action;
        self
    }

    /// Sets what happens when the referenced key changes.
    #[must_use]
    pub fn on_update(mut self, action: Action) -> Self {
        self.on_update = action;
        self
    }

    /// The constraint's name, fixed so that later migrations can drop it.
    #[must_use]
    pub fn constraint_name(&self, table: &str, column: &str) -> String {
        format!("fk_{table}_{column}")
    }
}

/// A column of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The column name.
    pub name: String,
    pub ty: Type,
    pub null: bool,
    pub default: Option<DefaultValue>,
    /// A single-column `UNIQUE` constraint.
    pub unique: bool,
    /// Generated by the database on insert; only on an integer primary key.
    pub auto_increment: bool,
    pub foreign_key: Option<ForeignKey>,
}

impl Field {
    /// A `NOT NULL` column without default.
    #[must_use]
    pub fn new(name: &str, ty: Type) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            null: false,
            default: None,
            unique: false,
            auto_increment: false,
            foreign_key: None,
        }
    }

    /// Allows NULL.
    #[must_use]
    pub fn null(mut self) -> Self {
        self.null = true;
        self
    }

    /// Sets the default for rows that do not give a value.
    #[must_use]
    pub fn default(mut self, value: impl Into<DefaultValue>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Adds a `UNIQUE` constraint.
    #[must_use]
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Lets the database number new rows.
    #[must_use]
    pub fn auto_increment(mut self) -> Self {
        self.auto_increment = true;
        self
    }

    /// Makes the column a foreign key.
    #[must_use]
    pub fn references(mut self, key: ForeignKey) -> Self {
        self.foreign_key = Some(key);
        self
    }
}

/// An index on one or more columns; a unique index over several columns is
/// Django's `unique_together`.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

impl Index {
    /// A plain index.
    #[must_use]
    pub fn new(name: &str, columns: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            columns: columns.iter().map(|&column| column.to_owned()).collect(),
            unique: false,
        }
    }

    /// Makes the index unique.
    #[must_use]
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
}

/// One table: its columns in order, primary key and indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelState {
    /// The table name, which is also the model's identity in migrations.
    pub table: String,
    pub fields: Vec<Field>,
    /// The primary key's columns, in order.
    pub primary_key: Vec<String>,
    pub indexes: Vec<Index>,
}

impl ModelState {
    /// A table with no columns yet.
    #[must_use]
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            fields: Vec::new(),
            primary_key: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Adds a column.
    #[must_use]
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Sets the primary key.
    #[must_use]
    pub fn primary_key(mut self, columns: &[&str]) -> Self {
        self.primary_key = columns.iter().map(|&column| column.to_owned()).collect();
        self
    }

    /// Adds an index.
    #[must_use]
    pub fn index(mut self, index: Index) -> Self {
        self.indexes.push(index);
        self
    }

    /// The column called `name`.
    #[must_use]
    pub fn get_field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    pub(crate) fn get_field_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|field| field.name == name)
    }

    /// The index called `name`.
    #[must_use]
    pub fn get_index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|index| index.name == name)
    }

    /// Whether `column` is (part of) the primary key.
    #[must_use]
    pub fn is_primary_key(&self, column: &str) -> bool {
        self.primary_key.iter().any(|key| key == column)
    }
}

/// Every table of a project, by app, as models declare them or as
/// migrations build them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProjectState {
    /// `(app label, table)` to the table's state.
    pub models: BTreeMap<(String, String), ModelState>,
}

impl ProjectState {
    /// The model `table` of `app`.
    #[must_use]
    pub fn model(&self, app: &str, table: &str) -> Option<&ModelState> {
        self.models.get(&(app.to_owned(), table.to_owned()))
    }

    /// Finds a table whatever app owns it (tables are unique in a database).
    #[must_use]
    pub fn find_table(&self, table: &str) -> Option<(&str, &ModelState)> {
        self.models
            .iter()
            .find(|((_, name), _)| name == table)
            .map(|((app, _), model)| (app.as_str(), model))
    }

    /// The models of one app.
    pub fn app_models<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a ModelState> + 'a {
        self.models
            .iter()
            .filter(move |((owner, _), _)| owner == app)
            .map(|(_, model)| model)
    }

    /// Columns in other tables that reference `table`.
    pub fn references_to<'a>(
        &'a self,
        table: &'a str,
    ) -> impl Iterator<Item = (&'a ModelState, &'a Field)> + 'a {
        self.models.values().flat_map(move |model| {
            model
                .fields
                .iter()
                .filter(move |field| {
                    field
                        .foreign_key
                        .as_ref()
                        .is_some_and(|key| key.table == table)
                })
                .map(move |field| (model, field))
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(Some(length)) => write!(f, "string({length})"),
            Self::String(None) => f.write_str("string"),
            Self::Char(Some(length)) => write!(f, "char({length})"),
            Self::Decimal(Some((precision, scale))) => write!(f, "decimal({precision}, {scale})"),
            Self::Enum { name, .. } => write!(f, "enum {name}"),
            Self::Custom(spelling) => f.write_str(spelling),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}
