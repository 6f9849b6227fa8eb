//! Formsets (Django's `formset_factory`): several forms of one type on a
//! page, under a prefix, with a management form that says how many were
//! sent.

use std::fmt;

use axum::extract::{FromRequest, Request};

use super::field::{is_checked, plural};
use super::render::error_list;
use super::{BoundForm, FormData, FormInput, FormState};
use crate::http::{Error, escape};

/// The counts a formset's page sends back in hidden inputs
/// (`{prefix}-TOTAL_FORMS`, `INITIAL_FORMS`, `MIN_NUM_FORMS`,
/// `MAX_NUM_FORMS`), as Django's `ManagementForm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagementForm {
    /// How many forms the page holds.
    pub total: usize,
    /// How many of them show existing values (the rest are extra forms).
    pub initial: usize,
}

/// Django's message for a management form that is missing or not numbers.
const TAMPERED: &str = "ManagementForm data is missing or has been tampered with.";

/// `N` forms of type `T` under a prefix: [`new`](Self::new) and the
/// builder methods set it up, [`bind`](Self::bind) validates what was
/// submitted, and its [`Display`](fmt::Display) is the management form,
/// the errors about the whole set, then each form.
///
/// As an extractor it binds the prefix `form` with the defaults; a view
/// that needs other settings takes a [`FormInput`] and calls
/// [`bind`](Self::bind).
///
/// ```
/// use kiln::prelude::*;
/// use kiln::forms::{FormInput, FormSet};
///
/// #[derive(Debug, Form)]
/// struct Link {
///     #[form(max_length = 50)]
///     title: String,
/// }
///
/// let sets = FormSet::<Link>::new("links").extra(2).max_num(5).can_delete(true);
/// let bound = sets.bind(FormInput::from_pairs([
///     ("links-TOTAL_FORMS", "3"),
///     ("links-INITIAL_FORMS", "0"),
///     ("links-0-title", "Kiln"),
///     ("links-1-title", "Old"),
///     ("links-1-DELETE", "on"),
///     // links-2 was left blank: ignored
/// ]));
/// let links = bound.into_result().unwrap();
/// assert_eq!(links.len(), 1);
/// assert_eq!(links[0].title, "Kiln");
/// ```
pub struct FormSet<T> {
    prefix: String,
    extra: usize,
    min_num: usize,
    max_num: usize,
    absolute_max: usize,
    can_delete: bool,
    validate_min: bool,
    validate_max: bool,
    initial: Vec<T>,
    forms: Vec<BoundForm<T>>,
    /// Per form: its value when valid, changed and not deleted.
    values: Vec<Option<T>>,
    deleted: Vec<bool>,
    non_form_errors: Vec<String>,
    management: Option<ManagementForm>,
}

