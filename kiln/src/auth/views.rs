//! The auth app's views (Django's `django.contrib.auth.views`): log in and
//! out, change a password, and reset a forgotten one by email.
//!
//! | route name | path | template |
//! |---|---|---|
//! | `auth:login` | `login/` | `registration/login.html` |
//! | `auth:logout` | `logout/` | `registration/logout_confirm.html` (GET), `registration/logged_out.html` |
//! | `auth:password_change` | `password_change/` | `registration/password_change_form.html` |
//! | `auth:password_change_done` | `password_change/done/` | `registration/password_change_done.html` |
//! | `auth:password_reset` | `password_reset/` | `registration/password_reset_form.html`, `registration/password_reset_email.txt`, `registration/password_reset_subject.txt` |
//! | `auth:password_reset_done` | `password_reset/done/` | `registration/password_reset_done.html` |
//! | `auth:password_reset_confirm` | `reset/{uid}/{token}/` | `registration/password_reset_confirm.html` |
//! | `auth:password_reset_complete` | `reset/done/` | `registration/password_reset_complete.html` |
//! | `auth:signup` (when the project adds it, see [`signup`]) | `signup/` | `registration/signup.html` |
//!
//! The built-in templates extend `registration/base.html`; a project
//! overrides any of them (or only that base, to put them in its layout)
//! with a file of the same name in its own `templates/` folder.
//!
//! Failed logins are counted per username and per client IP
//! (`login_throttle_failures`, `login_throttle_ip_failures` within
//! `login_throttle_window`); past either limit the login view answers 429
//! with `Retry-After` without checking the password. A successful login
//! resets the username's count.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Form, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::auth::forms::UserCreationForm;
use crate::auth::login::{RequireLogin, login, logout, update_session_auth_hash, users_db};
use crate::auth::tokens::PasswordResetTokens;
use crate::auth::{authenticate, user, validators};
use crate::forms::{BoundForm, FormInput};
use crate::project::Site;
use crate::security::Throttle;
use crate::templates::render;

/// The form fields a view reads; anything else is ignored.
type Fields = HashMap<String, String>;

/// The login throttles of one mounted auth app, made from the settings on
/// first use (the app is built before the settings are known).
#[derive(Clone, Debug, Default)]
pub(crate) struct LoginThrottles(Arc<OnceLock<(Throttle, Throttle)>>);

impl LoginThrottles {
    fn get(&self, site: &Site) -> &(Throttle, Throttle) {
        self.0.get_or_init(|| {
            let settings = site.settings();
            let window = settings.login_throttle_window.0;
            (
                Throttle::new(settings.login_throttle_failures, window),
                Throttle::new(settings.login_throttle_ip_failures, window),
            )
        })
    }
}

/// The auth app's routes, added by [`app`](crate::auth::app).
pub(crate) fn routes(app: crate::App) -> crate::App {
    use crate::urls::get;
    app.route("/login/", "login", get(login_view).post(login_view))
        .route("/logout/", "logout", get(logout_view).post(logout_view))
        .route(
            "/password_change/",
            "password_change",
            get(password_change).post(password_change),
        )
        .route(
            "/password_change/done/",
            "password_change_done",
            get(password_change_done),
        )
        .route(
            "/password_reset/",
            "password_reset",
            get(password_reset).post(password_reset),
        )
        .route(
            "/password_reset/done/",
            "password_reset_done",
            get(password_reset_done),
        )
        .route(
            "/reset/{uid}/{token}/",
            "password_reset_confirm",
            get(password_reset_confirm).post(password_reset_confirm),
        )
        .route(
            "/reset/done/",
            "password_reset_complete",
            get(password_reset_complete),
        )
        .layer(axum::Extension(LoginThrottles::default()))
}

/// A 302 to `location` (a URL Kiln built or checked).
fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => {
            crate::Error::bad_request("the redirect target is not a valid URL").into_response()
        }
    }
}

/// `reverse()` of one of the auth app's own routes.
fn url(name: &str) -> Result<String, crate::Error> {
    crate::urls::reverse(name, ()).map_err(crate::Error::internal)
}

