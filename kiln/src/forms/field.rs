//! Field descriptions and the conversion of submitted text into typed values.

use std::str::FromStr;

use sea_orm::prelude::{Date, DateTime, Decimal, Time};

use super::{FormInput, ValidationError};
use crate::uploads::UploadedFile;

/// What kind of value a field holds: it decides the default widget and how
/// submitted text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A whole number.
    Integer,
    /// A floating-point number.
    Float,
    /// An exact decimal number.
    Decimal,
    /// A checkbox: never required, absent means `false`.
    Boolean,
    /// A date (`YYYY-MM-DD`).
    Date,
    /// A time of day (`HH:MM[:SS]`).
    Time,
    /// A date and time without time zone (`YYYY-MM-DDTHH:MM[:SS]`).
    DateTime,
    /// An email address ([`Email`]).
    Email,
    /// An `http(s)` URL ([`Url`]).
    Url,
    /// Letters, digits, `_` and `-` ([`Slug`]).
    Slug,
    /// One value among the field's choices.
    Choice,
    /// Any number of the field's choices, each at most once.
    MultipleChoice,
    /// An uploaded file.
    File,
}

/// How a field is shown: which HTML element and input type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Widget {
    /// `<input type="text">`
    Text,
    /// `<textarea>`
    Textarea,
    /// `<input type="password">`, never re-displaying its value.
    Password,
    /// `<input type="hidden">`
    Hidden,
    /// `<input type="number">`
    Number,
    /// `<input type="checkbox">`
    Checkbox,
    /// `<input type="date">`
    Date,
    /// `<input type="time">`
    Time,
    /// `<input type="datetime-local">`
    DateTimeLocal,
    /// `<input type="email">`
    Email,
    /// `<input type="url">`
    Url,
    /// `<select>` with the field's choices.
    Select,
    /// Radio buttons, one per choice, in a `<fieldset>`.
    Radio,
    /// `<select multiple>` with the field's choices.
    SelectMultiple,
    /// Checkboxes, one per choice, in a `<fieldset>`.
    CheckboxMultiple,
    /// `<input type="file">`
    File,
}

impl Widget {
    /// The widget a field of `kind` gets unless it names another one.
    #[must_use]
    pub fn for_kind(kind: FieldKind) -> Self {
        match kind {
            FieldKind::Text | FieldKind::Slug => Self::Text,
            FieldKind::Integer | FieldKind::Float | FieldKind::Decimal => Self::Number,
            FieldKind::Boolean => Self::Checkbox,
            FieldKind::Date => Self::Date,
            FieldKind::Time => Self::Time,
            FieldKind::DateTime => Self::DateTimeLocal,
            FieldKind::Email => Self::Email,
            FieldKind::Url => Self::Url,
            FieldKind::Choice => Self::Select,
            FieldKind::MultipleChoice => Self::SelectMultiple,
            FieldKind::File => Self::File,
        }
    }
}

/// One field of a form: its name, label, kind, widget and constraints.
///
/// `#[derive(Form)]` builds these from the struct's fields and their
/// `#[form(...)]` attributes; a [`ModelForm`](super::ModelForm) builds them
/// from the model's columns.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) kind: FieldKind,
    pub(crate) widget: Widget,
    pub(crate) required: bool,
    pub(crate) help_text: Option<String>,
    pub(crate) max_length: Option<usize>,
    pub(crate) min_length: Option<usize>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) regex: Option<regex::Regex>,
    pub(crate) choices: Vec<(String, String)>,
    pub(crate) initial: Option<String>,
}

