//! The autodetector: what changed between the state the migrations build and
//! the state the models declare, as operations.
//!
//! [`detect`] compares two [`ProjectState`]s and returns, per app, the
//! operations that turn the first into the second, in an order that replays
//! with [`Operation::apply`] and that a database accepts (a referenced table
//! exists before the key that points to it; a key is gone before its table).
//!
//! Renames are never guessed. A removed and an added field (or model) that
//! look alike are only candidates: the [`Questioner`] is asked, and the
//! non-interactive [`NoInput`] answers no, which gives a remove and an add.
//! Declared renames ([`RenameHints`]: SeaORM's `renamed_from`, or
//! `--rename` on the command line) apply without asking.
//!
//! ```
//! use kiln::db::migrations::*;
//! use kiln::db::migrations::autodetect::{detect, NoInput, RenameHints};
//!
//! let question = ModelState::new("polls_question")
//!     .field(Field::new("id", Type::BigInteger).auto_increment())
//!     .primary_key(&["id"]);
//! let mut from = ProjectState::default();
//! from.models.insert(("polls".into(), "polls_question".into()), question.clone());
//! let mut to = from.clone();
//! to.models.insert(
//!     ("polls".into(), "polls_question".into()),
//!     question.field(Field::new("votes", Type::Integer).default(0)),
//! );
//!
//! let changes = detect(&from, &to, &mut NoInput, &RenameHints::default()).unwrap();
//! assert_eq!(
//!     changes.apps["polls"].operations[0].to_string(),
//!     "Add field votes to polls_question"
//! );
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use super::operations::{Operation, StateError};
use super::state::{DefaultValue, Field, ForeignKey, Index, ModelState, ProjectState, Type};
use crate::db::models::ModelInfo;

/// What changed, per app label.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// Apps with at least one operation; apps without changes are absent.
    pub apps: BTreeMap<String, AppChanges>,
}

/// The changes of one app: the operations of its next migration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppChanges {
    /// In the order they must run.
    pub operations: Vec<Operation>,
    /// Other apps whose latest migration must run first: the apps of tables
    /// that these operations point foreign keys to, and the apps that must
    /// drop their keys to a table before this app deletes it.
    pub dependencies: BTreeSet<String>,
}

impl Changes {
    /// Whether the models match the migrations.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The apps with changes, each after the apps it depends on (ties by
    /// name), which is the order to write and to apply their migrations.
    #[must_use]
    pub fn app_order(&self) -> Vec<&str> {
        let mut done: Vec<&str> = Vec::new();
        let mut pending: Vec<&str> = self.apps.keys().map(String::as_str).collect();
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|app| {
                    self.apps[*app].dependencies.iter().all(|dependency| {
                        !pending.contains(&dependency.as_str()) || dependency == app
                    })
                })
                // `detect` refuses cycles, so this only guards hand-built values.
                .unwrap_or(0);
            done.push(pending.remove(ready));
        }
        done
    }
}

/// Asks the developer what the autodetector cannot know.
pub trait Questioner {
    /// Whether model `old` of `app` was renamed to `new` (rather than one
    /// deleted and another created).
    fn rename_model(&mut self, app: &str, old: &str, new: &str) -> bool;

    /// Whether field `old` of `table` was renamed to `new`.
    fn rename_field(&mut self, app: &str, table: &str, old: &str, new: &str) -> bool;

    /// A value for the existing rows of `table`, which get the NOT NULL
    /// `field` that has no default; `None` to stop.
    fn one_off_default(&mut self, app: &str, table: &str, field: &Field) -> Option<DefaultValue>;
}

/// The answers of `makemigrations --no-input`: no renames, no one-off
/// defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInput;

impl Questioner for NoInput {
    fn rename_model(&mut self, _app: &str, _old: &str, _new: &str) -> bool {
        false
    }

    fn rename_field(&mut self, _app: &str, _table: &str, _old: &str, _new: &str) -> bool {
        false
    }

    fn one_off_default(
        &mut self,
        _app: &str,
        _table: &str,
        _field: &Field,
    ) -> Option<DefaultValue> {
        None
    }
}

/// Asks on a terminal, or on any reader and writer (which is how it is
/// tested). The end of the input answers no.
#[derive(Debug)]
pub struct ConsoleQuestioner<R, W> {
    input: R,
    output: W,
}

