//! Logging in and out, and who the request's user is: [`login`],
//! [`logout`], and the [`CurrentUser`], [`RequireLogin`] and
//! [`RequirePermission`] extractors (Django's `login()`, `logout()`,
//! `request.user`, `@login_required` and `@permission_required`).
//!
//! A logged-in session holds the user's id and their
//! [`session_auth_hash`](crate::auth::user::Model::session_auth_hash).
//! Before the handler runs, Kiln's stack loads the user of a request that
//! carries a session cookie (when the project mounts the `auth` app) and
//! keeps it in the request's extensions, where the extractors and the
//! `user` template variable find it. A session whose user was deleted,
//! deactivated, or changed password since (the hash no longer matches) is
//! flushed, and the request is anonymous. Requests without a session
//! cookie cost nothing: they are anonymous without a lookup.
//!
//! # Examples
//!
//! ```
//! use kiln::auth::{CurrentUser, RequireLogin, RequirePermission};
//! use kiln::prelude::*;
//!
//! kiln::permission!(ChangeQuestion = "polls.change_question");
//!
//! async fn home(user: CurrentUser) -> String {
//!     match user.user() {
//!         Some(user) => format!("Hello, {}", user.username),
//!         None => "Hello, stranger".to_owned(),
//!     }
//! }
//!
//! async fn profile(RequireLogin(user): RequireLogin) -> String {
//!     format!("Your email: {}", user.email)
//! }
//!
//! async fn edit(_: RequirePermission<ChangeQuestion>) -> &'static str {
//!     "editing"
//! }
//! # let _ = (get(home), get(profile), get(edit));
//! ```

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::EntityTrait;

use crate::auth::user;
use crate::http::RequestContext;
use crate::project::Site;
use crate::sessions::Session;

/// The session key that holds the logged-in user's id (Django's).
pub const SESSION_KEY: &str = "_auth_user_id";

/// The session key that holds the user's session auth hash (Django's).
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";

/// The user Kiln's stack loaded for a request, in its extensions. Shared
/// (an `Arc`) so that [`login`] and [`logout`] update what templates
/// rendered later in the same request see.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserSlot(Arc<Mutex<Option<user::Model>>>);

impl UserSlot {
    fn get(&self) -> Option<user::Model> {
        self.lock().clone()
    }

