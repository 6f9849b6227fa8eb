//! Users, groups, permissions and passwords: Django's `contrib.auth`.
//!
//! The built-in `auth` app ([`app`]) brings the tables (`auth_user`,
//! `auth_group`, `auth_permission` and the tables linking them) with its
//! own migrations. Once a project mounts it:
//!
//! - `migrate` creates the view/add/change/delete permissions of every
//!   registered model (`polls.change_question`, "Can change question");
//! - [`authenticate`] checks a username and password, upgrading hashes made
//!   with older parameters;
//! - [`user::Model::has_perm`] answers permission checks (superusers have
//!   every permission, inactive users none, others through their own and
//!   their groups' grants);
//! - `createsuperuser` and `changepassword` manage accounts from the shell.
//!
//! Passwords are hashed with argon2id ([`hashers`]), checked against the
//! project's rules ([`validators`]), and reset with links carrying
//! [`tokens`] that expire and die once used.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use kiln::auth::{self, authenticate};
//! use kiln::test::TestClient;
//!
//! let project = kiln::Project::new("site").mount("/accounts", auth::app());
//! let client = TestClient::with_settings(project, kiln::Settings::from_toml("").unwrap());
//! let db = client.db().await;
//! auth::create_user(&db, "jane", "jane@example.com", Some("a long passphrase")).await?;
//! let jane = authenticate(&db, "jane", "a long passphrase").await?.expect("the password matches");
//! assert!(!jane.has_perm(&db, "auth.add_user").await?);
//! assert!(authenticate(&db, "jane", "wrong").await?.is_none());
//! # Ok::<(), kiln::auth::AuthError>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::Sha256;

use crate::app::App;
use crate::db::{DbErr, ModelOptions};
use crate::settings::Settings;

pub(crate) mod commands;
pub mod forms;
pub mod hashers;
pub mod login;
mod migrations;
pub mod models;
mod permissions;
pub mod tokens;
pub mod validators;
pub mod views;

pub use forms::UserCreationForm;
pub use login::{
    AuthRejection, CurrentUser, Permission, RequireLogin, RequirePermission, login, logout,
    update_session_auth_hash,
};
pub use models::{group, group_permissions, permission, user, user_groups, user_permissions};
pub use permissions::{create_permissions, default_permissions};

/// The `auth` app's label.
pub const LABEL: &str = "auth";

/// The longest username (Django's).
pub const USERNAME_MAX_LENGTH: usize = 150;

