//! Password validators: the rules a new password must pass (Django's
//! `AUTH_PASSWORD_VALIDATORS`).
//!
//! Four validators, each on by default and picked by name in the
//! `password_validators` setting:
//!
//! - `similarity`: not too close to the username, email, first or last name
//!   (a ratio of 0.7 or more, `password_max_similarity`, as Django's
//!   `UserAttributeSimilarityValidator` computes it);
//! - `min_length`: at least `password_min_length` characters (8);
//! - `common`: not among the 20,000 most common passwords (the list Django
//!   ships, compiled into Kiln gzip-compressed);
//! - `numeric`: not digits only.
//!
//! Each failure is a sentence for the person choosing the password.
//!
//! # Examples
//!
//! ```
//! use kiln::auth::validators::PasswordValidators;
//!
//! let validators = PasswordValidators::default();
//! assert!(validators.validate("correct horse battery staple", None).is_ok());
//! let errors = validators.validate("12345", None).unwrap_err();
//! assert_eq!(errors, [
//!     "This password is too short. It must contain at least 8 characters.",
//!     "This password is too common.",
//!     "This password is entirely numeric.",
//! ]);
//! ```

use std::collections::HashSet;
use std::io::Read;
use std::sync::{LazyLock, RwLock};

use crate::auth::user;
use crate::settings::Settings;

/// The names `password_validators` accepts, in their default order.
pub const VALIDATOR_NAMES: [&str; 4] = ["similarity", "min_length", "common", "numeric"];

/// Django's list (BSD licence): 20,000 common passwords, lowercased,
/// one a line, created by Royce Williams; see docs/internals/decisions.md.
static COMMON_GZ: &[u8] = include_bytes!("common-passwords.txt.gz");

/// The list, unpacked on first use (about 20,000 entries).
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut text = String::new();
    // The list is part of the binary, so it always decompresses; an empty
    // set would only weaken the `common` check, never fail a request.
    flate2::read::GzDecoder::new(COMMON_GZ)
        .read_to_string(&mut text)
        .ok();
    text.lines().map(|line| line.trim().to_owned()).collect()
});

/// The validators set by [`configure`] at boot.
static CURRENT: RwLock<Option<PasswordValidators>> = RwLock::new(None);

/// One rule.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Validator {
    /// Not too similar to the user's attributes.
    Similarity {
        /// The ratio from which a password is refused (0.1 to 1.0).
        max_similarity: f64,
    },
    /// At least this many characters.
    MinLength(usize),
    /// Not in the common-passwords list.
    Common,
    /// Not digits only.
    Numeric,
}

impl Validator {
    /// The message when `password` fails this rule, or `None`.
    #[must_use]
    pub fn check(&self, password: &str, user: Option<&user::Model>) -> Option<String> {
        match self {
            Self::Similarity { max_similarity } => {
                let user = user?;
                similar_attribute(password, user, *max_similarity)
                    .map(|name| format!("The password is too similar to the {name}."))
            }
            Self::MinLength(min) => (password.chars().count() < *min).then(|| {
                let unit = if *min == 1 { "character" } else { "characters" };
                format!("This password is too short. It must contain at least {min} {unit}.")
            }),
            Self::Common => COMMON
                .contains(&password.trim().to_lowercase())
                .then(|| "This password is too common.".to_owned()),
            Self::Numeric => (!password.is_empty() && password.chars().all(char::is_numeric))
                .then(|| "This password is entirely numeric.".to_owned()),
        }
    }

    /// What the rule asks of a password, for help text under a form field.
    #[must_use]
    pub fn help_text(&self) -> String {
        match self {
            Self::Similarity { .. } => {
                "Your password can't be too similar to your other personal information.".to_owned()
            }
            Self::MinLength(min) => {
                format!("Your password must contain at least {min} characters.")
            }
            Self::Common => "Your password can't be a commonly used password.".to_owned(),
            Self::Numeric => "Your password can't be entirely numeric.".to_owned(),
        }
    }
}