impl FieldSpec {
    /// A required field named `name` (its label is the name with spaces,
    /// capitalized, as Django derives it) with the default widget of `kind`.
    #[must_use]
    pub fn new(name: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            label: label_from_name(name),
            kind,
            widget: Widget::for_kind(kind),
            required: kind != FieldKind::Boolean,
            help_text: None,
            max_length: None,
            min_length: None,
            min: None,
            max: None,
            regex: None,
            choices: Vec::new(),
            initial: None,
        }
    }

    /// The label shown to people.
    #[must_use]
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// A sentence shown with the field.
    #[must_use]
    pub fn help_text(mut self, text: &str) -> Self {
        self.help_text = Some(text.to_owned());
        self
    }

    /// Another widget.
    #[must_use]
    pub fn widget(mut self, widget: Widget) -> Self {
        self.widget = widget;
        self
    }

    /// Whether an empty value is an error.
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The most characters accepted (also rendered as `maxlength`).
    #[must_use]
    pub fn max_length(mut self, max: usize) -> Self {
        self.max_length = Some(max);
        self
    }

    /// The fewest characters accepted (also rendered as `minlength`).
    #[must_use]
    pub fn min_length(mut self, min: usize) -> Self {
        self.min_length = Some(min);
        self
    }

    /// The smallest number accepted (also rendered as `min`).
    #[must_use]
    pub fn min(mut self, min: f64) -> Self {
        self.min = Some(min);
        self
    }

    /// The largest number accepted (also rendered as `max`).
    #[must_use]
    pub fn max(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }

    /// A regular expression the whole value must match.
    ///
    /// # Panics
    ///
    /// When `pattern` is not a valid regular expression; the message names
    /// the field. The derive builds a form's fields once, on first use.
    #[must_use]
    pub fn regex(mut self, pattern: &str) -> Self {
        let anchored = format!("^(?:{pattern})$");
        match regex::Regex::new(&anchored) {
            Ok(regex) => self.regex = Some(regex),
            Err(error) => panic!(
                "form field `{}`: `regex = {pattern:?}` is not a valid regular expression: {error}",
                self.name
            ),
        }
        self
    }

    /// The values accepted, each with its label (rendered as a `<select>`).
    #[must_use]
    pub fn choices<V: ToString, L: ToString>(mut self, choices: &[(V, L)]) -> Self {
        self.choices = choices
            .iter()
            .map(|(value, label)| (value.to_string(), label.to_string()))
            .collect();
        self
    }

    /// The text shown in an unbound form.
    #[must_use]
    pub fn initial(mut self, initial: impl ToString) -> Self {
        self.initial = Some(initial.to_string());
        self
    }

    /// The field's name (the form key).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field's kind.
    #[must_use]
    pub fn kind(&self) -> FieldKind {
        self.kind
    }

    /// Whether the field must be filled in.
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Checks `text`, already known to be non-empty, against the length,
    /// pattern and choice constraints.
    pub(crate) fn check_text(&self, text: &str) -> Result<(), ValidationError> {
        let length = text.chars().count();
        if let Some(max) = self.max_length.filter(|&max| length > max) {
            return Err(ValidationError::new(format!(
                "Ensure this value has at most {max} character{} (it has {length}).",
                plural(max)
            )));
        }
        if let Some(min) = self.min_length.filter(|&min| length < min) {
            return Err(ValidationError::new(format!(
                "Ensure this value has at least {min} character{} (it has {length}).",
                plural(min)
            )));
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(text)
        {
            return Err(ValidationError::new("Enter a valid value."));
        }
        if !self.choices.is_empty() && !self.choices.iter().any(|(value, _)| value == text) {
            return Err(invalid_choice(text));
        }
        Ok(())
    }

    fn check_number(&self, number: f64) -> Result<(), ValidationError> {
        if let Some(max) = self.max.filter(|&max| number > max) {
            return Err(ValidationError::new(format!(
                "Ensure this value is less than or equal to {max}."
            )));
        }
        if let Some(min) = self.min.filter(|&min| number < min) {
            return Err(ValidationError::new(format!(
                "Ensure this value is greater than or equal to {min}."
            )));
        }
        Ok(())
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn invalid_choice(value: &str) -> ValidationError {
    ValidationError::new(format!(
        "Select a valid choice. {value} is not one of the available choices."
    ))
}

/// `pub_date` -> `Pub date`, as Django labels a field from its name.
#[must_use]
pub fn label_from_name(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

pub(crate) const REQUIRED: &str = "This field is required.";

/// A Rust type a form field can hold: how it is described, parsed from the
/// submitted text and written back as text.
///
/// Implemented for `String`, the integers, `f32`/`f64`, `Decimal`, `bool`,
/// `NaiveDate`/`NaiveTime`/`NaiveDateTime`, [`Email`], [`Url`], [`Slug`],
/// [`UploadedFile`] and `Option` of each; `#[derive(Choices)]` implements it
/// for an enum.
pub trait FormValue: Sized {
    /// What the field's `validate` functions are given: the value itself,
    /// or for an `Option` the value inside (validators do not run on an
    /// empty optional field, as in Django). `str` for a `String`.
    type Target: ?Sized;

    /// The value validators check, if any.
    fn target(&self) -> Option<&Self::Target>;

    /// The field's description with this type's kind and defaults.
    fn spec(name: &str) -> FieldSpec;

    /// Parses non-empty submitted text (already trimmed).
    ///
    /// # Errors
    ///
    /// The message shown under the field, such as "Enter a whole number."
    fn from_text(text: &str) -> Result<Self, ValidationError>;

    /// The value of an empty field, if emptiness is allowed (`None` for a
    /// `bool` would be `Some(false)`); `None` means the field is required.
    fn when_empty() -> Option<Self> {
        None
    }

    /// The value as the text an input shows.
    fn to_text(&self) -> Option<String>;

    /// The value as the texts of the inputs it shows: one, or none, except
    /// for a multiple choice.
    fn to_texts(&self) -> Vec<String> {
        self.to_text().into_iter().collect()
    }

    /// The value as a number, for `min` / `max`.
    fn to_number(&self) -> Option<f64> {
        None
    }

    /// Whether nothing was submitted for the field.
    fn is_empty_in(input: &FormInput, spec: &FieldSpec) -> bool {
        input
            .text(&spec.name)
            .is_none_or(|text| text.trim().is_empty())
    }

    /// Takes the field's value out of the submitted input and checks it.
    ///
    /// # Errors
    ///
    /// The field's error: required, too long, not a number, out of range...
    fn take(input: &mut FormInput, spec: &FieldSpec) -> Result<Self, ValidationError> {
        let text = input.text(&spec.name).unwrap_or_default().trim();
        if text.is_empty() {
            return Self::when_empty().ok_or_else(|| ValidationError::new(REQUIRED));
        }
        spec.check_text(text)?;
        let value = Self::from_text(text)?;
        if let Some(number) = value.to_number() {
            spec.check_number(number)?;
        }
        Ok(value)
    }
}

/// Implements [`FormValue`] for a type that validators see whole, with the
/// common `target` and `spec`; the rest of the impl is given.
macro_rules! form_value {
    ($ty:ty, $kind:ident, { $($rest:tt)* }) => {
        impl FormValue for $ty {
            type Target = Self;

            fn target(&self) -> Option<&Self> {
                Some(self)
            }

            fn spec(name: &str) -> FieldSpec {
                FieldSpec::new(name, FieldKind::$kind)
            }

            $($rest)*
        }
    };
}

impl<T: FormValue> FormValue for Option<T> {
    type Target = T::Target;

    fn target(&self) -> Option<&T::Target> {
        self.as_ref().and_then(T::target)
    }

    fn spec(name: &str) -> FieldSpec {
        T::spec(name).required(false)
    }

    fn from_text(text: &str) -> Result<Self, ValidationError> {
        T::from_text(text).map(Some)
    }

    fn when_empty() -> Option<Self> {
        Some(None)
    }

    fn to_text(&self) -> Option<String> {
        self.as_ref().and_then(T::to_text)
    }

    fn to_texts(&self) -> Vec<String> {
        self.as_ref().map(T::to_texts).unwrap_or_default()
    }

    fn to_number(&self) -> Option<f64> {
        self.as_ref().and_then(T::to_number)
    }

    fn is_empty_in(input: &FormInput, spec: &FieldSpec) -> bool {
        T::is_empty_in(input, spec)
    }

    fn take(input: &mut FormInput, spec: &FieldSpec) -> Result<Self, ValidationError> {
        if T::is_empty_in(input, spec) {
            Ok(None)
        } else {
            T::take(input, spec).map(Some)
        }
    }
}

impl FormValue for String {
    type Target = str;

    fn target(&self) -> Option<&str> {
        Some(self)
    }

    fn spec(name: &str) -> FieldSpec {
        FieldSpec::new(name, FieldKind::Text)
    }

    fn from_text(text: &str) -> Result<Self, ValidationError> {
        Ok(text.to_owned())
    }

    fn to_text(&self) -> Option<String> {
        Some(self.clone())
    }
}

macro_rules! numbers {
    ($kind:ident, $message:literal: $($ty:ty),*) => {$(
        form_value!($ty, $kind, {

            fn from_text(text: &str) -> Result<Self, ValidationError> {
                text.parse::<$ty>()
                    .ok()
                    .filter(|value| is_finite(value))
                    .ok_or_else(|| ValidationError::new($message))
            }

            fn to_text(&self) -> Option<String> {
                Some(self.to_string())
            }
            fn to_number(&self) -> Option<f64> {
                Some(*self as f64)
            }
        });
    )*};
}

/// Whether a parsed number is finite (integers always are).
trait Finite {
    fn finite(&self) -> bool {
        true
    }
}
fn is_finite<T: Finite>(value: &T) -> bool {
    value.finite()
}
impl Finite for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}
impl Finite for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}
impl Finite for i8 {}
impl Finite for i16 {}
impl Finite for i32 {}
impl Finite for i64 {}
impl Finite for u8 {}
impl Finite for u16 {}
impl Finite for u32 {}
impl Finite for u64 {}

numbers!(Integer, "Enter a whole number.": i8, i16, i32, i64, u8, u16, u32, u64);
numbers!(Float, "Enter a number.": f32, f64);

form_value!(Decimal, Decimal, {
    fn from_text(text: &str) -> Result<Self, ValidationError> {
        Decimal::from_str(text).map_err(|_| ValidationError::new("Enter a number."))
    }

    fn to_text(&self) -> Option<String> {
        Some(self.to_string())
    }

    fn to_number(&self) -> Option<f64> {
        self.to_string().parse().ok()
    }
});

form_value!(bool, Boolean, {
    /// Django's checkbox reading: anything but `false`, `0` and `off` is
    /// checked.
    fn from_text(text: &str) -> Result<Self, ValidationError> {
        Ok(is_checked(text))
    }

    fn when_empty() -> Option<Self> {
        Some(false)
    }

    fn to_text(&self) -> Option<String> {
        self.then(|| "on".to_owned())
    }
});

pub(crate) fn is_checked(text: &str) -> bool {
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "off"
    )
}

