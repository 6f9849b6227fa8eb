//! What Django's model `Meta` and field options say, for forms and the
//! admin: human names, help text, choices, which fields are editable, the
//! default ordering and how a row reads as text (`__str__`).
//!
//! SeaORM's attributes describe the table; these describe the model to
//! people. An app registers them with its model:
//!
//! ```
//! # mod question {
//! #     use kiln::db::prelude::*;
//! #     #[sea_orm::model]
//! #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
//! #     #[sea_orm(table_name = "polls_question")]
//! #     pub struct Model {
//! #         #[sea_orm(primary_key)]
//! #         pub id: i64,
//! #         pub question_text: String,
//! #         pub status: String,
//! #     }
//! #     impl ActiveModelBehavior for ActiveModel {}
//! # }
//! use kiln::db::{FieldOptions, ModelOptions};
//!
//! let options = ModelOptions::new()
//!     .ordering(&["-id"])
//!     .display(|q: &question::Model| q.question_text.clone())
//!     .field("question_text", FieldOptions::new().verbose_name("question").help_text("What to ask"))
//!     .field("status", FieldOptions::new().choices(&[("draft", "Draft"), ("live", "Live")]))
//!     .field("id", FieldOptions::new().editable(false));
//! let polls = kiln::App::new("polls").model_with::<question::Entity>(options);
//! # let _ = polls;
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

type DisplayFn = Arc<dyn Fn(&dyn Any) -> Option<String> + Send + Sync>;

/// A row of the model's table, read whole, as text: the display function
/// applied to the typed model. Forms list related rows through it without
/// knowing the related entity's type.
pub(crate) type RowLabelFn = Arc<dyn Fn(&sea_orm::QueryResult) -> Option<String> + Send + Sync>;

/// Options of one model (Django's `Meta`, and `__str__`).
#[derive(Clone, Default)]
pub struct ModelOptions {
    pub(crate) verbose_name: Option<String>,
    pub(crate) verbose_name_plural: Option<String>,
    pub(crate) ordering: Vec<String>,
    pub(crate) fields: BTreeMap<String, FieldOptions>,
    display: Option<DisplayFn>,
    pub(crate) row_label: Option<RowLabelFn>,
}

/// Options of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOptions {
    pub(crate) verbose_name: Option<String>,
    pub(crate) help_text: Option<String>,
    pub(crate) choices: Vec<(String, String)>,
    pub(crate) editable: bool,
}

impl Default for FieldOptions {
    fn default() -> Self {
        Self {
            verbose_name: None,
            help_text: None,
            choices: Vec::new(),
            editable: true,
        }
    }
}

impl FieldOptions {
    /// Editable, with names derived from the column.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The label forms and the admin show (default: the column name with
    /// spaces, `question_text` -> `question text`).
    #[must_use]
    pub fn verbose_name(mut self, name: &str) -> Self {
        self.verbose_name = Some(name.to_owned());
        self
    }

    /// A sentence shown under the field in forms.
    #[must_use]
    pub fn help_text(mut self, text: &str) -> Self {
        self.help_text = Some(text.to_owned());
        self
    }

    /// The values the field may take, each with its label.
    #[must_use]
    pub fn choices(mut self, choices: &[(&str, &str)]) -> Self {
        self.choices = choices
            .iter()
            .map(|(value, label)| ((*value).to_owned(), (*label).to_owned()))
            .collect();
        self
    }

    /// Whether forms and the admin let people change it (`false` for
    /// values the code sets, such as timestamps).
    #[must_use]
    pub fn editable(mut self, editable: bool) -> Self {
        self.editable = editable;
        self
    }

    /// The help text, if any.
    #[must_use]
    pub fn help(&self) -> Option<&str> {
        self.help_text.as_deref()
    }

    /// The choices, as `(value, label)`.
    #[must_use]
    pub fn choice_list(&self) -> &[(String, String)] {
        &self.choices
    }

    /// Whether the field is editable.
    #[must_use]
    pub fn is_editable(&self) -> bool {
        self.editable
    }

    /// The label of `value` among the choices.
    #[must_use]
    pub fn choice_label(&self, value: &str) -> Option<&str> {
        self.choices
            .iter()
            .find(|(choice, _)| choice == value)
            .map(|(_, label)| label.as_str())
    }
}

impl ModelOptions {
    /// No options: names derived from the table, no ordering.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The model's name for people (default: the table name without the
    /// app prefix, `polls_question` -> `question`).
    #[must_use]
    pub fn verbose_name(mut self, name: &str) -> Self {
        self.verbose_name = Some(name.to_owned());
        self
    }

    /// The plural (default: the name with an `s`).
    #[must_use]
    pub fn verbose_name_plural(mut self, name: &str) -> Self {
        self.verbose_name_plural = Some(name.to_owned());
        self
    }

    /// The default order of lists: column names, `-` first for descending.
    #[must_use]
    pub fn ordering(mut self, columns: &[&str]) -> Self {
        self.ordering = columns.iter().map(|&column| column.to_owned()).collect();
        self
    }

    /// Options of one field (by column name).
    #[must_use]
    pub fn field(mut self, column: &str, options: FieldOptions) -> Self {
        self.fields.insert(column.to_owned(), options);
        self
    }