/// The set of validators a project uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordValidators(Vec<Validator>);

impl Default for PasswordValidators {
    /// All four, with Django's defaults.
    fn default() -> Self {
        Self(vec![
            Validator::Similarity {
                max_similarity: 0.7,
            },
            Validator::MinLength(8),
            Validator::Common,
            Validator::Numeric,
        ])
    }
}

/// A `password_validators` setting that names no validator, or a value out
/// of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidatorConfigError(pub String);

impl PasswordValidators {
    /// These validators, in this order.
    #[must_use]
    pub fn new(validators: Vec<Validator>) -> Self {
        Self(validators)
    }

    /// The validators the settings name (`password_validators`,
    /// `password_min_length`, `password_max_similarity`).
    ///
    /// # Errors
    ///
    /// [`ValidatorConfigError`] for an unknown name or a similarity outside
    /// 0.1..=1.0.
    pub fn from_settings(settings: &Settings) -> Result<Self, ValidatorConfigError> {
        let similarity = settings.password_max_similarity;
        if !(0.1..=1.0).contains(&similarity) {
            return Err(ValidatorConfigError(format!(
                "password_max_similarity is {similarity}; use a ratio between 0.1 and 1.0 (0.7 is Django's)"
            )));
        }
        settings
            .password_validators
            .iter()
            .map(|name| match name.as_str() {
                "similarity" => Ok(Validator::Similarity {
                    max_similarity: similarity,
                }),
                "min_length" => Ok(Validator::MinLength(settings.password_min_length)),
                "common" => Ok(Validator::Common),
                "numeric" => Ok(Validator::Numeric),
                other => Err(ValidatorConfigError(format!(
                    "password_validators names `{other}`, which is not a validator; use some of: {}",
                    VALIDATOR_NAMES.join(", ")
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The validators set by [`configure`] at boot, or the defaults.
    #[must_use]
    pub fn current() -> Self {
        CURRENT
            .read()
            .ok()
            .and_then(|current| current.clone())
            .unwrap_or_default()
    }

    /// Runs every validator; `Err` holds one message per failed rule.
    ///
    /// # Errors
    ///
    /// The messages of the rules `password` breaks.
    pub fn validate(&self, password: &str, user: Option<&user::Model>) -> Result<(), Vec<String>> {
        let errors: Vec<String> = self
            .0
            .iter()
            .filter_map(|validator| validator.check(password, user))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The help text of every validator, for a password field.
    #[must_use]
    pub fn help_texts(&self) -> Vec<String> {
        self.0.iter().map(Validator::help_text).collect()
    }
}

/// Makes the settings' validators the current ones (at boot).
///
/// # Errors
///
/// As [`PasswordValidators::from_settings`].
pub fn configure(settings: &Settings) -> Result<(), ValidatorConfigError> {
    let validators = PasswordValidators::from_settings(settings)?;
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(validators);
    }
    Ok(())
}

/// Checks `password` with the project's validators (Django's
/// `validate_password`); pass the user, when there is one, for the
/// similarity rule.
///
/// # Errors
///
/// One message per rule the password breaks.
pub fn validate_password(password: &str, user: Option<&user::Model>) -> Result<(), Vec<String>> {
    PasswordValidators::current().validate(password, user)
}

/// The name of the first attribute of `user` that `password` is too similar
/// to, comparing each attribute whole and split at non-word characters (so
/// both `jane.doe@example.com` and `jane` count), as Django does.
fn similar_attribute(password: &str, user: &user::Model, max: f64) -> Option<&'static str> {
    let password = password.to_lowercase();
    let attributes = [
        ("username", &user.username),
        ("email address", &user.email),
        ("first name", &user.first_name),
        ("last name", &user.last_name),
    ];
    attributes.into_iter().find_map(|(name, value)| {
        let value = value.to_lowercase();
        let parts = value
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .chain(std::iter::once(value.as_str()));
        let mut parts = parts.filter(|part| !part.is_empty());
        parts
            .any(|part| {
                !too_long_to_match(&password, part, max) && quick_ratio(&password, part) >= max
            })
            .then_some(name)
    })
}

/// Django's shortcut: a password ten times longer than the value cannot
/// reach the ratio, so the comparison is skipped.
fn too_long_to_match(password: &str, value: &str, max: f64) -> bool {
    let password_len = password.chars().count();
    let value_len = value.chars().count();
    #[expect(
        clippy::cast_precision_loss,
        reason = "lengths of passwords and names are far below 2^52"
    )]
    let bound = max / 2.0 * password_len as f64;
    #[expect(clippy::cast_precision_loss, reason = "as above")]
    let short = (value_len as f64) < bound;
    password_len >= 10 * value_len && short
}

/// Python's `SequenceMatcher.quick_ratio`, which Django's validator uses:
/// twice the number of characters the two strings share (as multisets) over
/// their total length.
fn quick_ratio(a: &str, b: &str) -> f64 {
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in b.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let mut matches = 0_usize;
    for c in a.chars() {
        if let Some(count) = counts.get_mut(&c).filter(|count| **count > 0) {
            *count -= 1;
            matches += 1;
        }
    }
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "short strings")]
    let ratio = 2.0 * matches as f64 / total as f64;
    ratio
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: &str, email: &str) -> user::Model {
        user::Model {
            first_name: "Jane".to_owned(),
            last_name: "Doe".to_owned(),
            ..user::Model::unsaved(username, email)
        }
    }