/// Whether `next` may be redirected to after login: a path on this site
/// (`/polls/`), or an absolute `http(s)` URL whose host is the request's.
/// Refused: other hosts, scheme-relative `//evil.com`, `/\evil.com`
/// (browsers read `\` as `/`), `javascript:` and anything with control
/// characters or spaces (Django's `url_has_allowed_host_and_scheme`).
pub fn is_safe_redirect(next: &str, host: Option<&str>) -> bool {
    if next.is_empty()
        || next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    if let Some(rest) = next.strip_prefix('/') {
        return !rest.starts_with('/');
    }
    let rest = next
        .strip_prefix("https://")
        .or_else(|| next.strip_prefix("http://"));
    match (rest, host) {
        (Some(rest), Some(host)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            !authority.contains('@') && authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// The request's `Host` header.
fn host(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
}

/// `next` from the form, else from the query string.
fn next_param(parts: &Parts, form: Option<&Fields>) -> String {
    if let Some(next) = form.and_then(|form| form.get("next")) {
        return next.clone();
    }
    let query: Fields =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    query.get("next").cloned().unwrap_or_default()
}

/// The fields of a POSTed form; `None` for other methods (and for a body
/// that is not a form, which then shows the empty form again).
pub struct Posted(Option<Fields>);

impl std::fmt::Debug for Posted {
    /// The field names only: the values hold passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self
            .0
            .as_ref()
            .map(|fields| fields.keys().collect::<Vec<_>>());
        f.debug_tuple("Posted").field(&names).finish()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Posted {
    type Rejection = std::convert::Infallible;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        if request.method() != axum::http::Method::POST {
            return Ok(Self(None));
        }
        let form = Form::<Fields>::from_request(request, state).await.ok();
        Ok(Self(form.map(|Form(form)| form)))
    }
}

/// Who a login attempt is counted for: the client's IP (the connection's
/// peer; behind a proxy, every client shares the proxy's).
fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |ConnectInfo(peer)| peer.ip().to_string(),
        )
}

async fn login_view(
    parts: Parts,
    site: Site,
    axum::Extension(throttles): axum::Extension<LoginThrottles>,
    Posted(form): Posted,
) -> Result<Response, crate::Error> {
    let next = next_param(&parts, form.as_ref());
    // The login page links to sign-up when the project has it.
    let signup_url = crate::urls::reverse("auth:signup", ()).ok();
    let Some(form) = form else {
        return render(
            &parts,
            "registration/login.html",
            context! { next, signup_url, username => "" },
        );
    };
    let username = form.get("username").map_or("", |u| u.trim());
    let password = form.get("password").map_or("", String::as_str);
    let (per_user, per_ip) = throttles.get(&site);
    let user_key = username.to_lowercase();
    let ip_key = client_ip(&parts);
    if let Err(wait) = per_user.check(&user_key).and(per_ip.check(&ip_key)) {
        tracing::warn!(target: "kiln::auth", "login throttled after too many failures");
        return Ok(wait.into_response());
    }
    let db = users_db(&site, true).await?;
    let Some(user) = authenticate(db, username, password)
        .await
        .map_err(crate::Error::internal)?
    else {
        per_user.record_failure(&user_key);
        per_ip.record_failure(&ip_key);
        tracing::info!(target: "kiln::auth", "failed login");
        let mut page = render(
            &parts,
            "registration/login.html",
            context! {
                next,
                signup_url,
                username,
                error => "Please enter a correct username and password. Note that both fields may be case-sensitive.",
            },
        )?;
        *page.status_mut() = StatusCode::OK;
        return Ok(page);
    };
    per_user.reset(&user_key);
    login(&parts, user).await?;
    Ok(redirect_after_login(&parts, &site, next))
}

/// A redirect to `next` when it stays on this site, else to
/// `login_redirect_url`.
fn redirect_after_login(parts: &Parts, site: &Site, next: String) -> Response {
    let target = if is_safe_redirect(&next, host(parts)) {
        next
    } else {
        site.settings().login_redirect_url.clone()
    };
    redirect(&target)
}

/// The sign-up page (Django's `UserCreationForm` in a view): a `GET`
/// shows the empty form, a `POST` creates the account with
/// [`UserCreationForm::create`], logs the new user in (a fresh session
/// key) and redirects to a safe `next`, else to `login_redirect_url`. A
/// rejected form is shown again with 422, each error on its field, the
/// username and email kept and the passwords not.
///
/// The auth app does not route it: open registration is a project's
/// choice. Add it to the app where it is mounted; its template,
/// `registration/signup.html`, can be overridden like the others:
///
/// ```
/// use kiln::prelude::*;
/// use kiln::auth::views::signup;
///
/// let project = Project::new("site")
///     .mount("/", kiln::sessions::app())
///     .mount("/accounts", kiln::auth::app().route("/signup/", "signup", get(signup).post(signup)));
/// # let _ = project;
/// ```
///
/// # Errors
///
/// A database or hashing failure (500).
pub async fn signup(parts: Parts, site: Site, posted: Posted) -> Result<Response, crate::Error> {
    let Posted(fields) = posted;
    let next = next_param(&parts, fields.as_ref());
    let Some(fields) = fields else {
        return signup_page(&parts, &BoundForm::new(), next, StatusCode::OK);
    };
    let form = BoundForm::<UserCreationForm>::bind(FormInput::from_pairs(fields));
    let db = users_db(&site, true).await?;
    let validators = validators::PasswordValidators::current();
    match UserCreationForm::create(form, db, &validators)
        .await
        .map_err(crate::Error::internal)?
    {
        Ok(user) => {
            tracing::info!(target: "kiln::auth", user_id = user.id, "new account");
            login(&parts, user).await?;
            Ok(redirect_after_login(&parts, &site, next))
        }
        Err(form) => signup_page(&parts, &form, next, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

fn signup_page(
    parts: &Parts,
    form: &BoundForm<UserCreationForm>,
    next: String,
    status: StatusCode,
) -> Result<Response, crate::Error> {
    let password_help = validators::PasswordValidators::current().help_texts();
    let mut page = render(
        parts,
        "registration/signup.html",
        context! { form => minijinja::value::Serde(form), next, password_help },
    )?;
    *page.status_mut() = status;
    Ok(page)
}

async fn logout_view(parts: Parts, site: Site) -> Result<Response, crate::Error> {
    if parts.method != "POST" {
        // A GET must not log out: an <img src> on another site could.
        return render(&parts, "registration/logout_confirm.html", context! {});
    }
    logout(&parts).await?;
    match &site.settings().logout_redirect_url {
        Some(target) => Ok(redirect(target)),
        None => render(&parts, "registration/logged_out.html", context! {}),
    }
}

/// Checks that two new-password fields agree and pass the validators;
/// the errors to show otherwise.
fn check_new_password(form: &Fields, user: &user::Model) -> Result<String, Vec<String>> {
    let first = form.get("new_password1").cloned().unwrap_or_default();
    let second = form.get("new_password2").map_or("", String::as_str);
    if first.is_empty() {
        return Err(vec!["Enter a new password.".to_owned()]);
    }
    if first != second {
        return Err(vec!["The two password fields didn't match.".to_owned()]);
    }
    validators::validate_password(&first, Some(user))?;
    Ok(first)
}

/// Hashes and saves `password` as `user`'s.
async fn save_password(
    site: &Site,
    user: user::Model,
    password: &str,
) -> Result<user::Model, crate::Error> {
    let mut user = user;
    user.set_password(password)
        .await
        .map_err(crate::Error::internal)?;
    let db = users_db(site, true).await?;
    let mut active: user::ActiveModel = user.clone().into();
    active.password = Set(user.password.clone());
    active.update(db).await.map_err(crate::Error::internal)
}

async fn password_change(
    parts: Parts,
    site: Site,
    RequireLogin(user): RequireLogin,
    Posted(form): Posted,
) -> Result<Response, crate::Error> {
    let Some(form) = form else {
        return render(
            &parts,
            "registration/password_change_form.html",
            context! { errors => Vec::<String>::new() },
        );
    };
    let old = form.get("old_password").map_or("", String::as_str);
    let errors = if user.check_password(old).await {
        match check_new_password(&form, &user) {
            Ok(password) => {
                let user = save_password(&site, user, &password).await?;
                update_session_auth_hash(&parts, &user).await?;
                return Ok(redirect(&url("auth:password_change_done")?));
            }
            Err(errors) => errors,
        }
    } else {
        vec!["Your old password was entered incorrectly. Please enter it again.".to_owned()]
    };
    render(
        &parts,
        "registration/password_change_form.html",
        context! { errors },
    )
}

async fn password_change_done(parts: Parts, _user: RequireLogin) -> Result<Response, crate::Error> {
    render(
        &parts,
        "registration/password_change_done.html",
        context! {},
    )
}

async fn password_reset(
    parts: Parts,
    site: Site,
    Posted(form): Posted,
) -> Result<Response, crate::Error> {
    let Some(form) = form else {
        return render(&parts, "registration/password_reset_form.html", context! {});
    };
    let email = form.get("email").map_or("", |e| e.trim());
    if !email.is_empty() {
        send_reset_mails(&parts, &site, email).await?;
    }
    // The same answer whether or not the address has an account: the page
    // must not tell who is registered.
    Ok(redirect(&url("auth:password_reset_done")?))
}

/// Mails a reset link to every active account with `email` and a usable
/// password. A failed delivery is logged, not shown (see above).
async fn send_reset_mails(parts: &Parts, site: &Site, email: &str) -> Result<(), crate::Error> {
    let db = users_db(site, false).await?;
    let users = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .filter(user::Column::IsActive.eq(true))
        .all(db)
        .await
        .map_err(crate::Error::internal)?;
    let settings = site.settings();
    let tokens = PasswordResetTokens::from_settings(settings);
    let backend = crate::mail::backend_from_settings(settings, site.root());
    let scheme = if settings.debug { "http" } else { "https" };
    let domain = host(parts).unwrap_or("localhost");
    for user in users
        .iter()
        .filter(|user| user.has_usable_password() && user.email.eq_ignore_ascii_case(email))
    {
        let token = tokens.make_token(user);
        let path = crate::urls::reverse(
            "auth:password_reset_confirm",
            [("uid", user.id.to_string()), ("token", token)],
        )
        .map_err(crate::Error::internal)?;
        let context = context! {
            username => &user.username,
            email => &user.email,
            link => format!("{scheme}://{domain}{path}"),
            site_name => site.name(),
        };
        let templates = site.templates();
        let subject = templates
            .render_to_string("registration/password_reset_subject.txt", &context)
            .map_err(crate::Error::internal)?;
        let body = templates
            .render_to_string("registration/password_reset_email.txt", &context)
            .map_err(crate::Error::internal)?;
        // One line: a subject must not carry a header break.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = crate::mail::EmailMessage::new(
            &settings.default_from_email,
            [user.email.as_str()],
            &subject,
            &body,
        );
        if let Err(error) = backend.send(&message).await {
            tracing::error!(target: "kiln::auth", user_id = user.id, "password reset mail not sent: {error}");
        }
    }
    Ok(())
}

async fn password_reset_done(parts: Parts) -> Result<Response, crate::Error> {
    render(&parts, "registration/password_reset_done.html", context! {})
}

/// The user a reset link names, if the link is still valid.
async fn reset_user(
    site: &Site,
    uid: &str,
    token: &str,
) -> Result<Option<user::Model>, crate::Error> {
    let Ok(id) = uid.parse::<i64>() else {
        return Ok(None);
    };
    let db = users_db(site, false).await?;
    let user = user::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(crate::Error::internal)?;
    let tokens = PasswordResetTokens::from_settings(site.settings());
    Ok(user.filter(|user| user.is_active && tokens.check_token(user, token)))
}

async fn password_reset_confirm(
    parts: Parts,
    site: Site,
    Path((uid, token)): Path<(String, String)>,
    Posted(form): Posted,
) -> Result<Response, crate::Error> {
    let Some(user) = reset_user(&site, &uid, &token).await? else {
        // Used, expired or forged: a page that says so, not an error.
        return render(
            &parts,
            "registration/password_reset_confirm.html",
            context! { validlink => false, errors => Vec::<String>::new() },
        );
    };
    let errors = match form.as_ref().map(|form| check_new_password(form, &user)) {
        None => Vec::new(),
        Some(Ok(password)) => {
            save_password(&site, user, &password).await?;
            return Ok(redirect(&url("auth:password_reset_complete")?));
        }
        Some(Err(errors)) => errors,
    };
    render(
        &parts,
        "registration/password_reset_confirm.html",
        context! { validlink => true, errors },
    )
}

async fn password_reset_complete(parts: Parts) -> Result<Response, crate::Error> {
    render(
        &parts,
        "registration/password_reset_complete.html",
        context! {},
    )
}

#[cfg(test)]
mod tests {
    use super::is_safe_redirect;

    #[test]
    fn only_same_site_redirects_are_safe() {
        let host = Some("testserver");
        for good in [
            "/",
            "/polls/1/?a=b",
            "http://testserver/x",
            "https://TESTSERVER/",
        ] {
            assert!(is_safe_redirect(good, host), "{good}");
        }
        for bad in [
            "",
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "https://evil.com",
            "http://evil.com/",
            "https://testserver@evil.com/",
            "javascript:alert(1)",
            "/ok\nLocation: x",
            "evil.com",
        ] {
            assert!(!is_safe_redirect(bad, host), "{bad}");
        }
    }
}
