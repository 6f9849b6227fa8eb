//! `ModelForm`: a form built at run time from a SeaORM entity's columns.

use std::fmt;

use sea_orm::prelude::{Date, DateTime, Decimal, Time};
use sea_orm::sea_query::{Alias, Asterisk, ColumnType, Expr, ExprTrait, Order, Query, StringLen};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, ModelTrait, PrimaryKeyToColumn, PrimaryKeyTrait,
    QueryResult, RelationTrait, SqlErr, Value,
};

use super::field::{FieldKind, FieldSpec, FormValue, REQUIRED, Widget, label_from_name};
use super::{FormInput, FormState, ValidationError};
use crate::db::models::table_name;
use crate::db::options::RowLabelFn;
use crate::db::{ModelEntry, ModelOptions};
use crate::http::RequestContext;

/// A form for the rows of entity `E`, built from its columns (Django's
/// `ModelForm`): each column's type gives the field's kind, its
/// nullability whether it is required, a `String(StringLen::N(n))` its
/// `maxlength`; the [`ModelOptions`] registered with
/// [`App::model_with`](crate::App::model_with) give labels, help texts,
/// choices and which columns are editable. Auto-increment primary keys and
/// non-editable columns are left out, and so are column types forms do not
/// handle (binary, JSON, UUID...).
///
/// ```
/// # mod question {
/// #     use kiln::db::prelude::*;
/// #     #[sea_orm::model]
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "polls_question")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i64,
/// #         #[sea_orm(column_type = "String(StringLen::N(200))")]
/// #         pub question_text: String,
/// #         pub pub_date: DateTimeUtc,
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use kiln::prelude::*;
/// use kiln::db::Db;
/// use kiln::forms::{FormInput, ModelForm, SaveError};
///
/// async fn create(db: Db, input: FormInput) -> Result<Response, kiln::Error> {
///     let mut form = ModelForm::<question::Entity>::new()
///         .exclude(&["pub_date"])
///         .bind(input);
///     match form.save_with(&*db, |row| {
///         row.pub_date = kiln::db::sea_orm::Set(chrono_now());
///     }).await {
///         Ok(question) => Ok(Redirect::to(&format!("/{}/", question.id)).into_response()),
///         Err(SaveError::Invalid) => {
///             Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response())
///         }
///         Err(error) => Err(error.into()),
///     }
/// }
/// # fn chrono_now() -> kiln::db::sea_orm::prelude::DateTimeUtc { Default::default() }
/// ```
pub struct ModelForm<E: EntityTrait> {
    state: FormState,
    columns: Vec<E::Column>,
    /// For each column, the row it points at when it is a foreign key.
    related: Vec<Option<Related>>,
    model_name: String,
    instance: Option<E::Model>,
    cleaned: Vec<(E::Column, Value)>,
}

/// Where a foreign key column points, and how the rows there read.
#[derive(Clone)]
struct Related {
    table: String,
    column: String,
    /// The related model's display (`__str__`) when its app registered
    /// one; the key itself otherwise.
    label: Option<RowLabelFn>,
}

/// Django's `ModelChoiceField` message: the submitted text is not shown, as
/// it may be anything.
const INVALID_RELATED: &str =
    "Select a valid choice. That choice is not one of the available choices.";

/// Why [`ModelForm::save`] saved nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The form has errors (from validation, or a unique or foreign key
    /// constraint the row broke): render it again.
    #[error("the form has errors; render it again with them")]
    Invalid,
    /// Any other database error (a 500 with `?`).
    #[error("saving the form failed: {0}")]
    Database(#[from] DbErr),
}