    #[test]
    fn quick_ratio_matches_pythons() {
        // difflib.SequenceMatcher(a=..., b=...).quick_ratio() in Python.
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("janedoe1", "janedoe") - 14.0 / 15.0).abs() < 1e-9);
        assert!((quick_ratio("xyz", "abc")).abs() < 1e-9);
        assert!((quick_ratio("", "") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_password_like_the_username_or_email_is_refused_naming_it() {
        let jane = user("janedoe", "jane.smith@example.com");
        let validators = PasswordValidators::default();
        let errors = validators.validate("janedoe1", Some(&jane)).unwrap_err();
        assert_eq!(errors, ["The password is too similar to the username."]);
        // A part of the email address counts on its own.
        let errors = validators.validate("smith!!", Some(&jane)).unwrap_err();
        assert!(
            errors.contains(&"The password is too similar to the email address.".to_owned()),
            "{errors:?}"
        );
        assert!(validators.validate("x7#Lm9!qWz2$", Some(&jane)).is_ok());
        // Without a user the rule has nothing to compare with.
        assert!(validators.validate("janedoe1", None).is_ok());
    }

    #[test]
    fn common_short_and_numeric_passwords_are_refused() {
        let validators = PasswordValidators::default();
        assert_eq!(
            validators.validate("Password", None).unwrap_err(),
            ["This password is too common."],
            "the check ignores case"
        );
        assert_eq!(
            validators.validate("84736251907", None).unwrap_err(),
            ["This password is entirely numeric."]
        );
        assert!(COMMON.len() > 19_000, "{}", COMMON.len());
    }

    #[test]
    fn settings_pick_and_tune_the_validators() {
        let mut settings = Settings::defaults_for(true);
        settings.password_validators = vec!["min_length".to_owned()];
        settings.password_min_length = 12;
        let validators = PasswordValidators::from_settings(&settings).unwrap();
        assert_eq!(
            validators.validate("12345678901", None).unwrap_err(),
            ["This password is too short. It must contain at least 12 characters."]
        );
        assert!(validators.validate("123456789012", None).is_ok());
        settings.password_validators = vec!["lenght".to_owned()];
        let error = PasswordValidators::from_settings(&settings).unwrap_err();
        assert!(
            error.0.contains("`lenght`") && error.0.contains("min_length"),
            "{error}"
        );
    }
}