impl<R: BufRead, W: Write> ConsoleQuestioner<R, W> {
    /// Reads answers from `input` and writes questions to `output`.
    pub fn new(input: R, output: W) -> Self {
        Self { input, output }
    }

    /// One trimmed line, or `None` at the end of the input. An unreadable
    /// input or unwritable output also ends the questions: answering "no"
    /// is always safe.
    fn ask(&mut self, prompt: &str) -> Option<String> {
        write!(self.output, "{prompt}").ok()?;
        self.output.flush().ok()?;
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = writeln!(self.output);
                None
            }
            Ok(_) => Some(line.trim().to_owned()),
        }
    }

    fn yes_no(&mut self, question: &str) -> bool {
        loop {
            let Some(answer) = self.ask(&format!("{question} [y/N] ")) else {
                return false;
            };
            match answer.to_ascii_lowercase().as_str() {
                "y" | "yes" => return true,
                "" | "n" | "no" => return false,
                _ => {
                    let _ = writeln!(self.output, "Please answer y or n.");
                }
            }
        }
    }
}

impl<R: BufRead, W: Write> Questioner for ConsoleQuestioner<R, W> {
    fn rename_model(&mut self, app: &str, old: &str, new: &str) -> bool {
        self.yes_no(&format!(
            "Was the model `{old}` of app `{app}` renamed to `{new}`?"
        ))
    }

    fn rename_field(&mut self, _app: &str, table: &str, old: &str, new: &str) -> bool {
        self.yes_no(&format!(
            "Was the field `{table}.{old}` renamed to `{table}.{new}` (a field of the same kind)?"
        ))
    }

    fn one_off_default(&mut self, app: &str, table: &str, field: &Field) -> Option<DefaultValue> {
        let _ = writeln!(
            self.output,
            "The field `{table}.{name}` of app `{app}` is NOT NULL ({ty}) and has no default, \
             so the database needs a value for the rows `{table}` already has.\n\
             Either stop here (press Enter), then make it nullable (`Option<...>`) or declare a \
             default (`#[sea_orm(default_value = ...)]`) and run makemigrations again;\n\
             or type a one-off value for the existing rows (the model keeps no default): {hint}.",
            name = field.name,
            ty = field.ty,
            hint = value_hint(&field.ty),
        );
        loop {
            let answer = self.ask("DefaultValue: ")?;
            if answer.is_empty() || answer == "exit" {
                return None;
            }
            match parse_default(&field.ty, &answer) {
                Ok(value) => return Some(value),
                Err(problem) => {
                    let _ = writeln!(self.output, "{problem}; try again, or press Enter to stop.");
                }
            }
        }
    }
}

fn value_hint(ty: &Type) -> &'static str {
    match ty {
        _ if ty.is_integer() => "an integer, like 0",
        Type::Float | Type::Double | Type::Decimal(_) => "a number, like 0.0",
        Type::Boolean => "true or false",
        Type::DateTime | Type::TimestampTz => {
            "`now` for the current time, or a quoted value like \"2024-01-31 12:00:00\""
        }
        Type::Date => "`now` for today, or a quoted value like \"2024-01-31\"",
        Type::Time => "`now` for the current time, or a quoted value like \"12:00:00\"",
        _ => "a value, like \"text\" (quotes optional); `sql:EXPRESSION` for raw SQL",
    }
}

/// Reads a one-off default typed for a column of type `ty`.
fn parse_default(ty: &Type, answer: &str) -> Result<DefaultValue, String> {
    if let Some(sql) = answer.strip_prefix("sql:") {
        return Ok(DefaultValue::Expr(sql.trim().to_owned()));
    }
    let unquoted = answer
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .or_else(|| {
            answer
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
        });
    let now = |expr: &str| Ok(DefaultValue::Expr(expr.to_owned()));
    match ty {
        _ if ty.is_integer() => answer
            .parse()
            .map(DefaultValue::Int)
            .map_err(|_| format!("`{answer}` is not an integer")),
        Type::Float | Type::Double | Type::Decimal(_) => answer
            .parse()
            .map(DefaultValue::Float)
            .map_err(|_| format!("`{answer}` is not a number")),
        Type::Boolean => match answer.to_ascii_lowercase().as_str() {
            "true" => Ok(DefaultValue::Bool(true)),
            "false" => Ok(DefaultValue::Bool(false)),
            _ => Err(format!("`{answer}` is not true or false")),
        },
        Type::DateTime | Type::TimestampTz if answer == "now" => now("CURRENT_TIMESTAMP"),
        Type::Date if answer == "now" => now("CURRENT_DATE"),
        Type::Time if answer == "now" => now("CURRENT_TIME"),
        Type::Enum { name, variants } => {
            let value = unquoted.unwrap_or(answer);
            if variants.iter().any(|variant| variant == value) {
                Ok(DefaultValue::Str(value.to_owned()))
            } else {
                Err(format!(
                    "`{value}` is not a value of enum {name} ({})",
                    variants.join(", ")
                ))
            }
        }
        _ => Ok(DefaultValue::Str(unquoted.unwrap_or(answer).to_owned())),
    }
}

