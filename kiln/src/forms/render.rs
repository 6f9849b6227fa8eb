//! A form's state as people see it: submitted text, errors, and its HTML.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use super::field::{FieldKind, FieldSpec, Widget, is_checked};
use super::{FormErrors, ValidationError};
use crate::http::escape;

/// The fields of a form with what was submitted (or the initial values)
/// and the errors found: what a page renders.
///
/// [`BoundForm`](super::BoundForm) and [`ModelForm`](super::ModelForm) give
/// access to it; its [`Display`](fmt::Display) is [`as_div`](Self::as_div).
#[derive(Debug, Clone)]
pub struct FormState {
    pub(crate) fields: Vec<FieldSpec>,
    /// The texts of each field: what was submitted, or the initial value
    /// (several for a multiple choice).
    pub(crate) values: BTreeMap<String, Vec<String>>,
    pub(crate) errors: FormErrors,
    pub(crate) bound: bool,
    /// Prepended to each field's HTML name and id in a formset
    /// (`form-0-title`, `id_form-0-title`).
    /// A boxed `str` keeps `Result<T, BoundForm<T>>` small.
    pub(crate) prefix: Option<Box<str>>,
}

impl FormState {
    pub(crate) fn unbound(fields: Vec<FieldSpec>) -> Self {
        let values = fields
            .iter()
            .filter_map(|field| Some((field.name.clone(), vec![field.initial.clone()?])))
            .collect();
        Self {
            fields,
            values,
            errors: FormErrors::default(),
            bound: false,
            prefix: None,
        }
    }

    /// Whether the form holds submitted data (as opposed to initial values).
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// Whether the form was submitted and has no error.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.bound && self.errors.is_empty()
    }

    /// The errors found.
    #[must_use]
    pub fn errors(&self) -> &FormErrors {
        &self.errors
    }

    /// Adds an error found after validation (a row that already exists, a
    /// payment refused): on `field`, or on the whole form when `None`.
    pub fn add_error(&mut self, field: Option<&str>, error: impl Into<ValidationError>) {
        let mut error = error.into();
        if let Some(field) = field {
            error.field = Some(field.to_owned());
        }
        self.errors.add(error);
    }

    /// Whether the form has a file field, so needs
    /// `enctype="multipart/form-data"`.
    #[must_use]
    pub fn is_multipart(&self) -> bool {
        self.fields
            .iter()
            .any(|field| field.kind == FieldKind::File)
    }

    /// The fields, to lay them out one by one.
    pub fn fields(&self) -> impl Iterator<Item = BoundField<'_>> {
        self.fields
            .iter()
            .map(move |spec| BoundField { form: self, spec })
    }

    /// One field by name.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<BoundField<'_>> {
        self.fields().find(|field| field.spec.name == name)
    }

    /// The errors that belong to no field, as `<ul class="errorlist nonfield">`
    /// (empty when there are none).
    #[must_use]
    pub fn non_field_errors_html(&self) -> String {
        error_list(self.errors.non_field(), "errorlist nonfield", None)
    }

    /// The whole form as Django 5 renders it by default: the non-field
    /// errors, then a `<div>` per visible field (label, help text, errors,
    /// widget), then the hidden fields. No `<form>` element and no button:
    /// the page adds those (and the CSRF token).
    #[must_use]
    pub fn as_div(&self) -> String {
        let mut html = self.non_field_errors_html();
        let (hidden, visible): (Vec<_>, Vec<_>) = self
            .fields()
            .partition(|field| field.spec.widget == Widget::Hidden);
        for field in visible {
            html.push_str(&field.as_div());
        }
        for field in hidden {
            // A hidden field's errors have nowhere else to go.
            html.push_str(&error_list(field.errors(), "errorlist", None));
            html.push_str(&field.widget());
        }
        html
    }
}

impl fmt::Display for FormState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_div())
    }
}

/// The state of a form serialized for a template context: `html` (the whole
/// form), `is_multipart`, `non_field_errors` and, per field, `name`, `label`,
/// `label_tag`, `legend_tag`, `is_group`, `values`, `widget`, `errors_html`, `help_text_html`, `html` and
/// `errors`. The HTML strings are already escaped: mark them safe.
impl serde::Serialize for FormState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields: Vec<serde_json::Value> = self
            .fields()
            .map(|field| {
                serde_json::json!({
                    "name": field.name(),
                    "id": field.id(),
                    "label": field.label(),
                    "label_tag": field.label_tag(),
                    "legend_tag": field.legend_tag(),
                    "is_group": field.is_group(),
                    "values": field.values(),
                    "widget": field.widget(),
                    "errors_html": field.errors_html(),
                    "help_text_html": field.help_text_html(),
                    "html": field.as_div(),
                    "errors": field.errors(),
                })
            })
            .collect();
        let mut state = serializer.serialize_struct("FormState", 5)?;
        state.serialize_field("html", &self.as_div())?;
        state.serialize_field("is_multipart", &self.is_multipart())?;
        state.serialize_field("non_field_errors", self.errors.non_field())?;
        state.serialize_field("non_field_errors_html", &self.non_field_errors_html())?;
        state.serialize_field("fields", &fields)?;
        state.end()
    }
}

