//! The auth app's forms: [`UserCreationForm`], Django's sign-up form.
//!
//! The form checks what the submitted text alone can tell (the username's
//! characters and length, the email address, that both passwords agree);
//! [`UserCreationForm::create`] then runs the password validators, with
//! the new user's username and email for the similarity rule, checks that
//! the username is free and creates the user, putting each problem on its
//! field. The [`signup`](crate::auth::views::signup) view uses it; a
//! project's own view can too:
//!
//! ```
//! use kiln::auth::UserCreationForm;
//! use kiln::auth::validators::PasswordValidators;
//! use kiln::forms::{BoundForm, FormInput};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let client = kiln::test::TestClient::with_settings(
//! #     kiln::Project::new("site").mount("/accounts", kiln::auth::app()),
//! #     kiln::Settings::from_toml("password_hash_memory_kib = 64\npassword_hash_iterations = 1").unwrap(),
//! # );
//! # let db = client.db().await;
//! let submitted = FormInput::from_pairs([
//!     ("username", "jane"),
//!     ("email", "jane@example.com"),
//!     ("password1", "correct horse battery staple"),
//!     ("password2", "correct horse battery staple"),
//! ]);
//! let form = BoundForm::<UserCreationForm>::bind(submitted);
//! let validators = PasswordValidators::current();
//! match UserCreationForm::create(form, &db, &validators).await? {
//!     Ok(user) => assert_eq!(user.username, "jane"),
//!     Err(form) => panic!("rejected: {:?}", form.errors()),
//! }
//! # Ok::<(), kiln::auth::AuthError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::OnceLock;

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr};

use crate::auth::validators::PasswordValidators;
use crate::auth::{AuthError, USERNAME_MAX_LENGTH, create_user, user, validate_username};
use crate::forms::{
    BoundForm, Email, FieldKind, FieldSpec, Form, FormData, FormErrors, FormInput, ValidationError,
    Widget, fields_once, take_field,
};

/// The longest password accepted (Django's old limit): hashing costs the
/// same for any length, but a megabyte of text has no business here.
pub const PASSWORD_MAX_LENGTH: usize = 4096;

/// The longest email address (RFC 5321's path limit, Django's field).
const EMAIL_MAX_LENGTH: usize = 254;

/// The message on `username` when an account already has it.
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";

/// The message on `password2` when the two passwords differ.
pub const PASSWORDS_DIFFER: &str = "The two password fields didn’t match.";

/// Django's `UserCreationForm`: a username, an email address and a
/// password typed twice. Passwords are never shown again on a form with
/// errors, nor by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCreationForm {
    /// The username: 1 to 150 letters, digits and `@ . + - _`.
    pub username: String,
    /// The email address.
    pub email: Email,
    /// The password, as typed (spaces kept).
    pub password1: String,
    /// The password again.
    pub password2: String,
}

impl fmt::Debug for UserCreationForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCreationForm")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

fn check_username(username: &str) -> Result<(), ValidationError> {
    validate_username(username).map_err(|error| ValidationError::new(capitalized(&error)))
}

/// `error`'s message as a sentence: Kiln's errors start in lower case.
fn capitalized(error: &AuthError) -> String {
    let message = error.to_string();
    let mut chars = message.chars();
    chars.next().map_or_else(String::new, |first| {
        format!("{}{}.", first.to_uppercase(), chars.as_str())
    })
}

/// A password field's value, untrimmed (spaces are part of a password).
fn take_password(input: &FormInput, spec: &FieldSpec, errors: &mut FormErrors) -> Option<String> {
    let text = input.text(&spec.name).unwrap_or_default();
    let checked = if text.is_empty() {
        Err(ValidationError::new(crate::forms::REQUIRED))
    } else {
        spec.check_text(text).map(|()| text.to_owned())
    };
    match checked {
        Ok(password) => Some(password),
        Err(error) => {
            errors.add(error.for_field(&spec.name));
            None
        }
    }
}