macro_rules! dates {
    ($ty:ty, $kind:ident, $message:literal, $show:literal, [$($format:literal),*]) => {
        form_value!($ty, $kind, {

            fn from_text(text: &str) -> Result<Self, ValidationError> {
                [$($format),*]
                    .iter()
                    .find_map(|format| <$ty>::parse_from_str(text, format).ok())
                    .ok_or_else(|| ValidationError::new($message))
            }

            fn to_text(&self) -> Option<String> {
                Some(self.format($show).to_string())
            }
        });
    };
}

dates!(Date, Date, "Enter a valid date.", "%Y-%m-%d", ["%Y-%m-%d"]);
dates!(
    Time,
    Time,
    "Enter a valid time.",
    "%H:%M:%S",
    ["%H:%M", "%H:%M:%S", "%H:%M:%S%.f"]
);
dates!(
    DateTime,
    DateTime,
    "Enter a valid date/time.",
    "%Y-%m-%dT%H:%M:%S",
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S"
    ]
);

form_value!(UploadedFile, File, {
    fn from_text(_text: &str) -> Result<Self, ValidationError> {
        Err(ValidationError::new(
            "No file was submitted. Check the encoding type on the form.",
        ))
    }

    fn to_text(&self) -> Option<String> {
        None
    }

    fn is_empty_in(input: &FormInput, spec: &FieldSpec) -> bool {
        !input.has_file(&spec.name)
    }

    fn take(input: &mut FormInput, spec: &FieldSpec) -> Result<Self, ValidationError> {
        input
            .take_file(&spec.name)
            .ok_or_else(|| ValidationError::new(REQUIRED))
    }
});

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $check:path, $message:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks `text` and wraps it.
            ///
            /// # Errors
            ///
            #[doc = concat!("\"", $message, "\" when it is not valid.")]
            pub fn new(text: &str) -> Result<Self, ValidationError> {
                let text = text.trim();
                if $check(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(ValidationError::new($message))
                }
            }

            /// The text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            #[must_use]
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        form_value!($name, $kind, {

            fn from_text(text: &str) -> Result<Self, ValidationError> {
                Self::new(text)
            }

            fn to_text(&self) -> Option<String> {
                Some(self.0.clone())
            }
        });
    };
}