impl<E> ModelForm<E>
where
    E: EntityTrait + Default,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelBehavior + Send,
{
    /// A form for a new row, with the options registered for the model in
    /// the project serving the current request (defaults outside one).
    #[must_use]
    pub fn new() -> Self {
        let table = E::default().table_name().to_owned();
        let entry =
            RequestContext::with_current(|context| context.site.model(&table).cloned()).flatten();
        match entry {
            Some(entry) => Self::from_entry(&entry),
            None => Self::with_options(&ModelOptions::new()),
        }
    }

    /// A form with these options, whatever the project registered.
    #[must_use]
    pub fn with_options(options: &ModelOptions) -> Self {
        let table = E::default().table_name().to_owned();
        let entry = ModelEntry {
            app: String::new(),
            table: table.clone(),
            columns: Vec::new(),
            options: options.clone(),
        };
        let mut form = Self::from_entry(&entry);
        form.model_name = label_from_name(options.verbose_name.as_deref().unwrap_or(&table));
        form
    }

    fn from_entry(entry: &ModelEntry) -> Self {
        let auto_key: Vec<String> = if <E::PrimaryKey as PrimaryKeyTrait>::auto_increment() {
            E::PrimaryKey::iter()
                .map(|key| key.into_column().as_str().to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let keys = foreign_keys::<E>();
        let mut columns = Vec::new();
        let mut related = Vec::new();
        let mut fields = Vec::new();
        for column in E::Column::iter() {
            let name = column.as_str();
            let options = entry.options.field_options(name);
            if auto_key.iter().any(|key| key == name) || !options.is_editable() {
                continue;
            }
            let def = column.def();
            let Some(mut spec) = spec_for(name, def.get_column_type()) else {
                continue;
            };
            spec.required = !def.is_null() && spec.kind != FieldKind::Boolean;
            spec.label = label_from_name(&entry.field_verbose_name(name));
            spec.help_text = options.help().map(str::to_owned);
            if !options.choice_list().is_empty() {
                spec.choices = options.choice_list().to_vec();
                spec.widget = Widget::Select;
            }
            let key = keys
                .iter()
                .find(|key| key.0 == name)
                .map(|key| key.1.clone());
            if key.is_some() {
                spec.widget = Widget::Select;
            }
            columns.push(column);
            related.push(key);
            fields.push(spec);
        }
        Self {
            state: FormState::unbound(fields),
            columns,
            related,
            model_name: label_from_name(&entry.verbose_name()),
            instance: None,
            cleaned: Vec::new(),
        }
    }

    /// Keeps only these columns, in this order.
    ///
    /// # Panics
    ///
    /// When a name is not a field of the form (a typo, or a column left
    /// out as non-editable), naming it.
    #[must_use]
    pub fn only(mut self, names: &[&str]) -> Self {
        let mut columns = Vec::new();
        let mut related = Vec::new();
        let mut fields = Vec::new();
        for name in names {
            let Some(at) = self
                .state
                .fields
                .iter()
                .position(|field| field.name == *name)
            else {
                panic!(
                    "ModelForm: `{name}` is not an editable column of `{}`",
                    self.model_name
                );
            };
            columns.push(self.columns[at]);
            related.push(self.related[at].clone());
            fields.push(self.state.fields[at].clone());
        }
        self.columns = columns;
        self.related = related;
        self.state = FormState::unbound(fields);
        self
    }

    /// Leaves these columns out (the view sets them, or they keep their
    /// value).
    #[must_use]
    pub fn exclude(mut self, names: &[&str]) -> Self {
        let keep: Vec<usize> = (0..self.columns.len())
            .filter(|&at| !names.contains(&self.state.fields[at].name.as_str()))
            .collect();
        self.columns = keep.iter().map(|&at| self.columns[at]).collect();
        self.related = keep.iter().map(|&at| self.related[at].clone()).collect();
        let fields = keep
            .iter()
            .map(|&at| self.state.fields[at].clone())
            .collect();
        self.state = FormState::unbound(fields);
        self
    }

    /// A form that edits `model`: it shows its values, and
    /// [`save`](Self::save) updates that row.
    #[must_use]
    pub fn for_instance(mut self, model: E::Model) -> Self {
        for (column, field) in self.columns.iter().zip(&self.state.fields) {
            if let Some(text) = value_text(&model.get(*column)) {
                self.state.values.insert(field.name.clone(), vec![text]);
            }
        }
        self.instance = Some(model);
        self
    }

    /// Validates `input` against the fields. Unknown fields are ignored.
    #[must_use]
    pub fn bind(mut self, mut input: FormInput) -> Self {
        self.state.bound = true;
        self.cleaned.clear();
        for ((column, field), related) in self
            .columns
            .iter()
            .zip(&self.state.fields)
            .zip(&self.related)
        {
            match input.text(&field.name) {
                Some(text) => self
                    .state
                    .values
                    .insert(field.name.clone(), vec![text.to_owned()]),
                None => self.state.values.remove(&field.name),
            };
            let def = column.def();
            let mut taken = take_value(&mut input, field, def.get_column_type(), def.is_null());
            // A key that is not a number (or not among the loaded choices)
            // reads as a wrong choice, not as a wrong number.
            if related.is_some() {
                taken = taken.map_err(|error| match error.message() {
                    REQUIRED => error,
                    _ => ValidationError::new(INVALID_RELATED),
                });
            }
            match taken {
                Ok(value) => self.cleaned.push((*column, value)),
                Err(error) => self.state.errors.add(error.for_field(&field.name)),
            }
        }
        self
    }

    /// Whether the form was bound and has no error.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.state.is_valid()
    }

    /// Saves a valid form: inserts a row, or updates the instance given to
    /// [`for_instance`](Self::for_instance).
    ///
    /// # Errors
    ///
    /// [`SaveError::Invalid`] when the form has errors, including a unique
    /// or foreign key violation on save, which becomes an error of the form
    /// (on the field when the database names its column);
    /// [`SaveError::Database`] for any other database error.
    pub async fn save(&mut self, db: &impl ConnectionTrait) -> Result<E::Model, SaveError> {
        self.save_with(db, |_| {}).await
    }

    /// As [`save`](Self::save), after `complete` sets what the form leaves
    /// out (a timestamp, the current user).
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub async fn save_with(
        &mut self,
        db: &impl ConnectionTrait,
        complete: impl FnOnce(&mut E::ActiveModel),
    ) -> Result<E::Model, SaveError> {
        if !self.is_valid() || !self.related_rows_exist(db).await? {
            return self.invalid(db).await;
        }
        let mut row = match &self.instance {
            Some(model) => model.clone().into_active_model(),
            None => <E::ActiveModel as ActiveModelTrait>::default(),
        };
        for (column, value) in &self.cleaned {
            row.try_set(*column, value.clone())?;
        }
        complete(&mut row);
        let saved = if self.instance.is_some() {
            row.update(db).await
        } else {
            row.insert(db).await
        };
        match saved {
            Ok(model) => Ok(model),
            Err(error) => match error.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(message)) => {
                    self.constraint_error(&message, "with this", "already exists.");
                    self.invalid(db).await
                }
                // A related row deleted since the check above.
                Some(SqlErr::ForeignKeyConstraintViolation(message)) => {
                    self.constraint_error(&message, "", "");
                    self.invalid(db).await
                }
                _ => Err(SaveError::Database(error)),
            },
        }
    }

    /// Loads the rows each foreign key field can point at as its choices
    /// (`<option>`s labelled with the related model's display, or its
    /// key), in key order. [`save`](Self::save) calls it when the form
    /// comes back invalid; a page showing a new or unbound form calls it
    /// before rendering. Called before [`bind`](Self::bind), the choices
    /// also validate the submitted keys.
    ///
    /// # Errors
    ///
    /// A database error reading a related table.
    pub async fn load_choices(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        for (at, related) in self.related.iter().enumerate() {
            let Some(related) = related else { continue };
            let ty = self.columns[at].def().get_column_type().clone();
            let rows = db
                .query_all(
                    Query::select()
                        .column(Asterisk)
                        .from(Alias::new(&related.table))
                        .order_by(Alias::new(&related.column), Order::Asc),
                )
                .await?;
            let mut choices = Vec::with_capacity(rows.len());
            for row in &rows {
                let key = key_text(row, &related.column, &ty)?;
                let label = related
                    .label
                    .as_ref()
                    .and_then(|label| label(row))
                    .unwrap_or_else(|| key.clone());
                choices.push((key, label));
            }
            self.state.fields[at].choices = choices;
        }
        Ok(())
    }

    /// Whether every foreign key of the cleaned values names an existing
    /// row; a missing one becomes an error on its field, so that a forged
    /// key never reaches the database's constraint (or, with foreign keys
    /// off, the table).
    async fn related_rows_exist(&mut self, db: &impl ConnectionTrait) -> Result<bool, DbErr> {
        // A valid form has one cleaned value per field, in field order.
        let mut valid = true;
        for (at, related) in self.related.iter().enumerate() {
            let (Some(related), Some((_, value))) = (related, self.cleaned.get(at)) else {
                continue;
            };
            if *value == value.as_null() {
                continue;
            }
            let found = db
                .query_one(
                    Query::select()
                        .column(Alias::new(&related.column))
                        .from(Alias::new(&related.table))
                        .and_where(Expr::col(Alias::new(&related.column)).eq(value.clone()))
                        .limit(1),
                )
                .await?;
            if found.is_none() {
                self.state.errors.add(
                    ValidationError::new(INVALID_RELATED).for_field(&self.state.fields[at].name),
                );
                valid = false;
            }
        }
        Ok(valid)
    }

    /// The answer for an invalid form, with the choices loaded to render it.
    async fn invalid(&mut self, db: &impl ConnectionTrait) -> Result<E::Model, SaveError> {
        self.load_choices(db).await?;
        Err(SaveError::Invalid)
    }

    /// Puts a constraint violation on the field whose column the database
    /// names, or on the whole form.
    fn constraint_error(&mut self, message: &str, with: &str, exists: &str) {
        let named = self
            .state
            .fields
            .iter()
            .find(|field| mentions_column(message, &field.name))
            .map(|field| (field.name.clone(), field.label.clone()));
        let unique = !with.is_empty();
        match (named, unique) {
            (Some((name, label)), true) => self.state.add_error(
                Some(&name),
                format!("{} {with} {label} {exists}", self.model_name),
            ),
            (Some((name, _)), false) => self.state.add_error(Some(&name), INVALID_RELATED),
            (None, true) => self.state.add_error(
                None,
                format!("{} with these values already exists.", self.model_name),
            ),
            (None, false) => self
                .state
                .add_error(None, "A related object does not exist; check the values."),
        }
    }
}