/// One field of a [`FormState`], with the pieces a template lays out.
#[derive(Debug, Clone, Copy)]
pub struct BoundField<'a> {
    form: &'a FormState,
    spec: &'a FieldSpec,
}

impl<'a> BoundField<'a> {
    /// The field's name (the form key).
    #[must_use]
    pub fn name(&self) -> &'a str {
        &self.spec.name
    }

    /// The name its inputs are submitted under: the field's name, after
    /// the form's prefix in a formset (`form-0-title`).
    #[must_use]
    pub fn html_name(&self) -> String {
        match &self.form.prefix {
            Some(prefix) => format!("{prefix}-{}", self.spec.name),
            None => self.spec.name.clone(),
        }
    }

    /// The `id` of its widget: `id_<html name>`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("id_{}", self.html_name())
    }

    /// The label text (not escaped).
    #[must_use]
    pub fn label(&self) -> &'a str {
        &self.spec.label
    }

    /// The text the field shows: what was submitted, or its initial value
    /// (the first one, for a multiple choice).
    #[must_use]
    pub fn value(&self) -> Option<&'a str> {
        self.values().first().map(String::as_str)
    }

    /// Every text the field shows: the choices selected, for a multiple
    /// choice.
    #[must_use]
    pub fn values(&self) -> &'a [String] {
        self.form
            .values
            .get(&self.spec.name)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the widget is a group of inputs (radio buttons,
    /// checkboxes), laid out in a `<fieldset>` with a `<legend>`.
    #[must_use]
    pub fn is_group(&self) -> bool {
        matches!(self.spec.widget, Widget::Radio | Widget::CheckboxMultiple)
    }

    /// `<legend>Label:</legend>`, for a group of inputs.
    #[must_use]
    pub fn legend_tag(&self) -> String {
        format!("<legend>{}:</legend>", escape(&self.spec.label))
    }

    /// Its error messages.
    #[must_use]
    pub fn errors(&self) -> &'a [String] {
        self.form.errors.field(&self.spec.name)
    }

    /// `<label for="id_<name>">Label:</label>` (`id_<name>_0`, the first
    /// input, for a group of inputs, as Django does).
    #[must_use]
    pub fn label_tag(&self) -> String {
        let target = if self.is_group() {
            format!("{}_0", self.id())
        } else {
            self.id()
        };
        format!(
            "<label for=\"{}\">{}:</label>",
            escape(&target),
            escape(&self.spec.label)
        )
    }

    /// The help text in `<div class="helptext" id="id_<name>_helptext">`,
    /// or nothing.
    #[must_use]
    pub fn help_text_html(&self) -> String {
        match &self.spec.help_text {
            Some(text) => format!(
                "<div class=\"helptext\" id=\"{}_helptext\">{}</div>",
                escape(&self.id()),
                escape(text)
            ),
            None => String::new(),
        }
    }

    /// The errors as `<ul class="errorlist" id="id_<name>_error">`, or nothing.
    #[must_use]
    pub fn errors_html(&self) -> String {
        error_list(
            self.errors(),
            "errorlist",
            Some(&format!("{}_error", self.id())),
        )
    }

    /// The input, select or textarea, with the submitted text escaped, the
    /// constraints as HTML attributes, and `aria-invalid` /
    /// `aria-describedby` pointing at the errors and help text.
    #[must_use]
    pub fn widget(&self) -> String {
        let spec = self.spec;
        let id = self.id();
        // The name and id go first, except in a group, where each input
        // has its own id.
        let mut attrs = if self.is_group() {
            String::new()
        } else {
            format!(
                " name=\"{}\" id=\"{}\"",
                escape(&self.html_name()),
                escape(&id)
            )
        };
        let hidden = spec.widget == Widget::Hidden;
        // A checkbox left unticked is not sent, so `required` would force
        // it (or, in a group, every one of them) on; a hidden input cannot
        // be filled in.
        let required = spec.required
            && !hidden
            && !matches!(spec.widget, Widget::Checkbox | Widget::CheckboxMultiple);
        if required {
            attrs.push_str(" required");
        }
        if let Some(max) = spec.max_length {
            let _ = write!(attrs, " maxlength=\"{max}\"");
        }
        if let Some(min) = spec.min_length {
            let _ = write!(attrs, " minlength=\"{min}\"");
        }
        if let Some(min) = spec.min {
            let _ = write!(attrs, " min=\"{min}\"");
        }
        if let Some(max) = spec.max {
            let _ = write!(attrs, " max=\"{max}\"");
        }
        if !hidden {
            let mut described = Vec::new();
            if spec.help_text.is_some() {
                described.push(format!("{id}_helptext"));
            }
            if !self.errors().is_empty() {
                attrs.push_str(" aria-invalid=\"true\"");
                described.push(format!("{id}_error"));
            }
            if !described.is_empty() {
                let _ = write!(
                    attrs,
                    " aria-describedby=\"{}\"",
                    escape(&described.join(" "))
                );
            }
        }
        let value = self.value().unwrap_or_default();
        let value_attr = if value.is_empty() {
            String::new()
        } else {
            format!(" value=\"{}\"", escape(value))
        };
        match spec.widget {
            Widget::Textarea => {
                format!(
                    "<textarea cols=\"40\" rows=\"10\"{attrs}>\n{}</textarea>",
                    escape(value)
                )
            }
            Widget::SelectMultiple => {
                let mut html = format!("<select{attrs} multiple>");
                push_options(&mut html, &spec.choices, self.values());
                html.push_str("</select>");
                html
            }
            Widget::Radio | Widget::CheckboxMultiple => {
                let kind = if spec.widget == Widget::Radio {
                    "radio"
                } else {
                    "checkbox"
                };
                let mut html = format!("<div id=\"{}\">", escape(&id));
                for (at, (choice, label)) in spec.choices.iter().enumerate() {
                    let checked = if self.values().contains(choice) {
                        " checked"
                    } else {
                        ""
                    };
                    let _ = write!(
                        html,
                        "<div><label for=\"{id}_{at}\"><input type=\"{kind}\" name=\"{}\" \
                         value=\"{}\" id=\"{id}_{at}\"{attrs}{checked}>{}</label></div>",
                        escape(&self.html_name()),
                        escape(choice),
                        escape(label),
                        id = escape(&id),
                    );
                }
                html.push_str("</div>");
                html
            }
            Widget::Select => {
                let mut html = format!("<select{attrs}>");
                let has_selection = spec.choices.iter().any(|(choice, _)| choice == value);
                if !spec.required || !has_selection {
                    html.push_str("<option value=\"\">---------</option>");
                }
                push_options(
                    &mut html,
                    &spec.choices,
                    &self.values()[..self.values().len().min(1)],
                );
                html.push_str("</select>");
                html
            }
            Widget::Checkbox => {
                let checked = if is_checked(value) { " checked" } else { "" };
                format!("<input type=\"checkbox\"{attrs}{checked}>")
            }
            // Passwords and files are never sent back to the browser.
            Widget::Password => format!("<input type=\"password\"{attrs}>"),
            Widget::File => format!("<input type=\"file\"{attrs}>"),
            Widget::Number => {
                let step = if spec.kind == FieldKind::Integer {
                    ""
                } else {
                    " step=\"any\""
                };
                format!("<input type=\"number\"{attrs}{step}{value_attr}>")
            }
            other => {
                let kind = match other {
                    Widget::Hidden => "hidden",
                    Widget::Date => "date",
                    Widget::Time => "time",
                    Widget::DateTimeLocal => "datetime-local",
                    Widget::Email => "email",
                    Widget::Url => "url",
                    _ => "text",
                };
                format!("<input type=\"{kind}\"{attrs}{value_attr}>")
            }
        }
    }

    /// The field in a `<div>`: label, help text, errors, widget. A group
    /// of inputs is a `<fieldset>` whose `<legend>` is the label, so that
    /// a screen reader names the group with each input.
    #[must_use]
    pub fn as_div(&self) -> String {
        let (open, label, close) = if self.is_group() {
            ("<div><fieldset>", self.legend_tag(), "</fieldset></div>")
        } else {
            ("<div>", self.label_tag(), "</div>")
        };
        format!(
            "{open}{label}{}{}{}{close}",
            self.help_text_html(),
            self.errors_html(),
            self.widget()
        )
    }
}

impl fmt::Display for BoundField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_div())
    }
}

/// Appends an `<option>` per choice, `selected` when among `selected`.
fn push_options(html: &mut String, choices: &[(String, String)], selected: &[String]) {
    for (choice, label) in choices {
        let mark = if selected.contains(choice) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<option value=\"{}\"{mark}>{}</option>",
            escape(choice),
            escape(label)
        );
    }
}

pub(crate) fn error_list(errors: &[String], class: &str, id: Option<&str>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let id = id
        .map(|id| format!(" id=\"{}\"", escape(id)))
        .unwrap_or_default();
    let mut html = format!("<ul class=\"{class}\"{id}>");
    for error in errors {
        let _ = write!(html, "<li>{}</li>", escape(error));
    }
    html.push_str("</ul>");
    html
}