text_newtype!(
    /// An email address: a form field of this type accepts only
    /// `local@domain.tld` shapes (no spaces, a dot in the domain).
    Email,
    Email,
    is_email,
    "Enter a valid email address."
);
text_newtype!(
    /// An `http://` or `https://` URL with a host.
    Url,
    Url,
    is_url,
    "Enter a valid URL."
);
text_newtype!(
    /// A slug: ASCII letters, digits, underscores and hyphens.
    Slug,
    Slug,
    is_slug,
    "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."
);

fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && is_domain(domain)
}

fn is_url(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    };
    !text.chars().any(char::is_whitespace)
        && (host == "localhost" || is_domain(host) || host.parse::<std::net::IpAddr>().is_ok())
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An enum whose variants are a field's choices: `#[derive(Choices)]`
/// implements it (and [`FormValue`]) for an enum of unit variants.
///
/// ```
/// use kiln::forms::Choices;
///
/// #[derive(Debug, Clone, Copy, PartialEq, Choices)]
/// enum Size {
///     #[choice(label = "Small (250 ml)")]
///     Small,
///     #[choice(value = "L")]
///     Large,
/// }
///
/// assert_eq!(Size::choices(), [("small", "Small (250 ml)"), ("L", "Large")]);
/// assert_eq!(Size::from_value("L"), Some(Size::Large));
/// assert_eq!(Size::Small.value(), "small");
/// ```
pub trait Choices: Sized + 'static {
    /// Every `(value, label)` pair, in declaration order.
    fn choices() -> &'static [(&'static str, &'static str)];

    /// The variant whose value is `value`.
    fn from_value(value: &str) -> Option<Self>;

    /// This variant's value.
    fn value(&self) -> &'static str;

    /// This variant's label.
    fn label(&self) -> &'static str {
        let value = self.value();
        Self::choices()
            .iter()
            .find(|(v, _)| *v == value)
            .map_or(value, |(_, label)| label)
    }
}