/// Declared renames, applied without asking.
///
/// Field renames are keyed by the table's current name (as the models name
/// it). Those from the command line must match a change, or [`detect`]
/// reports them; those from `renamed_from` stay on the entity after the
/// rename migration exists, so they are ignored once done.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenameHints {
    /// `(app, old table)` to the new table and the hint as the user wrote it.
    models: BTreeMap<(String, String), (String, String)>,
    /// `(app, table, new field)` to the old field and, for hints that must
    /// match, the hint as the user wrote it.
    fields: BTreeMap<(String, String, String), (String, Option<String>)>,
}

impl RenameHints {
    /// No declared renames.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Model (table) `old` of `app` is now `new`.
    #[must_use]
    pub fn model(mut self, app: &str, old: &str, new: &str) -> Self {
        self.models.insert(
            (app.to_owned(), old.to_owned()),
            (new.to_owned(), format!("{app}.{old}={new}")),
        );
        self
    }

    /// Field `old` of `table` (its current name) in `app` is now `new`.
    #[must_use]
    pub fn field(mut self, app: &str, table: &str, old: &str, new: &str) -> Self {
        self.fields.insert(
            (app.to_owned(), table.to_owned(), new.to_owned()),
            (old.to_owned(), Some(format!("{app}.{table}.{old}={new}"))),
        );
        self
    }

    /// Adds a `--rename` argument: `app.table.old=new` renames a field,
    /// `app.old_table=new_table` a model.
    ///
    /// # Errors
    ///
    /// [`DetectError::BadHint`] when `spec` has neither form.
    pub fn parse(self, spec: &str) -> Result<Self, DetectError> {
        let bad = || DetectError::BadHint {
            hint: spec.to_owned(),
        };
        let (path, new) = spec.split_once('=').ok_or_else(bad)?;
        let parts: Vec<&str> = path.split('.').collect();
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid(new) || !parts.iter().all(|part| valid(part)) {
            return Err(bad());
        }
        match parts.as_slice() {
            [app, table, old] => Ok(self.field(app, table, old, new)),
            [app, old] => Ok(self.model(app, old, new)),
            _ => Err(bad()),
        }
    }

    /// Adds the `renamed_from` declarations of a model of `app`.
    #[must_use]
    pub fn renamed_from(mut self, app: &str, model: &ModelInfo) -> Self {
        for (new, old) in &model.renamed_from {
            self.fields
                .entry((app.to_owned(), model.state.table.clone(), new.clone()))
                .or_insert_with(|| (old.clone(), None));
        }
        self
    }
}