impl<T: FormData> FormSet<T> {
    /// A formset under `prefix` (Django's default is `form`) with one
    /// extra form, no minimum, a maximum of 1000 forms, no deletion.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            extra: 1,
            min_num: 0,
            max_num: 1000,
            absolute_max: 1000,
            can_delete: false,
            validate_min: true,
            validate_max: true,
            initial: Vec::new(),
            forms: Vec::new(),
            values: Vec::new(),
            deleted: Vec::new(),
            non_form_errors: Vec::new(),
            management: None,
        }
    }

    /// How many blank forms follow the initial ones.
    #[must_use]
    pub fn extra(mut self, extra: usize) -> Self {
        self.extra = extra;
        self
    }

    /// The fewest filled-in forms accepted ("Please submit at least N
    /// forms."), also shown as blank forms.
    #[must_use]
    pub fn min_num(mut self, min: usize) -> Self {
        self.min_num = min;
        self
    }

    /// The most filled-in forms accepted ("Please submit at most N
    /// forms."); never above the absolute maximum.
    #[must_use]
    pub fn max_num(mut self, max: usize) -> Self {
        self.max_num = max;
        self.absolute_max = self.absolute_max.max(max);
        self
    }

    /// The most forms read from a submission, whatever `TOTAL_FORMS`
    /// says (default 1000, or `max_num` when higher): a larger count is an
    /// error and only this many forms are built, so a forged count cannot
    /// make the server allocate millions of forms.
    #[must_use]
    pub fn absolute_max(mut self, max: usize) -> Self {
        self.absolute_max = max;
        self
    }

    /// Adds a "Delete" checkbox (`{prefix}-N-DELETE`) to each form; a
    /// ticked form is neither validated nor returned.
    #[must_use]
    pub fn can_delete(mut self, can_delete: bool) -> Self {
        self.can_delete = can_delete;
        self
    }

    /// The values the first forms show (existing rows, to edit).
    #[must_use]
    pub fn initial(mut self, values: Vec<T>) -> Self {
        self.initial = values;
        self
    }

    /// The forms of an unbound formset: one per initial value, then the
    /// extra ones (at least `min_num` in all, at most `max_num`).
    #[must_use]
    pub fn unbound_forms(&self) -> Vec<BoundForm<T>> {
        let initial = self.initial.len();
        let total = initial.max(self.min_num) + self.extra;
        let total = if initial <= self.max_num {
            total.min(self.max_num)
        } else {
            initial
        };
        (0..total)
            .map(|at| {
                let mut form = match self.initial.get(at) {
                    Some(value) => BoundForm::with_initial(value),
                    None => BoundForm::new(),
                };
                form.prefix = Some(self.form_prefix(at).into());
                form
            })
            .collect()
    }

    fn form_prefix(&self, at: usize) -> String {
        format!("{}-{at}", self.prefix)
    }

    /// Reads the management form: `None` when a count is missing or not
    /// a number.
    fn management_form(&self, input: &FormInput) -> Option<ManagementForm> {
        let count = |name: &str| {
            input
                .text(&format!("{}-{name}", self.prefix))?
                .trim()
                .parse::<usize>()
                .ok()
        };
        let total = count("TOTAL_FORMS")?;
        let initial = count("INITIAL_FORMS")?;
        Some(ManagementForm {
            total,
            initial: initial.min(total),
        })
    }

    /// Validates a submission: the management form, then each form (blank
    /// extra forms and deleted forms are skipped), then the number of
    /// filled-in forms.
    #[must_use]
    pub fn bind(mut self, mut input: FormInput) -> Self {
        self.forms.clear();
        self.values.clear();
        self.deleted.clear();
        self.non_form_errors.clear();
        let Some(management) = self.management_form(&input) else {
            self.non_form_errors.push(format!(
                "{TAMPERED} Missing fields: {0}-TOTAL_FORMS, {0}-INITIAL_FORMS. \
                 Render the formset's management form in the page.",
                self.prefix
            ));
            self.management = Some(ManagementForm {
                total: 0,
                initial: 0,
            });
            return self;
        };
        if management.total > self.absolute_max {
            self.non_form_errors.push(format!(
                "Please submit at most {} form{}.",
                self.max_num,
                plural(self.max_num)
            ));
        }
        let total = management.total.min(self.absolute_max);
        self.management = Some(ManagementForm {
            total,
            initial: management.initial.min(total),
        });
        let mut filled = 0;
        for at in 0..total {
            let prefix = self.form_prefix(at);
            let mut own = input.take_prefixed(&format!("{prefix}-"));
            let deleted = self.can_delete && own.text("DELETE").is_some_and(is_checked);
            // An extra form left blank is not a form the person meant to
            // send (Django's `has_changed`).
            let blank = at >= management.initial
                && T::fields()
                    .iter()
                    .all(|field| own.texts(field.name()).iter().all(|t| t.trim().is_empty()));
            let (value, mut form) = BoundForm::<T>::bind(std::mem::take(&mut own)).into_parts();
            form.prefix = Some(prefix.into());
            let skipped = deleted || blank;
            if skipped {
                form.errors = super::FormErrors::default();
            } else {
                filled += 1;
            }
            self.values.push(value.filter(|_| !skipped));
            self.deleted.push(deleted);
            self.forms.push(form);
        }
        if self.validate_max && filled > self.max_num && management.total <= self.absolute_max {
            self.non_form_errors.push(format!(
                "Please submit at most {} form{}.",
                self.max_num,
                plural(self.max_num)
            ));
        }
        if self.validate_min && filled < self.min_num {
            self.non_form_errors.push(format!(
                "Please submit at least {} form{}.",
                self.min_num,
                plural(self.min_num)
            ));
        }
        self
    }

    /// Whether the formset was bound, every form that counts is valid,
    /// and there is no error about the whole set.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.management.is_some()
            && self.non_form_errors.is_empty()
            && self.forms.iter().all(|form| form.errors().is_empty())
    }

    /// The errors about the whole set: a tampered management form, too
    /// few or too many forms.
    #[must_use]
    pub fn non_form_errors(&self) -> &[String] {
        &self.non_form_errors
    }

    /// The bound forms, in order (empty before [`bind`](Self::bind)).
    #[must_use]
    pub fn forms(&self) -> &[BoundForm<T>] {
        &self.forms
    }

    /// The indexes of the forms whose "Delete" box was ticked (initial
    /// forms among them name rows to delete).
    #[must_use]
    pub fn deleted_forms(&self) -> Vec<usize> {
        (0..self.deleted.len())
            .filter(|&at| self.deleted[at])
            .collect()
    }

    /// The values of the filled-in, valid, not deleted forms, in order; or
    /// the formset to render again with its errors.
    ///
    /// # Errors
    ///
    /// The formset, when it is not valid.
    #[expect(
        clippy::result_large_err,
        reason = "the error is the formset to render again, once per request, as with Form::into_result"
    )]
    pub fn into_result(mut self) -> Result<Vec<T>, Self> {
        if !self.is_valid() {
            return Err(self);
        }
        Ok(std::mem::take(&mut self.values)
            .into_iter()
            .flatten()
            .collect())
    }

    /// The hidden inputs of the management form.
    #[must_use]
    pub fn management_form_html(&self) -> String {
        let (total, initial) = match self.management {
            Some(management) => (management.total, management.initial),
            None => (self.unbound_forms().len(), self.initial.len()),
        };
        [
            ("TOTAL_FORMS", total),
            ("INITIAL_FORMS", initial),
            ("MIN_NUM_FORMS", self.min_num),
            ("MAX_NUM_FORMS", self.max_num),
        ]
        .iter()
        .map(|(name, value)| {
            let name = escape(&format!("{}-{name}", self.prefix));
            format!("<input type=\"hidden\" name=\"{name}\" value=\"{value}\" id=\"id_{name}\">")
        })
        .collect()
    }

    /// The whole formset as HTML: the management form, the errors about
    /// the set (`<ul class="errorlist nonform">`), then each form (bound,
    /// or the unbound ones) with its "Delete" box when deletion is on.
    #[must_use]
    pub fn as_div(&self) -> String {
        let mut html = self.management_form_html();
        html.push_str(&error_list(
            &self.non_form_errors,
            "errorlist nonform",
            None,
        ));
        let unbound;
        let forms = if self.management.is_some() {
            &self.forms
        } else {
            unbound = self.unbound_forms();
            &unbound
        };
        for (at, form) in forms.iter().enumerate() {
            html.push_str(&form.as_div());
            if self.can_delete {
                let name = escape(&format!("{}-DELETE", self.form_prefix(at)));
                let checked = if self.deleted.get(at).copied().unwrap_or(false) {
                    " checked"
                } else {
                    ""
                };
                html.push_str(&format!(
                    "<div><label for=\"id_{name}\">Delete:</label>\
                     <input type=\"checkbox\" name=\"{name}\" id=\"id_{name}\"{checked}></div>"
                ));
            }
        }
        html
    }

    /// The form states, for templates that lay the forms out themselves.
    pub fn states(&self) -> impl Iterator<Item = &FormState> {
        self.forms.iter().map(|form| &**form)
    }
}

impl<T: FormData> fmt::Display for FormSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_div())
    }
}

impl<T> fmt::Debug for FormSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormSet")
            .field("form", &std::any::type_name::<T>())
            .field("prefix", &self.prefix)
            .field("management", &self.management)
            .field("non_form_errors", &self.non_form_errors)
            .finish_non_exhaustive()
    }
}

/// Binds the prefix `form` with the default settings.
impl<T: FormData, S: Send + Sync> FromRequest<S> for FormSet<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let input = FormInput::from_request(request, state).await?;
        Ok(Self::new("form").bind(input))
    }
}