/// The field of a [`Choices`] enum: a `<select>` of its variants.
#[must_use]
pub fn choice_spec<C: Choices>(name: &str) -> FieldSpec {
    FieldSpec::new(name, FieldKind::Choice).choices(C::choices())
}

/// Parses a [`Choices`] enum from submitted text.
///
/// # Errors
///
/// "Select a valid choice. ..." for an unknown value.
pub fn choice_from_text<C: Choices>(text: &str) -> Result<C, ValidationError> {
    C::from_value(text).ok_or_else(|| invalid_choice(text))
}

/// Several choices of a [`Choices`] enum: a `<select multiple>` (or
/// checkboxes with `widget = "checkboxes"`), required unless it is an
/// `Option<Vec<_>>`. Unknown values, a value sent twice and more values than
/// there are choices are errors on the field.
impl<C: Choices + PartialEq> FormValue for Vec<C> {
    type Target = [C];

    fn target(&self) -> Option<&[C]> {
        Some(self)
    }

    fn spec(name: &str) -> FieldSpec {
        FieldSpec::new(name, FieldKind::MultipleChoice).choices(C::choices())
    }

    fn from_text(text: &str) -> Result<Self, ValidationError> {
        choice_from_text(text).map(|choice| vec![choice])
    }

    fn to_text(&self) -> Option<String> {
        self.first().map(|choice| choice.value().to_owned())
    }