    fn set(&self, user: Option<user::Model>) {
        *self.lock() = user;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<user::Model>> {
        // A std mutex: nothing awaits while it is held.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the stack should load the user of a request: the project mounts
/// the auth app and the request carries a session cookie.
pub(crate) fn wants_user(site: &Site, session: &Session) -> bool {
    session.has_cookie() && site.model("auth_user").is_some()
}

/// The site's secret key, as the session auth hash uses it.
fn secret_key(site: &Site) -> &str {
    site.settings()
        .secret_key
        .as_ref()
        .map_or("", crate::settings::Secret::expose)
}

/// How a session's stored auth hash compares with the user's.
#[derive(Debug, PartialEq, Eq)]
enum HashCheck {
    /// Made with the current `secret_key`.
    Current,
    /// Made with a key of `secret_key_fallbacks`: still valid, as signed
    /// cookies are, so that rotating the key logs no one out.
    Fallback,
    /// Made for another password (or forged).
    Stale,
}

fn check_session_auth_hash(site: &Site, user: &user::Model, stored: &str) -> HashCheck {
    if user.verify_session_auth_hash(secret_key(site), stored) {
        return HashCheck::Current;
    }
    let fallback = site
        .settings()
        .secret_key_fallbacks
        .iter()
        .any(|key| user.verify_session_auth_hash(key.expose(), stored));
    if fallback {
        HashCheck::Fallback
    } else {
        HashCheck::Stale
    }
}

/// The database the router picks for the `auth_user` table.
///
/// # Errors
///
/// 500 when it cannot be reached.
pub(crate) async fn users_db(
    site: &Site,
    write: bool,
) -> Result<&sea_orm::DatabaseConnection, crate::Error> {
    let databases = site.databases();
    let db = if write {
        databases.for_write::<user::Entity>().await
    } else {
        databases.for_read::<user::Entity>().await
    };
    db.map_err(crate::Error::internal)
}

/// Loads the session's user into `slot`, before the handler runs. A
/// session whose user is gone, inactive or changed password is flushed.
///
/// # Errors
///
/// 500 when the session store or the database fails.
pub(crate) async fn load_user(
    site: &Site,
    session: &Session,
    slot: &UserSlot,
) -> Result<(), crate::Error> {
    // A value of the wrong type (a tampered or foreign session) counts as
    // no user rather than as an error.
    let id = session.get::<i64>(SESSION_KEY).await.ok().flatten();
    let Some(id) = id else {
        return Ok(());
    };
    let stored = session
        .get::<String>(HASH_SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let db = users_db(site, false).await?;
    let found = user::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(crate::Error::internal)?;
    let check = found
        .as_ref()
        .filter(|user| user.is_active)
        .map_or(HashCheck::Stale, |user| {
            check_session_auth_hash(site, user, &stored)
        });
    match (found, check) {
        (Some(user), HashCheck::Current) => slot.set(Some(user)),
        (Some(user), HashCheck::Fallback) => {
            // Re-made with the current key, so that the fallback key can
            // be dropped once every session has been seen again.
            session
                .insert(HASH_SESSION_KEY, user.session_auth_hash(secret_key(site)))
                .await?;
            slot.set(Some(user));
        }
        _ => {
            tracing::info!(
                target: "kiln::auth",
                user_id = id,
                "session logged out: its user was deleted, deactivated or changed password"
            );
            session.flush().await?;
        }
    }
    Ok(())
}

/// The request's session and site, or the error that says what is missing.
fn session_and_site(parts: &Parts) -> Result<(Session, Site), crate::Error> {
    let session = Session::from_parts(parts).ok_or_else(|| {
        crate::Error::internal(std::io::Error::other(
            "login and logout need sessions\n  fix: mount the sessions app, `.mount(\"/\", kiln::sessions::app())`, and run `migrate`",
        ))
    })?;
    let site = parts
        .extensions
        .get::<RequestContext>()
        .map(|context| context.site.clone())
        .ok_or_else(|| {
            crate::Error::internal(std::io::Error::other(
                "login and logout need Kiln's middleware stack (serve the router built by Project::build)",
            ))
        })?;
    Ok((session, site))
}

/// Logs `user` in for the rest of this visit (Django's `login()`), and
/// returns the saved user (with `last_login` set).
///
/// The session gets a new key, so a session id someone planted or learned
/// before does not become logged in (session fixation); a session that
/// belonged to another user is emptied first. The CSRF token is rotated,
/// and `last_login` is updated (which also voids older password reset
/// links).
///
/// # Errors
///
/// 500 when sessions are off, or the store or database fails.
pub async fn login(parts: &Parts, user: user::Model) -> Result<user::Model, crate::Error> {
    let (session, site) = session_and_site(parts)?;
    let previous = session.get::<i64>(SESSION_KEY).await.ok().flatten();
    if previous.is_some_and(|id| id != user.id) {
        // Another user's data must not carry over to this one.
        session.flush().await?;
    } else {
        session.cycle_key().await?;
    }
    session.insert(SESSION_KEY, user.id).await?;
    session
        .insert(HASH_SESSION_KEY, user.session_auth_hash(secret_key(&site)))
        .await?;
    crate::security::rotate_csrf_token(parts)?;
    let db = users_db(&site, true).await?;
    let user = crate::auth::update_last_login(db, user)
        .await
        .map_err(crate::Error::internal)?;
    if let Some(slot) = parts.extensions.get::<UserSlot>() {
        slot.set(Some(user.clone()));
    }
    tracing::info!(target: "kiln::auth", user_id = user.id, "user logged in");
    Ok(user)
}

/// Logs the request's user out (Django's `logout()`): the session and its
/// data are deleted, so its cookie no longer logs anyone in, even replayed.
///
/// # Errors
///
/// 500 when sessions are off or the store fails.
pub async fn logout(parts: &Parts) -> Result<(), crate::Error> {
    let (session, _) = session_and_site(parts)?;
    session.flush().await?;
    crate::security::rotate_csrf_token(parts)?;
    if let Some(slot) = parts.extensions.get::<UserSlot>() {
        slot.set(None);
    }
    Ok(())
}

/// Stores `user`'s new session auth hash after a password change, so that
/// this session stays logged in while every other session of the user is
/// logged out (Django's `update_session_auth_hash`). The key is cycled too.
///
/// # Errors
///
/// 500 when sessions are off or the store fails.
pub async fn update_session_auth_hash(
    parts: &Parts,
    user: &user::Model,
) -> Result<(), crate::Error> {
    let (session, site) = session_and_site(parts)?;
    session.cycle_key().await?;
    session
        .insert(HASH_SESSION_KEY, user.session_auth_hash(secret_key(&site)))
        .await?;
    if let Some(slot) = parts.extensions.get::<UserSlot>() {
        slot.set(Some(user.clone()));
    }
    Ok(())
}

/// The request's user, loaded by Kiln's stack. [`user`](Self::user) is
/// `None` for an anonymous visitor.
#[derive(Clone, Debug, Default)]
pub struct CurrentUser(pub Option<user::Model>);

impl CurrentUser {
    /// The request's user as it is in `parts` (for middleware and other
    /// extractors).
    #[must_use]
    pub fn from_parts(parts: &Parts) -> Self {
        Self::from_extensions(&parts.extensions)
    }

    /// As [`from_parts`](Self::from_parts), from request extensions.
    #[must_use]
    pub fn from_extensions(extensions: &axum::http::Extensions) -> Self {
        Self(extensions.get::<UserSlot>().and_then(UserSlot::get))
    }

    /// The logged-in user, if any.
    #[must_use]
    pub fn user(&self) -> Option<&user::Model> {
        self.0.as_ref()
    }

    /// Whether a user is logged in.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.0.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// Why [`RequireLogin`] or [`RequirePermission`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthRejection {
    /// Nobody is logged in: a redirect to the login page with `next` (the
    /// `login_url` setting), or 401 for a request that wants JSON.
    LoginRequired {
        /// Where the login page is, `?next=` included.
        location: String,
        /// The request asked for JSON.
        json: bool,
    },
    /// The user is logged in but lacks the permission: 403.
    PermissionDenied(&'static str),
    /// Checking the permission failed (the database).
    Error(crate::Error),
}

impl AuthRejection {
    /// The status the rejection answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::LoginRequired { json: true, .. } => StatusCode::UNAUTHORIZED,
            Self::LoginRequired { .. } => StatusCode::FOUND,
            Self::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Self::Error(error) => error.status(),
        }
    }

    fn login_required(parts: &Parts) -> Self {
        let accept = parts.headers.get(header::ACCEPT);
        let next = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str());
        Self::LoginRequired {
            location: login_url_with_next(parts, next),
            json: crate::http::pages::wants_json(accept),
        }
    }
}

/// The login page's URL with `?next=<next>`: the `login_url` setting, or
/// the auth app's `auth:login` route.
pub(crate) fn login_url_with_next(parts: &Parts, next: &str) -> String {
    let configured = parts
        .extensions
        .get::<RequestContext>()
        .and_then(|context| context.site.settings().login_url.clone());
    let base = configured
        .or_else(|| crate::urls::reverse("auth:login", ()).ok())
        .unwrap_or_else(|| "/accounts/login/".to_owned());
    let separator = if base.contains('?') { '&' } else { '?' };
    let next: String = url_encode(next);
    format!("{base}{separator}next={next}")
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::LoginRequired { json: true, .. } => crate::Error::new(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided: log in first.",
            )
            .into_response(),
            Self::LoginRequired { location, .. } => match HeaderValue::from_str(&location) {
                Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
                Err(_) => {
                    crate::Error::new(StatusCode::UNAUTHORIZED, "Log in first.").into_response()
                }
            },
            Self::PermissionDenied(permission) => crate::Error::forbidden(format!(
                "You do not have permission to do this (it needs `{permission}`)."
            ))
            .into_response(),
            Self::Error(error) => error.into_response(),
        }
    }
}