/// Why no migration can be written for the models as they are.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// A NOT NULL field without default added to an existing table.
    #[error(
        "the field `{table}.{field}` of app `{app}` is NOT NULL without a default, and \
         `{table}` may already have rows; fix: make it nullable (`Option<...>`), give it a \
         default (`#[sea_orm(default_value = ...)]`), or run makemigrations without \
         `--no-input` and type a one-off default for the existing rows"
    )]
    NotNullWithoutDefault {
        app: String,
        table: String,
        field: String,
    },
    /// A primary key over other columns; no operation changes one.
    #[error(
        "the primary key of `{table}` (app `{app}`) changed from ({}) to ({}); Kiln's \
         migrations cannot change a primary key; fix: keep the key, or create a new model \
         and copy the rows over in a migration",
        from.join(", "),
        to.join(", ")
    )]
    PrimaryKeyChanged {
        app: String,
        table: String,
        from: Vec<String>,
        to: Vec<String>,
    },
    /// A foreign key to a table or column that no model declares.
    #[error(
        "the field `{table}.{field}` of app `{app}` references `{target}`, which no model \
         of the project declares; fix: add the app that owns it to the project, or correct \
         the relation's `to`"
    )]
    UnknownReference {
        app: String,
        table: String,
        field: String,
        target: String,
    },
    /// Two apps declare the same table.
    #[error(
        "the table `{table}` is declared by apps `{first}` and `{second}`; a table belongs \
         to one app; fix: give one of the entities another `table_name`"
    )]
    DuplicateTable {
        table: String,
        first: String,
        second: String,
    },
    /// A table that moves to another app.
    #[error(
        "the table `{table}` moved from app `{from}` to app `{to}`; migrations cannot move a \
         table between apps; fix: give the model another `table_name` in `{to}` (its data \
         can be copied in a migration), or keep it in `{from}`"
    )]
    TableChangedApp {
        table: String,
        from: String,
        to: String,
    },
    /// New or deleted models whose foreign keys form a cycle through
    /// primary keys.
    #[error(
        "the models {} of app `{app}` reference each other through primary key columns, so \
         none can be created (or deleted) before the others; fix: make one of those keys a \
         plain column, or change the models in two steps",
        tables.join(", ")
    )]
    ForeignKeyCycle { app: String, tables: Vec<String> },
    /// Apps that would each need the other's migration first.
    #[error(
        "the changes of apps {} depend on each other (a foreign key added in one to a table \
         changed in the other, both ways); fix: make the changes in two steps, running \
         makemigrations after each",
        apps.join(" and ")
    )]
    CircularDependency { apps: Vec<String> },
    /// A `--rename` that no change matches.
    #[error(
        "`--rename {hint}` matches no change: the migrations have no such model or field, or \
         the models still declare the old name or not the new one; fix: check the names \
         (`app.table.old=new` renames a field of the table as the models name it, \
         `app.old_table=new_table` a model)"
    )]
    UnusedHint { hint: String },
    /// A `--rename` argument of neither form.
    #[error(
        "`--rename {hint}` is not a rename; fix: write `app.table.old=new` for a field or \
         `app.old_table=new_table` for a model"
    )]
    BadHint { hint: String },
    /// The detected operations do not replay: a bug in the autodetector.
    #[error(
        "the detected operations do not replay ({0}); this is a bug in Kiln's autodetector, \
         please report it with the models and migrations involved"
    )]
    State(#[from] StateError),
}

/// The operations that turn `from` (what the migrations build) into `to`
/// (what the models declare), per app, asking `questioner` about renames and
/// one-off defaults.
///
/// # Errors
///
/// A [`DetectError`] naming the app, table and field, with the fix, when the
/// models cannot be reached by migrations (a changed primary key, a
/// reference to an undeclared table, a NOT NULL field for existing rows
/// without a value, a `--rename` that matches nothing, ...).
pub fn detect(
    from: &ProjectState,
    to: &ProjectState,
    questioner: &mut dyn Questioner,
    hints: &RenameHints,
) -> Result<Changes, DetectError> {
    validate(from, to)?;
    let mut detector = Detector {
        current: from.clone(),
        to,
        questioner,
        hints,
        used_hints: BTreeSet::new(),
        operations: BTreeMap::new(),
    };
    detector.rename_models()?;
    detector.rename_fields()?;
    let renamed = detector.current.clone();
    detector.check_primary_keys()?;
    detector.remove_indexes()?;
    detector.remove_fields()?;
    detector.create_models()?;
    detector.add_fields()?;
    detector.alter_fields()?;
    detector.delete_models()?;
    detector.add_indexes()?;
    detector.check_hints()?;

    let Detector { operations, .. } = detector;
    let mut changes = Changes::default();
    for (app, operations) in operations {
        let dependencies = dependencies(&app, &operations, &renamed, to);
        changes.apps.insert(
            app,
            AppChanges {
                operations,
                dependencies,
            },
        );
    }
    check_cycles(&changes)?;
    Ok(changes)
}