    fn to_texts(&self) -> Vec<String> {
        self.iter()
            .map(|choice| choice.value().to_owned())
            .collect()
    }

    fn is_empty_in(input: &FormInput, spec: &FieldSpec) -> bool {
        input
            .texts(&spec.name)
            .iter()
            .all(|text| text.trim().is_empty())
    }

    fn take(input: &mut FormInput, spec: &FieldSpec) -> Result<Self, ValidationError> {
        let texts: Vec<&str> = input
            .texts(&spec.name)
            .iter()
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .collect();
        if texts.is_empty() {
            return Err(ValidationError::new(REQUIRED));
        }
        // Counted first, so that a forged list of thousands is refused
        // before any of it is parsed.
        let most = C::choices().len();
        if texts.len() > most {
            return Err(ValidationError::new(format!(
                "Select at most {most} choice{} ({} were sent).",
                plural(most),
                texts.len()
            )));
        }
        let mut chosen = Vec::with_capacity(texts.len());
        for text in texts {
            let choice = choice_from_text::<C>(text)?;
            if chosen.contains(&choice) {
                return Err(ValidationError::new(format!(
                    "Select each choice once; {text} was sent twice."
                )));
            }
            chosen.push(choice);
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        for good in ["a@example.com", "first.last+tag@sub.example.org"] {
            assert!(Email::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@.com",
            "a@@b.com",
        ] {
            assert_eq!(
                Email::new(bad).unwrap_err().message(),
                "Enter a valid email address.",
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        for good in [
            "https://example.com",
            "http://localhost:8000/x?y=1",
            "https://127.0.0.1/",
        ] {
            assert!(Url::new(good).is_ok(), "{good}");
        }
        for bad in [
            "example.com",
            "javascript:alert(1)",
            "https://",
            "http://exa mple.com",
            "ftp://example.com",
        ] {
            assert!(Url::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_are_ascii_words_and_hyphens() {
        assert!(Slug::new("hello-world_2").is_ok());
        assert!(Slug::new("héllo").is_err());
        assert!(Slug::new("a b").is_err());
    }

    #[test]
    fn numbers_reject_text_and_non_finite_values() {
        assert_eq!(
            i32::from_text("abc").unwrap_err().message(),
            "Enter a whole number."
        );
        assert!(i8::from_text("300").is_err());
        assert!(f64::from_text("NaN").is_err());
        assert!(f64::from_text("inf").is_err());
        assert_eq!(f64::from_text("2.5").unwrap(), 2.5);
        assert_eq!(Decimal::from_text("1.10").unwrap().to_string(), "1.10");
    }

    #[test]
    fn dates_and_times_parse_the_html_input_formats() {
        assert!(Date::from_text("2026-02-30").is_err());
        assert_eq!(
            Date::from_text("2026-02-03").unwrap().to_string(),
            "2026-02-03"
        );
        assert!(Time::from_text("12:30").is_ok());
        assert!(DateTime::from_text("2026-02-03T12:30").is_ok());
        assert_eq!(
            DateTime::from_text("yesterday").unwrap_err().message(),
            "Enter a valid date/time."
        );
    }

    #[test]
    fn labels_come_from_names() {
        assert_eq!(label_from_name("pub_date"), "Pub date");
        assert_eq!(label_from_name(""), "");
    }

    #[test]
    fn checkbox_values_read_as_django_reads_them() {
        assert!(is_checked("on"));
        assert!(is_checked("true"));
        assert!(!is_checked("false"));
        assert!(!is_checked("0"));
    }
}