/// The single-column foreign keys of `E`: column name and target. Related
/// rows read with the display their app registered, when `E` is used
/// inside a project.
fn foreign_keys<E: EntityTrait>() -> Vec<(String, Related)> {
    E::Relation::iter()
        .filter_map(|relation| {
            let relation = relation.def();
            // The non-owner side holds the key column (as in `makemigrations`).
            if relation.is_owner {
                return None;
            }
            let table = table_name(&relation.to_tbl)?;
            let from: Vec<String> = relation.from_col.iter().map(ToString::to_string).collect();
            let to: Vec<String> = relation.to_col.iter().map(ToString::to_string).collect();
            let ([from], [to]) = (from.as_slice(), to.as_slice()) else {
                return None;
            };
            let label = RequestContext::with_current(|context| {
                context
                    .site
                    .model(&table)
                    .and_then(|entry| entry.options.row_label.clone())
            })
            .flatten();
            Some((
                from.clone(),
                Related {
                    table,
                    column: to.clone(),
                    label,
                },
            ))
        })
        .collect()
}

/// Column `column` of `row` as text, read as the key's type `ty` (the
/// drivers are strict: PostgreSQL will not read an `int4` as an `i64`).
fn key_text(row: &QueryResult, column: &str, ty: &ColumnType) -> Result<String, DbErr> {
    Ok(match ty {
        ColumnType::TinyInteger => row.try_get::<i8>("", column)?.to_string(),
        ColumnType::SmallInteger => row.try_get::<i16>("", column)?.to_string(),
        ColumnType::Integer => row.try_get::<i32>("", column)?.to_string(),
        ColumnType::BigInteger => row.try_get::<i64>("", column)?.to_string(),
        ColumnType::TinyUnsigned => row.try_get::<u8>("", column)?.to_string(),
        ColumnType::SmallUnsigned => row.try_get::<u16>("", column)?.to_string(),
        ColumnType::Unsigned => row.try_get::<u32>("", column)?.to_string(),
        ColumnType::BigUnsigned => row.try_get::<u64>("", column)?.to_string(),
        _ => row.try_get::<String>("", column)?,
    })
}