/// The models must be reachable at all: one owner per table, references to
/// declared tables and columns.
fn validate(from: &ProjectState, to: &ProjectState) -> Result<(), DetectError> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (app, table) in to.models.keys() {
        if let Some(first) = owners.insert(table, app) {
            return Err(DetectError::DuplicateTable {
                table: table.clone(),
                first: first.to_owned(),
                second: app.clone(),
            });
        }
        if let Some((old_app, _)) = from.find_table(table)
            && old_app != app
            && to.model(old_app, table).is_none()
        {
            return Err(DetectError::TableChangedApp {
                table: table.clone(),
                from: old_app.to_owned(),
                to: app.clone(),
            });
        }
    }
    for ((app, table), model) in &to.models {
        for field in &model.fields {
            let Some(key) = &field.foreign_key else {
                continue;
            };
            let found = to
                .find_table(&key.table)
                .is_some_and(|(_, target)| target.get_field(&key.column).is_some());
            if !found {
                return Err(DetectError::UnknownReference {
                    app: app.clone(),
                    table: table.clone(),
                    field: field.name.clone(),
                    target: format!("{}.{}", key.table, key.column),
                });
            }
        }
    }
    Ok(())
}

struct Detector<'a> {
    /// `from` with the operations found so far applied: each operation is
    /// checked against the state it will meet.
    current: ProjectState,
    to: &'a ProjectState,
    questioner: &'a mut dyn Questioner,
    hints: &'a RenameHints,
    used_hints: BTreeSet<String>,
    operations: BTreeMap<String, Vec<Operation>>,
}

type Key = (String, String);