/// The built-in `auth` app: its models and migrations. Mount it once
/// (`.mount("/accounts", kiln::auth::app())`); its login and password
/// views will live under that prefix.
#[must_use]
pub fn app() -> App {
    let app = App::new(LABEL)
        .model_with::<user::Entity>(
            ModelOptions::new()
                .ordering(&["username"])
                .display(|user: &user::Model| user.username.clone()),
        )
        .model_with::<group::Entity>(
            ModelOptions::new()
                .ordering(&["name"])
                .display(|group: &group::Model| group.name.clone()),
        )
        .model_with::<permission::Entity>(
            ModelOptions::new()
                .ordering(&["app_label", "codename"])
                .display(|permission: &permission::Model| permission.name.clone()),
        )
        .model::<user_groups::Entity>()
        .model::<user_permissions::Entity>()
        .model::<group_permissions::Entity>()
        .migrations(migrations::migrations())
        .templates(crate::embed_templates!("src/auth/templates"));
    views::routes(app)
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// The password could not be hashed.
    #[error(transparent)]
    Hash(#[from] hashers::HashError),
    /// A username that is empty, too long or has characters Kiln refuses.
    #[error("{0}")]
    InvalidUsername(String),
    /// A username already in use.
    #[error("the username `{0}` is already taken; choose another")]
    UsernameTaken(String),
}

/// Makes the settings' password parameters and validators the current ones;
/// [`Project::build`](crate::Project::build) calls it.
///
/// # Errors
///
/// A message naming the bad setting (settings loaded by Kiln were already
/// checked, so this fails only for hand-built ones).
pub fn configure(settings: &Settings) -> Result<(), String> {
    hashers::configure(settings).map_err(|error| error.to_string())?;
    validators::configure(settings).map_err(|error| error.0)
}

/// The user with this username and password, if it exists, is active and
/// the password matches (Django's `authenticate`).
///
/// Whether or not the user exists, the hasher runs once, so the answer
/// takes as long for an unknown username as for a wrong password and does
/// not tell which usernames exist. A hash made with other parameters than
/// the current ones is replaced after a successful check.
///
/// # Errors
///
/// [`AuthError::Db`] when the database fails. A wrong password is `Ok(None)`.
pub async fn authenticate<C: ConnectionTrait>(
    db: &C,
    username: &str,
    password: &str,
) -> Result<Option<user::Model>, AuthError> {
    let hasher = hashers::Hasher::current();
    let found = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        // Exact match: MySQL's default collation compares case-insensitively,
        // and `Jane` must not log in as `jane`.
        .filter(|user| user.is_active && user.username == username);
    let Some(user) = found else {
        // An empty hash makes the hasher check a dummy one: same cost.
        hasher.check_password(password, "").await;
        return Ok(None);
    };
    let verification = hasher.check_password(password, &user.password).await;
    if !verification.valid {
        return Ok(None);
    }
    if !verification.needs_rehash {
        return Ok(Some(user));
    }
    // A failed upgrade must not fail the login: the old hash still works.
    let hash = match hasher.make_password(password).await {
        Ok(hash) => hash,
        Err(error) => {
            tracing::warn!(target: "kiln::auth", user_id = user.id, "password hash upgrade failed: {error}");
            return Ok(Some(user));
        }
    };
    let mut active: user::ActiveModel = user.into();
    active.password = Set(hash);
    Ok(Some(active.update(db).await?))
}

/// Records that `user` just logged in (`last_login` = now) and returns the
/// saved row. Logging in also voids the password reset tokens made before.
///
/// # Errors
///
/// When the database fails.
pub async fn update_last_login<C: ConnectionTrait>(
    db: &C,
    user: user::Model,
) -> Result<user::Model, DbErr> {
    let mut active: user::ActiveModel = user.into();
    active.last_login = Set(Some(chrono::Utc::now()));
    active.update(db).await
}

/// Checks an email address as far as a form can: empty, or one `@` with
/// text on both sides and no spaces. Delivery is the only real check.
///
/// # Errors
///
/// A sentence saying what is wrong.
pub fn validate_email(email: &str) -> Result<(), String> {
    if email.is_empty() {
        return Ok(());
    }
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !email.contains(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(format!("`{email}` is not a valid email address"))
    }
}

/// Checks a username before an account is created: 1 to 150 characters,
/// letters, digits and `@ . + - _` (Django's rule).
///
/// # Errors
///
/// [`AuthError::InvalidUsername`], saying what to change.
pub fn validate_username(username: &str) -> Result<(), AuthError> {
    let length = username.chars().count();
    if length == 0 || length > USERNAME_MAX_LENGTH {
        return Err(AuthError::InvalidUsername(format!(
            "a username has 1 to {USERNAME_MAX_LENGTH} characters; this one has {length}"
        )));
    }
    if let Some(bad) = username
        .chars()
        .find(|c| !(c.is_alphanumeric() || "@.+-_".contains(*c)))
    {
        return Err(AuthError::InvalidUsername(format!(
            "a username may hold letters, digits and @ . + - _ only, not `{bad}`"
        )));
    }
    Ok(())
}

/// Creates an active user; `password: None` gives an unusable password
/// (the account logs in another way, or gets one with `changepassword`).
/// The password validators do not run here: run
/// [`validators::validate_password`] first where people choose one.
///
/// # Errors
///
/// [`AuthError::InvalidUsername`], [`AuthError::UsernameTaken`], or a
/// database or hashing failure.
pub async fn create_user<C: ConnectionTrait>(
    db: &C,
    username: &str,
    email: &str,
    password: Option<&str>,
) -> Result<user::Model, AuthError> {
    new_user(db, username, email, password, false).await
}

/// Creates an active staff superuser (every permission).
///
/// # Errors
///
/// As [`create_user`].
pub async fn create_superuser<C: ConnectionTrait>(
    db: &C,
    username: &str,
    email: &str,
    password: Option<&str>,
) -> Result<user::Model, AuthError> {
    new_user(db, username, email, password, true).await
}

async fn new_user<C: ConnectionTrait>(
    db: &C,
    username: &str,
    email: &str,
    password: Option<&str>,
    superuser: bool,
) -> Result<user::Model, AuthError> {
    validate_username(username)?;
    let taken = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .is_some();
    if taken {
        return Err(AuthError::UsernameTaken(username.to_owned()));
    }
    let password = match password {
        Some(password) => hashers::make_password(password).await?,
        None => hashers::make_unusable_password(),
    };
    let user = user::ActiveModel {
        username: Set(username.to_owned()),
        email: Set(email.trim().to_owned()),
        password: Set(password),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        is_active: Set(true),
        is_staff: Set(superuser),
        is_superuser: Set(superuser),
        last_login: Set(None),
        date_joined: Set(chrono::Utc::now()),
        ..Default::default()
    };
    Ok(user.insert(db).await?)
}

impl user::Model {
    /// A user not saved yet (id 0, an unusable password, active, not
    /// staff): the candidate the password validators compare a new
    /// password with, and a fixture for tests.
    #[must_use]
    pub fn unsaved(username: &str, email: &str) -> Self {
        Self {
            id: 0,
            username: username.to_owned(),
            email: email.to_owned(),
            password: hashers::make_unusable_password(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            last_login: None,
            date_joined: chrono::Utc::now(),
        }
    }

    /// Whether the user has `permission`, written `app_label.codename`
    /// (`polls.change_question`). Active superusers have every permission;
    /// inactive users none; others have their own grants and their
    /// groups'. A string without a `.` names no permission: `false`.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn has_perm<C: ConnectionTrait>(
        &self,
        db: &C,
        permission: &str,
    ) -> Result<bool, DbErr> {
        if !self.is_active {
            return Ok(false);
        }
        if self.is_superuser {
            return Ok(true);
        }
        let Some((app_label, codename)) = permission.split_once('.') else {
            return Ok(false);
        };
        permissions::user_has(db, self.id, app_label, codename).await
    }

    /// Whether the user has every one of `permissions`.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn has_perms<C: ConnectionTrait>(
        &self,
        db: &C,
        permissions: &[&str],
    ) -> Result<bool, DbErr> {
        for permission in permissions {
            if !self.has_perm(db, permission).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every permission the user has, as `app_label.codename` (for a
    /// superuser, every permission that exists; for an inactive user,
    /// none).
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn get_all_permissions<C: ConnectionTrait>(
        &self,
        db: &C,
    ) -> Result<BTreeSet<String>, DbErr> {
        if !self.is_active {
            return Ok(BTreeSet::new());
        }
        permissions::of_user(db, self.id, self.is_superuser).await
    }

    /// Whether a password can log this user in.
    #[must_use]
    pub fn has_usable_password(&self) -> bool {
        hashers::is_password_usable(&self.password)
    }

    /// Hashes `password` into the model (save it afterwards). Hashing runs
    /// on the blocking pool.
    ///
    /// # Errors
    ///
    /// [`hashers::HashError`] when hashing fails.
    pub async fn set_password(&mut self, password: &str) -> Result<(), hashers::HashError> {
        self.password = hashers::make_password(password).await?;
        Ok(())
    }

    /// Makes the password unusable (Django's `set_unusable_password`).
    pub fn set_unusable_password(&mut self) {
        self.password = hashers::make_unusable_password();
    }

    /// Checks `password` against the stored hash (blocking pool).
    pub async fn check_password(&self, password: &str) -> bool {
        hashers::check_password(password, &self.password)
            .await
            .valid
    }

    /// The value a session keeps to notice a password change (Django's
    /// `get_session_auth_hash`): an HMAC of the password hash keyed by the
    /// secret key. When the password changes, sessions holding the old
    /// value no longer match and are logged out.
    #[must_use]
    pub fn session_auth_hash(&self, secret_key: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(
            format!("kiln.auth.session_auth_hash{secret_key}").as_bytes(),
        )
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(self.password.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Whether `stored` (from a session) is this user's current
    /// [`session_auth_hash`](Self::session_auth_hash), compared in constant
    /// time.
    #[must_use]
    pub fn verify_session_auth_hash(&self, secret_key: &str, stored: &str) -> bool {
        let expected = self.session_auth_hash(secret_key);
        expected.len() == stored.len()
            && expected
                .bytes()
                .zip(stored.bytes())
                .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// Runs after every `migrate` (Django's `post_migrate`): once the `auth`
/// tables exist, creates the default permissions of every registered model.
pub(crate) async fn post_migrate(
    db: &crate::db::DatabaseConnection,
    applied: &BTreeSet<crate::db::migrations::Key>,
    models: &[crate::db::ModelEntry],
) -> Result<(), DbErr> {
    let installed = models.iter().any(|model| model.app == LABEL);
    let migrated = applied.contains(&(LABEL.to_owned(), "0001_initial".to_owned()));
    if installed && migrated {
        create_permissions(db, models).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_agree_with_the_models() {
        // What `makemigrations --check` compares: no change may be pending.
        let project = crate::Project::new("t").mount("/accounts", app());
        let messages = crate::checks::run(&project, &Settings::defaults_for(true));
        let errors: Vec<String> = messages
            .iter()
            .filter(|m| m.level == crate::checks::Level::Error)
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn email_addresses_are_checked_loosely() {
        for good in ["", "jane@example.com", "j+x@localhost"] {
            assert!(validate_email(good).is_ok(), "{good:?}");
        }
        for bad in [
            "jane",
            "@example.com",
            "jane@",
            "a@b@c",
            "jane doe@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_password_settings_stop_the_project_at_boot_naming_the_key() {
        let error = Settings::from_toml("password_hash_iterations = 0")
            .unwrap_err()
            .to_string();
        assert!(error.contains("password_hash"), "{error}");
        let error = Settings::from_toml("password_validators = [\"lenght\"]")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("password_validators") && error.contains("`lenght`"),
            "{error}"
        );
    }

    #[test]
    fn usernames_follow_djangos_rule() {
        assert!(validate_username("jane.doe+test@example_1-x").is_ok());
        for bad in ["", "jane doe", "<script>", &"x".repeat(151)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_session_auth_hash_changes_with_the_password_and_key() {
        let mut user = user::Model {
            password: "$argon2id$one".to_owned(),
            ..user::Model::unsaved("jane", "")
        };
        let hash = user.session_auth_hash("key");
        assert!(user.verify_session_auth_hash("key", &hash));
        assert!(!user.verify_session_auth_hash("other key", &hash));
        user.password = "$argon2id$two".to_owned();
        assert!(!user.verify_session_auth_hash("key", &hash));
        assert!(!user.verify_session_auth_hash("key", ""));
    }
}