/// Whether a database's constraint message names `column` as a whole word
/// (`table.column`, `(column)`, `` `column` ``, `table_column_key`).
fn mentions_column(message: &str, column: &str) -> bool {
    let inner = format!("_{column}_");
    let last = format!("_{column}");
    message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == column || word.contains(&inner) || word.ends_with(&last))
}

impl<E> Default for ModelForm<E>
where
    E: EntityTrait + Default,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelBehavior + Send,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<E: EntityTrait> std::ops::Deref for ModelForm<E> {
    type Target = FormState;

    fn deref(&self) -> &FormState {
        &self.state
    }
}

impl<E: EntityTrait> std::ops::DerefMut for ModelForm<E> {
    fn deref_mut(&mut self) -> &mut FormState {
        &mut self.state
    }
}

impl<E: EntityTrait> fmt::Display for ModelForm<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.state, f)
    }
}

impl<E: EntityTrait> fmt::Debug for ModelForm<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelForm")
            .field("model", &self.model_name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The field of a column of type `ty`, or `None` for types forms do not
/// handle.
fn spec_for(name: &str, ty: &ColumnType) -> Option<FieldSpec> {
    let spec = match ty {
        ColumnType::String(StringLen::N(n)) => {
            FieldSpec::new(name, FieldKind::Text).max_length(usize::try_from(*n).ok()?)
        }
        ColumnType::String(_) => FieldSpec::new(name, FieldKind::Text),
        ColumnType::Char(n) => {
            let spec = FieldSpec::new(name, FieldKind::Text);
            match n {
                Some(n) => spec.max_length(usize::try_from(*n).ok()?),
                None => spec,
            }
        }
        ColumnType::Text => FieldSpec::new(name, FieldKind::Text).widget(Widget::Textarea),
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::BigInteger => FieldSpec::new(name, FieldKind::Integer),
        ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned
        | ColumnType::Unsigned
        | ColumnType::BigUnsigned => FieldSpec::new(name, FieldKind::Integer).min(0.0),
        ColumnType::Float | ColumnType::Double => FieldSpec::new(name, FieldKind::Float),
        ColumnType::Decimal(_) | ColumnType::Money(_) => FieldSpec::new(name, FieldKind::Decimal),
        ColumnType::Boolean => FieldSpec::new(name, FieldKind::Boolean),
        ColumnType::Date => FieldSpec::new(name, FieldKind::Date),
        ColumnType::Time => FieldSpec::new(name, FieldKind::Time),
        ColumnType::DateTime | ColumnType::Timestamp | ColumnType::TimestampWithTimeZone => {
            FieldSpec::new(name, FieldKind::DateTime)
        }
        _ => return None,
    };
    Some(spec)
}

/// Reads a field as `T`; `None` (SQL NULL) when the column is nullable and
/// the field empty. A non-null boolean column reads an empty field as
/// `false`, which is why this asks the column and not the field's `required`.
fn typed<T: FormValue>(
    input: &mut FormInput,
    spec: &FieldSpec,
    nullable: bool,
    value: fn(Option<T>) -> Value,
) -> Result<Value, ValidationError> {
    if nullable {
        <Option<T> as FormValue>::take(input, spec).map(value)
    } else {
        T::take(input, spec).map(|v| value(Some(v)))
    }
}

fn take_value(
    input: &mut FormInput,
    spec: &FieldSpec,
    ty: &ColumnType,
    null: bool,
) -> Result<Value, ValidationError> {
    match ty {
        ColumnType::TinyInteger => typed(input, spec, null, Value::TinyInt),
        ColumnType::SmallInteger => typed(input, spec, null, Value::SmallInt),
        ColumnType::Integer => typed(input, spec, null, Value::Int),
        ColumnType::BigInteger => typed(input, spec, null, Value::BigInt),
        ColumnType::TinyUnsigned => typed(input, spec, null, Value::TinyUnsigned),
        ColumnType::SmallUnsigned => typed(input, spec, null, Value::SmallUnsigned),
        ColumnType::Unsigned => typed(input, spec, null, Value::Unsigned),
        ColumnType::BigUnsigned => typed(input, spec, null, Value::BigUnsigned),
        ColumnType::Float => typed(input, spec, null, Value::Float),
        ColumnType::Double => typed(input, spec, null, Value::Double),
        ColumnType::Decimal(_) | ColumnType::Money(_) => {
            typed::<Decimal>(input, spec, null, Value::Decimal)
        }
        ColumnType::Boolean => typed::<bool>(input, spec, null, Value::Bool),
        ColumnType::Date => typed::<Date>(input, spec, null, Value::ChronoDate),
        ColumnType::Time => typed::<Time>(input, spec, null, Value::ChronoTime),
        ColumnType::TimestampWithTimeZone => typed::<DateTime>(input, spec, null, |v| {
            Value::ChronoDateTimeUtc(v.map(|naive| naive.and_utc()))
        }),
        ColumnType::DateTime | ColumnType::Timestamp => {
            typed::<DateTime>(input, spec, null, Value::ChronoDateTime)
        }
        _ => typed::<String>(input, spec, null, Value::String),
    }
}

/// A column's value as the text its input shows.
fn value_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(v) => v.and_then(|b| b.then(|| "on".to_owned()))?,
        Value::TinyInt(v) => v.as_ref()?.to_string(),
        Value::SmallInt(v) => v.as_ref()?.to_string(),
        Value::Int(v) => v.as_ref()?.to_string(),
        Value::BigInt(v) => v.as_ref()?.to_string(),
        Value::TinyUnsigned(v) => v.as_ref()?.to_string(),
        Value::SmallUnsigned(v) => v.as_ref()?.to_string(),
        Value::Unsigned(v) => v.as_ref()?.to_string(),
        Value::BigUnsigned(v) => v.as_ref()?.to_string(),
        Value::Float(v) => v.as_ref()?.to_string(),
        Value::Double(v) => v.as_ref()?.to_string(),
        Value::String(v) => v.clone()?,
        Value::Char(v) => v.as_ref()?.to_string(),
        Value::Decimal(v) => v.as_ref()?.to_string(),
        Value::ChronoDate(v) => v.as_ref()?.to_text()?,
        Value::ChronoTime(v) => v.as_ref()?.to_text()?,
        Value::ChronoDateTime(v) => v.as_ref()?.to_text()?,
        Value::ChronoDateTimeUtc(v) => v.as_ref()?.naive_utc().to_text()?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_messages_are_matched_to_columns_by_whole_words() {
        assert!(mentions_column(
            "UNIQUE constraint failed: polls_tag.slug",
            "slug"
        ));
        assert!(mentions_column(
            "Duplicate entry 'x' for key 'polls_tag.slug'",
            "slug"
        ));
        assert!(mentions_column(
            "duplicate key value violates unique constraint \"polls_tag_slug_key\"",
            "slug"
        ));
        assert!(!mentions_column(
            "UNIQUE constraint failed: polls_tag.slugs",
            "slug"
        ));
    }
}