/// A logged-in user, or a redirect to the login page with `?next=` the
/// current path (401 for a JSON request): Django's `@login_required`.
#[derive(Clone, Debug)]
pub struct RequireLogin(pub user::Model);

impl<S: Send + Sync> FromRequestParts<S> for RequireLogin {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match CurrentUser::from_parts(parts).0 {
            Some(user) => Ok(Self(user)),
            None => Err(AuthRejection::login_required(parts)),
        }
    }
}

/// A permission, as a type: what [`RequirePermission`] checks. Make one
/// with [`permission!`](crate::permission).
pub trait Permission: Send + Sync + 'static {
    /// `app_label.codename`, e.g. `polls.change_question`.
    const NAME: &'static str;
}

/// Declares a [`Permission`] type:
/// `kiln::permission!(ChangeQuestion = "polls.change_question");`.
#[macro_export]
macro_rules! permission {
    ($(#[$meta:meta])* $vis:vis $name:ident = $codename:literal) => {
        $(#[$meta])*
        #[doc = ::core::concat!("The `", $codename, "` permission.")]
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;
        impl $crate::auth::Permission for $name {
            const NAME: &'static str = $codename;
        }
    };
}

/// A logged-in user who has permission `P`: 403 for a user without it, the
/// login redirect for an anonymous visitor (Django's
/// `@permission_required`).
#[derive(Debug)]
pub struct RequirePermission<P: Permission>(pub user::Model, PhantomData<P>);

impl<P: Permission> RequirePermission<P> {
    /// The user.
    #[must_use]
    pub fn user(&self) -> &user::Model {
        &self.0
    }
}

impl<P: Permission, S: Send + Sync> FromRequestParts<S> for RequirePermission<P> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(user) = CurrentUser::from_parts(parts).0 else {
            return Err(AuthRejection::login_required(parts));
        };
        let site = parts
            .extensions
            .get::<RequestContext>()
            .map(|context| context.site.clone())
            .ok_or_else(|| {
                AuthRejection::Error(crate::Error::internal(std::io::Error::other(
                    "RequirePermission needs Kiln's middleware stack",
                )))
            })?;
        // Boxed: the permission query's future is deep, and inlined into
        // every handler's future it overflows rustc's layout depth limit.
        let allowed = Box::pin(has_perm(site, user.clone(), P::NAME)).await;
        match allowed {
            Ok(true) => Ok(Self(user, PhantomData)),
            Ok(false) => Err(AuthRejection::PermissionDenied(P::NAME)),
            Err(error) => Err(AuthRejection::Error(error)),
        }
    }
}

/// Whether `user` has `permission`, on the database of the users table.
async fn has_perm(site: Site, user: user::Model, permission: &str) -> Result<bool, crate::Error> {
    let db = users_db(&site, false).await?;
    user.has_perm(db, permission)
        .await
        .map_err(crate::Error::internal)
}

/// `user` in templates: what a page may show of the request's user (never
/// the password hash).
pub(crate) fn template_user(extensions: &axum::http::Extensions) -> Option<minijinja::Value> {
    let user = extensions.get::<UserSlot>()?.get()?;
    Some(minijinja::context! {
        is_authenticated => true,
        is_anonymous => false,
        id => user.id,
        pk => user.id,
        username => user.username,
        email => user.email,
        first_name => user.first_name,
        last_name => user.last_name,
        is_staff => user.is_staff,
        is_superuser => user.is_superuser,
        is_active => user.is_active,
    })
}
