//! Forms, as Django has them: a struct declares the fields, Kiln parses and
//! validates what a browser submitted, and a form with errors renders
//! itself again with the submitted text and the messages.
//!
//! - `#[derive(Form)]` on a struct with named fields implements
//!   [`FormData`]: each field's type gives its kind and widget
//!   ([`FormValue`]), `#[form(...)]` attributes add the label, help text and
//!   constraints.
//! - [`Form<T>`] is the extractor: it reads a URL-encoded or multipart body,
//!   validates it, and gives the handler the typed value or the bound form
//!   to render again.
//! - [`BoundForm<T>`] renders (an unbound one for a `GET`), through
//!   [`FormState`]: [`as_div`](FormState::as_div) for the whole form,
//!   [`BoundField`] for each field's label, widget and errors.
//! - [`ModelForm<E>`] builds a form from a SeaORM entity's columns and saves
//!   it.
//!
//! A form that does not validate is answered with **422 Unprocessable
//! Content** and the page with the form again (the extractor itself never
//! rejects a request for invalid values; malformed bodies are 400, oversized
//! ones 413). 422 rather than Django's 200 lets tests, proxies and tools
//! such as Turbo tell a failed submission from a success, and browsers
//! display the page all the same.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::forms::{BoundForm, Email, ValidationError};
//!
//! #[derive(Debug, Form)]
//! #[form(clean = Contact::check)]
//! struct Contact {
//!     #[form(max_length = 100)]
//!     name: String,
//!     email: Email,
//!     #[form(widget = "textarea", help_text = "At most 1000 characters.", max_length = 1000)]
//!     message: String,
//!     #[form(label = "Send me a copy")]
//!     cc_myself: bool,
//! }
//!
//! impl Contact {
//!     fn check(&self) -> Result<(), ValidationError> {
//!         if self.message.contains("http://") {
//!             return Err(ValidationError::new("Links must use https.").for_field("message"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! async fn show() -> Html<String> {
//!     page(&BoundForm::<Contact>::new())
//! }
//!
//! async fn send(form: Form<Contact>) -> Response {
//!     match form.into_result() {
//!         Ok(contact) => Redirect::to("/thanks/").into_response(),
//!         Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, page(&form)).into_response(),
//!     }
//! }
//!
//! fn page(form: &BoundForm<Contact>) -> Html<String> {
//!     Html(format!("<form method=\"post\">{form}<button>Send</button></form>"))
//! }
//!
//! let app = App::new("contact").route("/", "form", get(show).post(send));
//! # let _ = app;
//! ```

mod field;
mod formset;
mod input;
mod model;
mod render;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use axum::extract::{FromRequest, Request};

pub(crate) use field::REQUIRED;
pub use field::{
    Choices, Email, FieldKind, FieldSpec, FormValue, Slug, Url, Widget, choice_from_text,
    choice_spec, label_from_name,
};
pub use formset::{FormSet, ManagementForm};
pub use input::FormInput;
pub use kiln_macros::{Choices, Form};
pub use model::{ModelForm, SaveError};
pub use render::{BoundField, FormState};

use crate::http::Error;

/// A message about a submitted value: on one field, or on the whole form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    message: String,
    pub(crate) field: Option<String>,
}

impl ValidationError {
    /// An error with `message` (shown as written, escaped), on the field
    /// being validated, or on the whole form when raised by a form's `clean`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// Puts the error on field `name` (from a form's `clean`).
    #[must_use]
    pub fn for_field(mut self, name: &str) -> Self {
        self.field = Some(name.to_owned());
        self
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

impl From<&str> for ValidationError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<String> for ValidationError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

/// The errors of a form: messages per field and for the whole form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FormErrors {
    fields: BTreeMap<String, Vec<String>>,
    non_field: Vec<String>,
}

impl FormErrors {
    /// Whether there is no error.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.non_field.is_empty()
    }

    /// The messages of field `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every field's messages.
    #[must_use]
    pub fn by_field(&self) -> &BTreeMap<String, Vec<String>> {
        &self.fields
    }

    /// The messages about the whole form.
    #[must_use]
    pub fn non_field(&self) -> &[String] {
        &self.non_field
    }

    /// Adds `error` where it belongs.
    pub fn add(&mut self, error: ValidationError) {
        match error.field {
            Some(field) => self.fields.entry(field).or_default().push(error.message),
            None => self.non_field.push(error.message),
        }
    }
}