impl Detector<'_> {
    fn push(&mut self, app: &str, operation: Operation) -> Result<(), DetectError> {
        operation.apply(app, &mut self.current)?;
        self.operations
            .entry(app.to_owned())
            .or_default()
            .push(operation);
        Ok(())
    }

    /// Models only in the migrations, and models only in the models.
    fn removed_and_added(&self) -> (Vec<Key>, Vec<Key>) {
        let removed = self
            .current
            .models
            .keys()
            .filter(|key| !self.to.models.contains_key(*key))
            .cloned()
            .collect();
        let added = self
            .to
            .models
            .keys()
            .filter(|key| !self.current.models.contains_key(*key))
            .cloned()
            .collect();
        (removed, added)
    }

    /// Models in both, by key.
    fn common(&self) -> Vec<Key> {
        self.to
            .models
            .keys()
            .filter(|key| self.current.models.contains_key(*key))
            .cloned()
            .collect()
    }

    fn rename_models(&mut self) -> Result<(), DetectError> {
        let hints = self.hints;
        for ((app, old), (new, spec)) in &hints.models {
            let (removed, added) = self.removed_and_added();
            if removed.contains(&(app.clone(), old.clone()))
                && added.contains(&(app.clone(), new.clone()))
            {
                self.used_hints.insert(spec.clone());
                self.push(
                    app,
                    Operation::RenameModel {
                        old: old.clone(),
                        new: new.clone(),
                    },
                )?;
            }
        }
        let (_, added) = self.removed_and_added();
        for (app, new) in added {
            let (removed, _) = self.removed_and_added();
            let new_model = &self.to.models[&(app.clone(), new.clone())];
            for (old_app, old) in removed {
                if old_app != app
                    || !same_fields(
                        &self.current.models[&(old_app.clone(), old.clone())],
                        new_model,
                    )
                {
                    continue;
                }
                if self.questioner.rename_model(&app, &old, &new) {
                    self.push(
                        &app,
                        Operation::RenameModel {
                            old,
                            new: new.clone(),
                        },
                    )?;
                    break;
                }
            }
        }
        Ok(())
    }

    fn rename_fields(&mut self) -> Result<(), DetectError> {
        let hints = self.hints;
        for (app, table) in self.common() {
            let target = &self.to.models[&(app.clone(), table.clone())];
            for new_field in &target.fields {
                let model = &self.current.models[&(app.clone(), table.clone())];
                if model.get_field(&new_field.name).is_some() {
                    continue;
                }
                let removed: Vec<&Field> = model
                    .fields
                    .iter()
                    .filter(|field| target.get_field(&field.name).is_none())
                    .collect();
                let hint = hints
                    .fields
                    .get(&(app.clone(), table.clone(), new_field.name.clone()));
                let old = if let Some((old, spec)) = hint
                    && removed.iter().any(|field| &field.name == old)
                {
                    if let Some(spec) = spec {
                        self.used_hints.insert(spec.clone());
                    }
                    Some(old.clone())
                } else {
                    let candidates: Vec<String> = removed
                        .iter()
                        .filter(|field| same_definition(field, &table, new_field, &table))
                        .map(|field| field.name.clone())
                        .collect();
                    candidates.into_iter().find(|old| {
                        self.questioner
                            .rename_field(&app, &table, old, &new_field.name)
                    })
                };
                if let Some(old) = old {
                    self.push(
                        &app,
                        Operation::RenameField {
                            table: table.clone(),
                            old,
                            new: new_field.name.clone(),
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn check_primary_keys(&self) -> Result<(), DetectError> {
        for key in self.common() {
            let (from, to) = (&self.current.models[&key], &self.to.models[&key]);
            if from.primary_key != to.primary_key {
                return Err(DetectError::PrimaryKeyChanged {
                    app: key.0,
                    table: key.1,
                    from: from.primary_key.clone(),
                    to: to.primary_key.clone(),
                });
            }
        }
        Ok(())
    }

    /// Indexes are matched by what they cover, not by name: a renamed model
    /// or field keeps its index names, and renaming an index would only
    /// churn the database.
    fn index_changes(&self, key: &Key) -> (Vec<String>, Vec<Index>) {
        let (from, to) = (&self.current.models[key], &self.to.models[key]);
        let mut unmatched: Vec<&Index> = from.indexes.iter().collect();
        let mut added = Vec::new();
        for index in &to.indexes {
            match unmatched.iter().position(|old| same_index(old, index)) {
                Some(found) => {
                    unmatched.remove(found);
                }
                None => added.push(index.clone()),
            }
        }
        let removed = unmatched.iter().map(|index| index.name.clone()).collect();
        (removed, added)
    }

    fn remove_indexes(&mut self) -> Result<(), DetectError> {
        for key in self.common() {
            for name in self.index_changes(&key).0 {
                self.push(
                    &key.0,
                    Operation::RemoveIndex {
                        table: key.1.clone(),
                        name,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn remove_fields(&mut self) -> Result<(), DetectError> {
        for key in self.common() {
            let to = &self.to.models[&key];
            let removed: Vec<String> = self.current.models[&key]
                .fields
                .iter()
                .filter(|field| to.get_field(&field.name).is_none())
                .map(|field| field.name.clone())
                .collect();
            for column in removed {
                self.push(
                    &key.0,
                    Operation::RemoveField {
                        table: key.1.clone(),
                        column,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Creates new models, each after the models of its app it references.
    /// Models that reference each other are broken up as Django does: one is
    /// created without its keys to the others, which are added once all
    /// exist.
    fn create_models(&mut self) -> Result<(), DetectError> {
        let (_, mut pending) = self.removed_and_added();
        let mut deferred: Vec<(String, String, Vec<Field>, Vec<Index>)> = Vec::new();
        while !pending.is_empty() {
            let waits_for = |key: &Key, field: &Field| {
                field.foreign_key.as_ref().is_some_and(|fk| {
                    fk.table != key.1 && pending.contains(&(key.0.clone(), fk.table.clone()))
                })
            };
            let ready = pending.iter().position(|key| {
                self.to.models[key]
                    .fields
                    .iter()
                    .all(|field| !waits_for(key, field))
            });
            let (position, model) = match ready {
                Some(position) => (position, self.to.models[&pending[position]].clone()),
                None => {
                    // A cycle: the first model whose waiting keys are not
                    // part of its primary key goes first without them.
                    let breakable = pending.iter().position(|key| {
                        let model = &self.to.models[key];
                        model.fields.iter().all(|field| {
                            !waits_for(key, field) || !model.is_primary_key(&field.name)
                        })
                    });
                    let Some(position) = breakable else {
                        return Err(DetectError::ForeignKeyCycle {
                            app: pending[0].0.clone(),
                            tables: pending.iter().map(|(_, table)| table.clone()).collect(),
                        });
                    };
                    let key = &pending[position];
                    let mut model = self.to.models[key].clone();
                    let (later, now): (Vec<Field>, Vec<Field>) = model
                        .fields
                        .into_iter()
                        .partition(|field| waits_for(key, field));
                    model.fields = now;
                    let (later_indexes, now_indexes): (Vec<Index>, Vec<Index>) =
                        model.indexes.into_iter().partition(|index| {
                            index
                                .columns
                                .iter()
                                .any(|column| later.iter().any(|field| &field.name == column))
                        });
                    model.indexes = now_indexes;
                    deferred.push((key.0.clone(), key.1.clone(), later, later_indexes));
                    (position, model)
                }
            };
            let (app, _) = pending.remove(position);
            self.push(&app, Operation::CreateModel(model))?;
        }
        for (app, table, fields, indexes) in deferred {
            // The table was created in this migration and is empty: no
            // one-off default is needed for its NOT NULL keys.
            for field in fields {
                self.push(
                    &app,
                    Operation::AddField {
                        table: table.clone(),
                        field,
                    },
                )?;
            }
            for index in indexes {
                self.push(
                    &app,
                    Operation::AddIndex {
                        table: table.clone(),
                        index,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn add_fields(&mut self) -> Result<(), DetectError> {
        for key in self.common() {
            let added: Vec<Field> = self.to.models[&key]
                .fields
                .iter()
                .filter(|field| self.current.models[&key].get_field(&field.name).is_none())
                .cloned()
                .collect();
            for field in added {
                let (app, table) = &key;
                if field.null || field.default.is_some() || field.auto_increment {
                    self.push(
                        app,
                        Operation::AddField {
                            table: table.clone(),
                            field,
                        },
                    )?;
                    continue;
                }
                let Some(value) = self.questioner.one_off_default(app, table, &field) else {
                    return Err(DetectError::NotNullWithoutDefault {
                        app: app.clone(),
                        table: table.clone(),
                        field: field.name,
                    });
                };
                // Django's `preserve_default=False`: the value fills the
                // existing rows, then the column's default goes away again.
                let mut with_default = field.clone();
                with_default.default = Some(value);
                self.push(
                    app,
                    Operation::AddField {
                        table: table.clone(),
                        field: with_default,
                    },
                )?;
                self.push(
                    app,
                    Operation::AlterField {
                        table: table.clone(),
                        field,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn alter_fields(&mut self) -> Result<(), DetectError> {
        for key in self.common() {
            let altered: Vec<Field> = self.to.models[&key]
                .fields
                .iter()
                .filter(|field| {
                    self.current.models[&key]
                        .get_field(&field.name)
                        .is_some_and(|old| old != *field)
                })
                .cloned()
                .collect();
            for field in altered {
                self.push(
                    &key.0,
                    Operation::AlterField {
                        table: key.1.clone(),
                        field,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Deletes models after the models that reference them; keys between
    /// models that reference each other are removed first.
    fn delete_models(&mut self) -> Result<(), DetectError> {
        let (mut pending, _) = self.removed_and_added();
        while !pending.is_empty() {
            let referenced = |state: &ProjectState, table: &str| {
                state
                    .references_to(table)
                    .any(|(model, _)| model.table != table)
            };
            if let Some(position) = pending
                .iter()
                .position(|(_, table)| !referenced(&self.current, table))
            {
                let (app, table) = pending.remove(position);
                self.push(&app, Operation::DeleteModel { table })?;
                continue;
            }
            // Every remaining model is referenced, by another one that is
            // deleted too (`to` references none of them): drop those keys.
            let (app, table) = pending[0].clone();
            let keys: Vec<(String, String, String)> = self
                .current
                .references_to(&table)
                .filter(|(model, _)| model.table != table)
                .map(|(model, field)| (model.table.clone(), field.name.clone()))
                .filter_map(|(from, column)| {
                    let (owner, _) = self.current.find_table(&from)?;
                    Some((owner.to_owned(), from, column))
                })
                .collect();
            for (owner, from, column) in keys {
                let model = &self.current.models[&(owner.clone(), from.clone())];
                if model.is_primary_key(&column) {
                    return Err(DetectError::ForeignKeyCycle {
                        app,
                        tables: pending.iter().map(|(_, table)| table.clone()).collect(),
                    });
                }
                let indexes: Vec<String> = model
                    .indexes
                    .iter()
                    .filter(|index| index.columns.contains(&column))
                    .map(|index| index.name.clone())
                    .collect();
                for name in indexes {
                    self.push(
                        &owner,
                        Operation::RemoveIndex {
                            table: from.clone(),
                            name,
                        },
                    )?;
                }
                self.push(
                    &owner,
                    Operation::RemoveField {
                        table: from.clone(),
                        column,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn add_indexes(&mut self) -> Result<(), DetectError> {
        for key in self.common() {
            for mut index in self.index_changes(&key).1 {
                // A kept index of a renamed field or model may hold the name
                // the models now give a different index.
                let model = &self.current.models[&key];
                let base = index.name.clone();
                let mut n = 1;
                while model.get_index(&index.name).is_some() {
                    index.name = format!("{base}_{n}");
                    n += 1;
                }
                self.push(
                    &key.0,
                    Operation::AddIndex {
                        table: key.1.clone(),
                        index,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn check_hints(&self) -> Result<(), DetectError> {
        let required = self.hints.models.values().map(|(_, spec)| spec).chain(
            self.hints
                .fields
                .values()
                .filter_map(|(_, spec)| spec.as_ref()),
        );
        for spec in required {
            if !self.used_hints.contains(spec) {
                return Err(DetectError::UnusedHint { hint: spec.clone() });
            }
        }
        Ok(())
    }
}

/// Whether two fields differ in name only. A key to the field's own table
/// counts as the same under the table's old and new names.
fn same_definition(a: &Field, a_table: &str, b: &Field, b_table: &str) -> bool {
    let normal = |field: &Field, table: &str| {
        let mut field = field.clone();
        field.name.clear();
        if let Some(key) = &mut field.foreign_key
            && key.table == table
        {
            key.table.clear();
        }
        field
    };
    normal(a, a_table) == normal(b, b_table)
}

/// Whether two models have the same fields (in any order) and primary key.
fn same_fields(a: &ModelState, b: &ModelState) -> bool {
    a.primary_key == b.primary_key
        && a.fields.len() == b.fields.len()
        && a.fields.iter().all(|field| {
            b.get_field(&field.name)
                .is_some_and(|other| same_definition(field, &a.table, other, &b.table))
        })
}

fn same_index(a: &Index, b: &Index) -> bool {
    a.columns == b.columns && a.unique == b.unique
}

/// The apps `app`'s operations must run after.
fn dependencies(
    app: &str,
    operations: &[Operation],
    renamed: &ProjectState,
    to: &ProjectState,
) -> BTreeSet<String> {
    let mut apps = BTreeSet::new();
    let mut target = |key: &ForeignKey| {
        if let Some((owner, _)) = to.find_table(&key.table)
            && owner != app
        {
            apps.insert(owner.to_owned());
        }
    };
    for operation in operations {
        match operation {
            Operation::CreateModel(model) => {
                model
                    .fields
                    .iter()
                    .filter_map(|field| field.foreign_key.as_ref())
                    .for_each(&mut target);
            }
            Operation::AddField { field, .. } | Operation::AlterField { field, .. } => {
                field.foreign_key.iter().for_each(&mut target);
            }
            _ => {}
        }
    }
    // Keys from other apps to a table or column this app drops go first.
    for operation in operations {
        let dropped = match operation {
            Operation::DeleteModel { table } => Some((table, None)),
            Operation::RemoveField { table, column } => Some((table, Some(column))),
            _ => None,
        };
        let Some((table, column)) = dropped else {
            continue;
        };
        for (model, field) in renamed.references_to(table) {
            let points_here = field
                .foreign_key
                .as_ref()
                .is_some_and(|key| column.is_none_or(|column| &key.column == column));
            if let Some((owner, _)) = renamed.find_table(&model.table)
                && owner != app
                && points_here
            {
                apps.insert(owner.to_owned());
            }
        }
    }
    apps
}

fn check_cycles(changes: &Changes) -> Result<(), DetectError> {
    // Only apps with changes can be in a cycle: an app without changes has
    // no new migration that could depend back.
    let mut pending: BTreeSet<&str> = changes.apps.keys().map(String::as_str).collect();
    loop {
        let ready = pending.iter().copied().find(|app| {
            changes.apps[*app]
                .dependencies
                .iter()
                .all(|dependency| !pending.contains(dependency.as_str()))
        });
        match ready {
            Some(app) => {
                pending.remove(app);
            }
            None if pending.is_empty() => return Ok(()),
            None => {
                return Err(DetectError::CircularDependency {
                    apps: pending.iter().map(|app| (*app).to_owned()).collect(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