impl FormData for UserCreationForm {
    fn fields() -> &'static [FieldSpec] {
        static FIELDS: OnceLock<Vec<FieldSpec>> = OnceLock::new();
        fields_once(&FIELDS, || {
            let password = |name: &str, label: &str| {
                FieldSpec::new(name, FieldKind::Text)
                    .label(label)
                    .widget(Widget::Password)
                    .max_length(PASSWORD_MAX_LENGTH)
            };
            vec![
                FieldSpec::new("username", FieldKind::Text)
                    .max_length(USERNAME_MAX_LENGTH)
                    .help_text(
                        "Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.",
                    ),
                FieldSpec::new("email", FieldKind::Email).max_length(EMAIL_MAX_LENGTH),
                password("password1", "Password"),
                password("password2", "Password confirmation")
                    .help_text("Enter the same password as before, for verification."),
            ]
        })
    }

    fn from_input(input: &mut FormInput, errors: &mut FormErrors) -> Option<Self> {
        let [username, email, password1, password2] = Self::fields() else {
            unreachable!("the four fields above")
        };
        let username = take_field::<String>(input, username, &[check_username], errors);
        let email = take_field::<Email>(input, email, &[], errors);
        let password1 = take_password(input, password1, errors);
        let password2 = take_password(input, password2, errors);
        Some(Self {
            username: username?,
            email: email?,
            password1: password1?,
            password2: password2?,
        })
    }

    fn clean(&self) -> Result<(), ValidationError> {
        if self.password1 == self.password2 {
            Ok(())
        } else {
            Err(ValidationError::new(PASSWORDS_DIFFER).for_field("password2"))
        }
    }

    fn to_values(&self) -> Vec<(&'static str, Vec<String>)> {
        vec![
            ("username", vec![self.username.clone()]),
            ("email", vec![self.email.to_string()]),
            ("password1", Vec::new()),
            ("password2", Vec::new()),
        ]
    }
}

impl UserCreationForm {
    /// The checks the submitted text alone cannot answer, each error on
    /// its field: `validators` on the password (seeing the new username
    /// and email), and whether an account already has the username, in
    /// any case (`Jane` and `jane` would be told apart by no one).
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn validate<C: ConnectionTrait>(
        &self,
        db: &C,
        validators: &PasswordValidators,
    ) -> Result<Vec<ValidationError>, DbErr> {
        let mut errors = Vec::new();
        let candidate = user::Model::unsaved(&self.username, &self.email);
        if let Err(messages) = validators.validate(&self.password1, Some(&candidate)) {
            errors.extend(
                messages
                    .into_iter()
                    .map(|message| ValidationError::new(message).for_field("password1")),
            );
        }
        let taken = user::Entity::find()
            .filter(ExprTrait::eq(
                Expr::expr(Func::lower(Expr::col(user::Column::Username))),
                self.username.to_lowercase(),
            ))
            .one(db)
            .await?
            .is_some();
        if taken {
            errors.push(ValidationError::new(USERNAME_TAKEN).for_field("username"));
        }
        Ok(errors)
    }

    /// Validates `form` to the end ([`validate`](Self::validate)) and, when
    /// nothing is wrong, creates the active user with an argon2id hash of
    /// the password, in one `INSERT`: a rejected form writes nothing.
    /// `Ok(Err(form))` is the form to show again with its errors.
    ///
    /// # Errors
    ///
    /// A database or hashing failure.
    pub async fn create<C: ConnectionTrait>(
        form: Form<Self>,
        db: &C,
        validators: &PasswordValidators,
    ) -> Result<Result<user::Model, BoundForm<Self>>, AuthError> {
        let (value, mut bound) = form.into_parts();
        let Some(value) = value else {
            return Ok(Err(bound));
        };
        let errors = value.validate(db, validators).await?;
        if !errors.is_empty() {
            for error in errors {
                bound.add_error(None, error);
            }
            return Ok(Err(bound));
        }
        match create_user(db, &value.username, &value.email, Some(&value.password1)).await {
            Ok(user) => Ok(Ok(user)),
            // Another sign-up took the name since `validate` looked.
            Err(AuthError::UsernameTaken(_)) => Ok(Err(taken(bound))),
            Err(AuthError::Db(error))
                if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                Ok(Err(taken(bound)))
            }
            Err(error) => Err(error),
        }
    }
}

fn taken(mut form: BoundForm<UserCreationForm>) -> BoundForm<UserCreationForm> {
    form.add_error(Some("username"), USERNAME_TAKEN);
    form
}