/// A struct whose fields are a form's fields; `#[derive(Form)]` implements
/// it (see the [module docs](self)), calling the functions of this module.
pub trait FormData: Sized + Send + 'static {
    /// The fields, in declaration order (built once).
    fn fields() -> &'static [FieldSpec];

    /// Takes each field's value out of `input`, recording each field's
    /// error in `errors`; `None` when any field failed.
    fn from_input(input: &mut FormInput, errors: &mut FormErrors) -> Option<Self>;

    /// Validation across fields (`#[form(clean = path)]`), run when every
    /// field is valid.
    ///
    /// # Errors
    ///
    /// The error, on the whole form unless it names a field.
    fn clean(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    /// Each field's texts for a form showing this value (none for an
    /// empty field, several for a multiple choice).
    fn to_values(&self) -> Vec<(&'static str, Vec<String>)>;
}

/// A field's `validate` function: it checks a parsed value of type `T`
/// (the value inside, for an `Option`).
pub type Validator<T> = fn(&<T as FormValue>::Target) -> Result<(), ValidationError>;

/// Reads field `spec` of type `T` from `input` and runs its validators,
/// recording the first error in `errors`. The code `#[derive(Form)]`
/// generates calls it once per field.
pub fn take_field<T: FormValue>(
    input: &mut FormInput,
    spec: &FieldSpec,
    validators: &[Validator<T>],
    errors: &mut FormErrors,
) -> Option<T> {
    let checked = T::take(input, spec).and_then(|value| {
        if let Some(target) = value.target() {
            for validate in validators {
                validate(target)?;
            }
        }
        Ok(value)
    });
    match checked {
        Ok(value) => Some(value),
        Err(error) => {
            errors.add(error.for_field(&spec.name));
            None
        }
    }
}

/// A form of type `T`: unbound (initial values) or bound to submitted data
/// with its errors. Renders through [`FormState`] (which it dereferences
/// to); its [`Display`](fmt::Display) is the whole form as HTML.
pub struct BoundForm<T> {
    state: FormState,
    _form: PhantomData<fn() -> T>,
}

impl<T: FormData> BoundForm<T> {
    /// An unbound form showing the fields' `initial` values.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: FormState::unbound(T::fields().to_vec()),
            _form: PhantomData,
        }
    }

    /// An unbound form showing `value` (to edit it).
    #[must_use]
    pub fn with_initial(value: &T) -> Self {
        let mut form = Self::new();
        for (name, texts) in value.to_values() {
            if texts.is_empty() {
                form.state.values.remove(name);
            } else {
                form.state.values.insert(name.to_owned(), texts);
            }
        }
        form
    }

    /// Validates `input`: the typed value when it is valid, and the bound
    /// form (with the submitted text and any errors) in every case.
    #[must_use]
    pub fn bind(mut input: FormInput) -> Form<T> {
        let fields = T::fields().to_vec();
        let mut values: BTreeMap<String, Vec<String>> = fields
            .iter()
            .map(|field| (field.name.clone(), input.texts(&field.name).to_vec()))
            .filter(|(_, texts)| !texts.is_empty())
            .collect();
        for (field, file_name) in input.file_names() {
            values.insert(field.to_owned(), vec![file_name.to_owned()]);
        }
        let mut errors = FormErrors::default();
        let mut value = T::from_input(&mut input, &mut errors);
        if let Some(Err(error)) = value.as_ref().map(FormData::clean) {
            errors.add(error);
        }
        if !errors.is_empty() {
            value = None;
        }
        Form {
            value,
            form: Self {
                state: FormState {
                    fields,
                    values,
                    errors,
                    bound: true,
                    prefix: None,
                },
                _form: PhantomData,
            },
        }
    }
}

impl<T: FormData> Default for BoundForm<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::ops::Deref for BoundForm<T> {
    type Target = FormState;

    fn deref(&self) -> &FormState {
        &self.state
    }
}

impl<T> std::ops::DerefMut for BoundForm<T> {
    fn deref_mut(&mut self) -> &mut FormState {
        &mut self.state
    }
}

impl<T> fmt::Display for BoundForm<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.state, f)
    }
}

impl<T> fmt::Debug for BoundForm<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundForm")
            .field("form", &std::any::type_name::<T>())
            .field("state", &self.state)
            .finish()
    }
}

impl<T> serde::Serialize for BoundForm<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(serializer)
    }
}

/// The form extractor: the submitted form of type `T`, validated.
///
/// It reads what [`FormInput`] reads (URL-encoded or multipart bodies; the
/// query string of a `GET`). Bad bodies are rejected (400, 413, 415);
/// invalid values are not: the handler gets them through
/// [`into_result`](Self::into_result) and answers 422 with the bound form.
/// Fields the form does not declare are ignored.
pub struct Form<T> {
    value: Option<T>,
    form: BoundForm<T>,
}

impl<T: FormData> Form<T> {
    /// Whether every field and the form's `clean` passed.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.value.is_some()
    }

    /// The typed value, or the bound form to render again with its errors.
    ///
    /// # Errors
    ///
    /// The bound form, when validation failed.
    pub fn into_result(self) -> Result<T, BoundForm<T>> {
        self.value.ok_or(self.form)
    }

    /// The typed value (when valid) and the bound form, for errors found
    /// after validation ([`FormState::add_error`]).
    #[must_use]
    pub fn into_parts(self) -> (Option<T>, BoundForm<T>) {
        (self.value, self.form)
    }

    /// The bound form.
    #[must_use]
    pub fn form(&self) -> &BoundForm<T> {
        &self.form
    }
}

impl<T> fmt::Debug for Form<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field("valid", &self.value.is_some())
            .field("form", &self.form)
            .finish()
    }
}

impl<T: FormData, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let input = FormInput::from_request(request, state).await?;
        Ok(BoundForm::bind(input))
    }
}

/// Builds a form's fields once: `#[derive(Form)]` keeps them in a static.
pub fn fields_once(
    cell: &'static std::sync::OnceLock<Vec<FieldSpec>>,
    build: fn() -> Vec<FieldSpec>,
) -> &'static [FieldSpec] {
    cell.get_or_init(build)
}