    /// How one row reads as text (Django's `__str__`), for the admin and
    /// form choices.
    #[must_use]
    pub fn display<M: 'static>(mut self, display: fn(&M) -> String) -> Self {
        self.display = Some(Arc::new(move |model: &dyn Any| {
            model.downcast_ref::<M>().map(display)
        }));
        self
    }

    /// Makes the display function read rows of `E`'s table (set when the
    /// app registers the model, where the entity type is known).
    pub(crate) fn label_rows_of<E: sea_orm::EntityTrait>(mut self) -> Self {
        if let Some(display) = self.display.clone() {
            self.row_label = Some(Arc::new(move |row| {
                let model =
                    <E::Model as sea_orm::FromQueryResult>::from_query_result(row, "").ok()?;
                display(&model)
            }));
        }
        self
    }

    /// The options of field `column` (defaults when none were given).
    #[must_use]
    pub fn field_options(&self, column: &str) -> FieldOptions {
        self.fields.get(column).cloned().unwrap_or_default()
    }

    /// The default ordering, as given.
    #[must_use]
    pub fn default_ordering(&self) -> &[String] {
        &self.ordering
    }

    /// `model` as text, with the display function, if one was given and
    /// `model` is of its type.
    #[must_use]
    pub fn display_of(&self, model: &dyn Any) -> Option<String> {
        self.display.as_ref().and_then(|display| display(model))
    }
}

impl fmt::Debug for ModelOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelOptions")
            .field("verbose_name", &self.verbose_name)
            .field("ordering", &self.ordering)
            .field("fields", &self.fields)
            .field("display", &self.display.is_some())
            .finish_non_exhaustive()
    }
}

/// A registered model: its app, table and options, with the names derived
/// as Django derives them.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// The app label.
    pub app: String,
    /// The table.
    pub table: String,
    /// The columns, in order.
    pub columns: Vec<String>,
    /// The options the app gave.
    pub options: ModelOptions,
}

impl ModelEntry {
    /// The model's name for people.
    #[must_use]
    pub fn verbose_name(&self) -> String {
        self.options.verbose_name.clone().unwrap_or_else(|| {
            let prefix = format!("{}_", self.app);
            self.table
                .strip_prefix(&prefix)
                .unwrap_or(&self.table)
                .replace('_', " ")
        })
    }

    /// The plural name.
    #[must_use]
    pub fn verbose_name_plural(&self) -> String {
        self.options
            .verbose_name_plural
            .clone()
            .unwrap_or_else(|| format!("{}s", self.verbose_name()))
    }

    /// A field's name for people.
    #[must_use]
    pub fn field_verbose_name(&self, column: &str) -> String {
        self.options
            .fields
            .get(column)
            .and_then(|options| options.verbose_name.clone())
            .unwrap_or_else(|| column.replace('_', " "))
    }

    /// Option and ordering names that are not columns of the model: typos,
    /// which `check` reports.
    #[must_use]
    pub fn unknown_columns(&self) -> Vec<String> {
        let ordering = self
            .options
            .ordering
            .iter()
            .map(|column| column.trim_start_matches('-'));
        self.options
            .fields
            .keys()
            .map(String::as_str)
            .chain(ordering)
            .filter(|column| !self.columns.iter().any(|known| known == column))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(options: ModelOptions) -> ModelEntry {
        ModelEntry {
            app: "polls".into(),
            table: "polls_question".into(),
            columns: vec!["id".into(), "question_text".into()],
            options,
        }
    }

    #[test]
    fn names_are_derived_as_django_derives_them() {
        let plain = entry(ModelOptions::new());
        assert_eq!(plain.verbose_name(), "question");
        assert_eq!(plain.verbose_name_plural(), "questions");
        assert_eq!(plain.field_verbose_name("question_text"), "question text");
        let named = entry(
            ModelOptions::new()
                .verbose_name("poll")
                .verbose_name_plural("polls")
                .field("question_text", FieldOptions::new().verbose_name("text")),
        );
        assert_eq!(named.verbose_name(), "poll");
        assert_eq!(named.verbose_name_plural(), "polls");
        assert_eq!(named.field_verbose_name("question_text"), "text");
    }

    #[test]
    fn typos_in_options_are_found() {
        let options = ModelOptions::new()
            .ordering(&["-pub_date", "id"])
            .field("question_txt", FieldOptions::new());
        assert_eq!(
            entry(options).unknown_columns(),
            ["question_txt", "pub_date"]
        );
    }

    #[test]
    fn display_and_choices() {
        struct Q(&'static str);
        let options = ModelOptions::new()
            .display(|q: &Q| q.0.to_uppercase())
            .field(
                "status",
                FieldOptions::new()
                    .choices(&[("d", "Draft")])
                    .editable(false),
            );
        assert_eq!(options.display_of(&Q("hi")).as_deref(), Some("HI"));
        assert_eq!(options.display_of(&42_u8), None);
        let status = options.field_options("status");
        assert_eq!(status.choice_label("d"), Some("Draft"));
        assert!(!status.is_editable());
        assert!(options.field_options("other").is_editable());
    }
}
