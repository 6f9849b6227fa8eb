//! Logging in and out through the auth app's views, with the attacks each
//! protection stops: session fixation, brute force (per account and per
//! IP), open redirects, replayed session cookies after logout, deleted
//! users, other sessions after a password change, reused reset links,
//! permission checks, and secrets in the logs. Runs on SQLite.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

#[path = "support/logs.rs"]
mod logs;

use kiln::auth::{self, CurrentUser, RequireLogin, RequirePermission};
use kiln::db::prelude::*;
use kiln::prelude::*;
use kiln::test::{TestClient, TestResponse};

kiln::permission!(ChangeUser = "auth.change_user");

const SESSION: &str = "kiln_session";
const PASSWORD: &str = "correct horse battery staple";

async fn home(parts: Parts) -> Result<Response, kiln::Error> {
    kiln::templates::render(&parts, "home.html", ())
}

async fn whoami(user: CurrentUser) -> String {
    user.user()
        .map_or_else(|| "anonymous".to_owned(), |user| user.username.clone())
}

async fn private(RequireLogin(user): RequireLogin) -> String {
    format!("private page of {}", user.username)
}

async fn staff(perm: RequirePermission<ChangeUser>) -> String {
    format!("staff page of {}", perm.user().username)
}

async fn visit(session: kiln::sessions::Session) -> Result<&'static str, kiln::Error> {
    session.insert("visited", true).await?;
    Ok("visited")
}

fn project() -> Project {
    let site = App::new("site")
        .route("/", "home", get(home))
        .route("/whoami", "whoami", get(whoami))
        .route("/private/", "private", get(private))
        .route("/staff/", "staff", get(staff))
        .route("/visit", "visit", get(visit));
    Project::new("t")
        .templates(kiln::templates_dir!("tests/templates/auth_views"))
        .mount("/", kiln::sessions::app())
        .mount(
            "/accounts",
            auth::app().route(
                "/signup/",
                "signup",
                get(auth::views::signup).post(auth::views::signup),
            ),
        )
        .mount("/", site)
}

fn client(extra: &str) -> TestClient {
    client_keyed("test-only-secret-key-0123456789abcdef0123456789", extra)
}

/// A client whose `secret_key` is `key`, with `extra` settings.
fn client_keyed(key: &str, extra: &str) -> TestClient {
    let settings = Settings::from_toml(&format!(
        "debug = true\nsecret_key = \"{key}\"\nemail_backend = \"memory\"\npassword_hash_memory_kib = 256\npassword_hash_iterations = 1\n{extra}"
    ))
    .unwrap();
    TestClient::with_settings(project(), settings).enforce_csrf_checks()
}

/// A client with user `jane` (password [`PASSWORD`]).
async fn with_jane(extra: &str) -> (TestClient, auth::user::Model) {
    let client = client(extra);
    let db = client.db().await;
    let jane = auth::create_user(&db, "jane", "jane@example.com", Some(PASSWORD))
        .await
        .unwrap();
    (client, jane)
}

/// The CSRF token of the form on `path`.
async fn token(client: &TestClient, path: &str) -> String {
    let page = client.get(path).send().await.text();
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no token on {path}: {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// Posts `fields` with the CSRF token of the form on `path`.
async fn submit(client: &TestClient, path: &str, fields: &[(&str, &str)]) -> TestResponse {
    let token = token(client, path).await;
    let mut form = vec![("csrfmiddlewaretoken", token.as_str())];
    form.extend_from_slice(fields);
    client.post(path).form(&form).send().await
}

async fn log_in(client: &TestClient, username: &str, password: &str) -> TestResponse {
    submit(
        client,
        "/accounts/login/",
        &[("username", username), ("password", password)],
    )
    .await
}

async fn whoami_of(client: &TestClient) -> String {
    client.get("/whoami").send().await.text()
}

#[tokio::test]
async fn after_login_handlers_and_templates_see_the_user_but_never_the_hash() {
    let (client, jane) = with_jane("").await;
    assert_eq!(client.get("/").send().await.text().trim(), "anonymous");
    let response = log_in(&client, "jane", PASSWORD).await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.header("location"), Some("/"));
    assert_eq!(whoami_of(&client).await, "jane");
    let page = client.get("/").send().await.text();
    assert_eq!(page.trim(), "Logged in as jane staff=False hash=");
    assert!(!page.contains(&jane.password));
    let saved = auth::user::Entity::find_by_id(jane.id)
        .one(&client.db().await)
        .await
        .unwrap()
        .unwrap();
    assert!(saved.last_login.is_some(), "login records last_login");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_logs_nobody_in() {
    let (client, _) = with_jane("").await;
    let response = log_in(&client, "jane", "wrong").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().contains("correct username and password"));
    assert_eq!(whoami_of(&client).await, "anonymous");
}

#[tokio::test]
async fn login_gives_the_session_a_new_id_so_a_planted_one_stays_anonymous() {
    let (client, _) = with_jane("").await;
    client.get("/visit").send().await;
    let planted = client.cookie(SESSION).expect("the visit started a session");
    assert_eq!(log_in(&client, "jane", PASSWORD).await.status(), 302);
    let after = client.cookie(SESSION).unwrap();
    assert_ne!(planted, after, "session fixation: the id survived login");
    assert_eq!(whoami_of(&client).await, "jane");
    client.set_cookie(SESSION, &planted);
    assert_eq!(whoami_of(&client).await, "anonymous");
}

#[tokio::test]
async fn brute_force_on_one_account_is_throttled_with_retry_after() {
    let (client, _) = with_jane("login_throttle_failures = 3").await;
    // A success resets the account's count.
    for _ in 0..2 {
        assert_eq!(log_in(&client, "jane", "guess").await.status(), 200);
    }
    assert_eq!(log_in(&client, "jane", PASSWORD).await.status(), 302);
    for _ in 0..3 {
        assert_eq!(log_in(&client, "jane", "guess").await.status(), 200);
    }
    // Now even the right password is refused until the window passes.
    let refused = log_in(&client, "jane", PASSWORD).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 15 * 60, "{wait}");
    // Other accounts are not locked out by it.
    let db = client.db().await;
    auth::create_user(&db, "bob", "", Some(PASSWORD))
        .await
        .unwrap();
    assert_eq!(log_in(&client, "bob", PASSWORD).await.status(), 302);
}

#[tokio::test]
async fn brute_force_across_accounts_from_one_ip_is_throttled() {
    let (client, _) = with_jane("login_throttle_ip_failures = 4").await;
    for name in ["a", "b", "c", "d"] {
        assert_eq!(log_in(&client, name, "guess").await.status(), 200);
    }
    let refused = log_in(&client, "jane", PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.header("retry-after").is_some());
    // Another client address still logs in.
    let token = token(&client, "/accounts/login/").await;
    let other = client
        .post("/accounts/login/")
        .remote_addr("10.0.0.7:4000".parse().unwrap())
        .form(&[
            ("csrfmiddlewaretoken", token.as_str()),
            ("username", "jane"),
            ("password", PASSWORD),
        ])
        .send()
        .await;
    assert_eq!(other.status(), 302);
}

#[tokio::test]
async fn next_is_followed_on_this_site_only() {
    let (client, _) = with_jane("login_redirect_url = \"/welcome\"").await;
    let cases = [
        ("/private/?page=2", "/private/?page=2"),
        ("http://testserver/private/", "http://testserver/private/"),
        ("//evil.com/", "/welcome"),
        ("https://evil.com/", "/welcome"),
        ("/\\evil.com", "/welcome"),
        ("javascript:alert(1)", "/welcome"),
    ];
    for (next, expected) in cases {
        client.set_cookie(SESSION, "");
        let response = submit(
            &client,
            "/accounts/login/",
            &[("username", "jane"), ("password", PASSWORD), ("next", next)],
        )
        .await;
        assert_eq!(response.status(), 302, "{next}");
        assert_eq!(response.header("location"), Some(expected), "{next}");
    }
}

#[tokio::test]
async fn require_login_redirects_with_next_and_answers_json_with_401() {
    let (client, _) = with_jane("").await;
    let response = client.get("/private/?a=1").send().await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.header("location"),
        Some("/accounts/login/?next=%2Fprivate%2F%3Fa%3D1")
    );
    // The login page carries `next` into its form.
    let page = client
        .get("/accounts/login/?next=/private/")
        .send()
        .await
        .text();
    assert!(page.contains("name=\"next\" value=\"/private/\""), "{page}");
    let json = client
        .get("/private/")
        .header("accept", "application/json")
        .send()
        .await;
    assert_eq!(json.status(), 401);
    log_in(&client, "jane", PASSWORD).await;
    assert_eq!(
        client.get("/private/").send().await.text(),
        "private page of jane"
    );
}

#[tokio::test]
async fn logout_is_post_only_and_the_old_cookie_no_longer_logs_in() {
    let (client, _) = with_jane("").await;
    log_in(&client, "jane", PASSWORD).await;
    let cookie = client.cookie(SESSION).unwrap();
    // GET shows a confirmation form and logs nobody out.
    let confirm = client.get("/accounts/logout/").send().await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().contains("csrfmiddlewaretoken"));
    assert_eq!(whoami_of(&client).await, "jane");
    let response = submit(&client, "/accounts/logout/", &[]).await;
    assert_eq!(response.status(), 200);
    // The project's own registration/logged_out.html overrides Kiln's.
    assert_eq!(response.text().trim(), "Goodbye from the project.");
    assert_eq!(whoami_of(&client).await, "anonymous");
    client.set_cookie(SESSION, &cookie);
    assert_eq!(whoami_of(&client).await, "anonymous", "replayed cookie");
}

#[tokio::test]
async fn a_user_deleted_or_deactivated_while_logged_in_is_anonymous_not_a_500() {
    let (client, jane) = with_jane("").await;
    let db = client.db().await;
    let bob = auth::create_user(&db, "bob", "", Some(PASSWORD))
        .await
        .unwrap();
    log_in(&client, "jane", PASSWORD).await;
    auth::user::Entity::delete_by_id(jane.id)
        .exec(&db)
        .await
        .unwrap();
    let page = client.get("/").send().await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().trim(), "anonymous");
    assert_eq!(client.get("/private/").send().await.status(), 302);

    log_in(&client, "bob", PASSWORD).await;
    assert_eq!(whoami_of(&client).await, "bob");
    let mut inactive: auth::user::ActiveModel = bob.into();
    inactive.is_active = Set(false);
    inactive.update(&db).await.unwrap();
    assert_eq!(whoami_of(&client).await, "anonymous");
}

/// A client on the SQLite file `database` with `secret_key = key` and
/// `fallbacks`, as a site is after a key rotation.
fn client_with_keys(database: &str, key: &str, fallbacks: &[&str]) -> TestClient {
    let fallbacks = fallbacks
        .iter()
        .map(|key| format!("\"{key}\""))
        .collect::<Vec<_>>()
        .join(", ");
    client_keyed(
        key,
        &format!("database_url = \"{database}\"\nsecret_key_fallbacks = [{fallbacks}]\n"),
    )
}

#[tokio::test]
async fn rotating_the_secret_key_with_a_fallback_keeps_users_logged_in() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/db.sqlite3?mode=rwc", dir.path().display());
    let old = "the-old-secret-key-0123456789abcdef0123456789";
    let new = "the-new-secret-key-0123456789abcdef0123456789";
    let before = client_with_keys(&database, old, &[]);
    let db = before.db().await;
    auth::create_user(&db, "jane", "", Some(PASSWORD))
        .await
        .unwrap();
    assert_eq!(log_in(&before, "jane", PASSWORD).await.status(), 302);
    let cookie = before.cookie(SESSION).unwrap();

    // Without the old key among the fallbacks, the session's hash is void.
    let forgotten = client_with_keys(&database, new, &[]);
    forgotten.set_cookie(SESSION, &cookie);
    assert_eq!(whoami_of(&forgotten).await, "anonymous");

    // Log in again under the old key: the previous request flushed that session.
    assert_eq!(log_in(&before, "jane", PASSWORD).await.status(), 302);
    let cookie = before.cookie(SESSION).unwrap();
    let rotated = client_with_keys(&database, new, &[old]);
    rotated.set_cookie(SESSION, &cookie);
    assert_eq!(
        whoami_of(&rotated).await,
        "jane",
        "logged out by the rotation"
    );
    // That request re-made the hash with the new key: the fallback can go.
    let cookie = rotated.cookie(SESSION).unwrap();
    let after = client_with_keys(&database, new, &[]);
    after.set_cookie(SESSION, &cookie);
    assert_eq!(whoami_of(&after).await, "jane", "the hash was not upgraded");
}

#[tokio::test]
async fn a_password_change_logs_out_other_sessions_but_not_this_one() {
    let (client, _) = with_jane("").await;
    log_in(&client, "jane", PASSWORD).await;
    let other_session = client.cookie(SESSION).unwrap();
    client.set_cookie(SESSION, "");
    log_in(&client, "jane", PASSWORD).await;
    let new = "a brand new passphrase 42";
    let response = submit(
        &client,
        "/accounts/password_change/",
        &[
            ("old_password", PASSWORD),
            ("new_password1", new),
            ("new_password2", new),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text());
    assert_eq!(
        response.header("location"),
        Some("/accounts/password_change/done/")
    );
    assert_eq!(whoami_of(&client).await, "jane", "this session stays in");
    let current = client.cookie(SESSION).unwrap();
    client.set_cookie(SESSION, &other_session);
    assert_eq!(whoami_of(&client).await, "anonymous", "other session");
    client.set_cookie(SESSION, &current);
    assert_eq!(whoami_of(&client).await, "jane");
    client.set_cookie(SESSION, "");
    assert_eq!(log_in(&client, "jane", new).await.status(), 302);
}

#[tokio::test]
async fn password_change_needs_login_the_old_password_and_a_valid_new_one() {
    let (client, _) = with_jane("").await;
    let anonymous = client.get("/accounts/password_change/").send().await;
    assert_eq!(anonymous.status(), 302);
    log_in(&client, "jane", PASSWORD).await;
    let wrong_old = submit(
        &client,
        "/accounts/password_change/",
        &[
            ("old_password", "nope"),
            ("new_password1", "another long one 7"),
            ("new_password2", "another long one 7"),
        ],
    )
    .await;
    assert!(
        wrong_old
            .text()
            .contains("old password was entered incorrectly")
    );
    let weak = submit(
        &client,
        "/accounts/password_change/",
        &[
            ("old_password", PASSWORD),
            ("new_password1", "12345678"),
            ("new_password2", "12345678"),
        ],
    )
    .await;
    assert_eq!(weak.status(), 200);
    assert!(weak.text().contains("errornote"), "{}", weak.text());
}

/// The reset link mailed to `email`, as a path.
fn mailed_link(email: &str) -> String {
    let message = kiln::mail::outbox()
        .into_iter()
        .rev()
        .find(|message| message.to == [email])
        .expect("a reset mail was sent");
    let start = message.body.find("http://testserver").unwrap() + "http://testserver".len();
    let end = start + message.body[start..].find(char::is_whitespace).unwrap();
    message.body[start..end].to_owned()
}

#[tokio::test]
async fn a_reset_link_works_once_then_says_invalid() {
    let client = client("");
    let db = client.db().await;
    auth::create_user(&db, "rita", "rita@reset.example", Some(PASSWORD))
        .await
        .unwrap();
    let unknown = submit(
        &client,
        "/accounts/password_reset/",
        &[("email", "nobody@reset.example")],
    )
    .await;
    let known = submit(
        &client,
        "/accounts/password_reset/",
        &[("email", "rita@reset.example")],
    )
    .await;
    // The same answer whether or not the address has an account.
    assert_eq!(unknown.status(), 302);
    assert_eq!(known.header("location"), unknown.header("location"));
    assert!(
        !kiln::mail::outbox()
            .iter()
            .any(|m| m.to == ["nobody@reset.example"])
    );
    let link = mailed_link("rita@reset.example");
    assert!(link.starts_with("/accounts/reset/"), "{link}");
    let new = "reset to something long 9";
    let done = submit(
        &client,
        &link,
        &[("new_password1", new), ("new_password2", new)],
    )
    .await;
    assert_eq!(done.status(), 302, "{}", done.text());
    assert_eq!(done.header("location"), Some("/accounts/reset/done/"));
    assert_eq!(log_in(&client, "rita", new).await.status(), 302);
    // Used once: now invalid, a page that says so, not an error.
    let again = client.get(&link).send().await;
    assert_eq!(again.status(), 200);
    assert!(
        again.text().contains("link was invalid"),
        "{}",
        again.text()
    );
    let forged = client.get("/accounts/reset/999/1-00/").send().await;
    assert!(forged.text().contains("link was invalid"));
    let garbage = client.get("/accounts/reset/x/y/").send().await;
    assert!(garbage.text().contains("link was invalid"));
}

#[tokio::test]
async fn require_permission_is_403_for_users_without_it_and_a_login_redirect_for_anonymous() {
    let (client, _) = with_jane("").await;
    let db = client.db().await;
    auth::create_superuser(&db, "root", "", Some(PASSWORD))
        .await
        .unwrap();
    let anonymous = client.get("/staff/").send().await;
    assert_eq!(anonymous.status(), 302);
    assert!(
        anonymous
            .header("location")
            .unwrap()
            .starts_with("/accounts/login/?next=")
    );
    log_in(&client, "jane", PASSWORD).await;
    let denied = client.get("/staff/").send().await;
    assert_eq!(denied.status(), 403);
    assert!(denied.text().contains("auth.change_user"));
    client.set_cookie(SESSION, "");
    log_in(&client, "root", PASSWORD).await;
    assert_eq!(
        client.get("/staff/").send().await.text(),
        "staff page of root"
    );
}

#[tokio::test]
async fn passwords_and_session_ids_never_reach_the_logs() {
    let logs = logs::Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    // Global, not `set_default`: a thread-local subscriber misses events
    // whose callsites other tests' threads registered first. Other tests'
    // lines land here too, and must not hold their passwords either.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let (client, _) = with_jane("").await;
    log_in(&client, "jane", "a wrong secret guess").await;
    assert_eq!(log_in(&client, "jane", PASSWORD).await.status(), 302);
    let session_id = client.cookie(SESSION).unwrap();
    client.get("/").send().await;
    submit(&client, "/accounts/logout/", &[]).await;
    let logged = logs.text();
    assert!(
        logged.contains("user logged in"),
        "the logs were captured: {logged}"
    );
    assert!(!logged.contains(PASSWORD), "{logged}");
    assert!(!logged.contains("a wrong secret guess"), "{logged}");
    assert!(!logged.contains(&session_id), "{logged}");
}

// Sign-up (`auth::views::signup` with `UserCreationForm`).

const SIGNUP: &str = "/accounts/signup/";

/// Posts the sign-up form with the CSRF token of its page.
async fn sign_up(client: &TestClient, fields: &[(&str, &str)]) -> TestResponse {
    submit(client, SIGNUP, fields).await
}

/// The sign-up fields for `username` with `password` typed twice.
fn signup_fields<'a>(username: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", username),
        ("email", "new@example.com"),
        ("password1", password),
        ("password2", password),
    ]
}

/// The error list the form shows under field `name` (empty when none).
fn field_errors(page: &str, name: &str) -> String {
    let marker = format!("<ul class=\"errorlist\" id=\"id_{name}_error\">");
    page.find(&marker).map_or_else(String::new, |start| {
        let rest = &page[start + marker.len()..];
        rest[..rest.find("</ul>").unwrap()].to_owned()
    })
}

async fn usernames(client: &TestClient) -> Vec<String> {
    let db = client.db().await;
    auth::user::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.username)
        .collect()
}

#[tokio::test]
async fn signup_creates_the_user_logs_in_on_a_new_session_key_and_follows_next() {
    let client = client("");
    client.get("/visit").send().await;
    let planted = client.cookie(SESSION).expect("the visit started a session");
    let page = client.get(&format!("{SIGNUP}?next=/private/")).send().await;
    assert_eq!(page.status(), 200);
    for field in ["username", "email", "password1", "password2"] {
        assert!(
            page.text().contains(&format!("name=\"{field}\"")),
            "{field}"
        );
    }
    let mut fields = signup_fields("newbie", PASSWORD);
    fields.push(("next", "/private/"));
    let response = sign_up(&client, &fields).await;
    assert_eq!(response.status(), 302, "{}", response.text());
    assert_eq!(response.header("location"), Some("/private/"));
    assert_ne!(client.cookie(SESSION).unwrap(), planted, "session fixation");
    // The next request sees the new user.
    assert_eq!(
        client.get("/private/").send().await.text(),
        "private page of newbie"
    );
    let db = client.db().await;
    let saved = auth::user::Entity::find()
        .filter(auth::user::Column::Username.eq("newbie"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.email, "new@example.com");
    assert!(
        saved.password.starts_with("$argon2id$"),
        "{}",
        saved.password
    );
    assert!(saved.is_active && !saved.is_staff && !saved.is_superuser);
    assert!(saved.check_password(PASSWORD).await);
}

#[tokio::test]
async fn signup_redirects_home_when_next_leaves_the_site() {
    let client = client("");
    let mut fields = signup_fields("newbie", PASSWORD);
    fields.push(("next", "https://evil.example/"));
    let response = sign_up(&client, &fields).await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.header("location"), Some("/"));
    assert_eq!(whoami_of(&client).await, "newbie");
}

#[tokio::test]
async fn signup_refuses_a_taken_username_in_any_case() {
    let (client, _) = with_jane("").await;
    for taken in ["jane", "JANE"] {
        let response = sign_up(&client, &signup_fields(taken, PASSWORD)).await;
        assert_eq!(response.status(), 422);
        let page = response.text();
        assert!(
            field_errors(&page, "username").contains("already exists"),
            "{page}"
        );
        // The username and email are kept for the next try.
        assert!(page.contains(&format!("value=\"{taken}\"")), "{page}");
        assert!(page.contains("value=\"new@example.com\""), "{page}");
    }
    assert_eq!(usernames(&client).await, ["jane"]);
    assert_eq!(whoami_of(&client).await, "anonymous");
}

#[tokio::test]
async fn signup_runs_the_password_validators_and_never_shows_the_password_again() {
    let client = client("");
    for (password, says) in [
        ("Xy7!", "too short"),
        ("password123", "too common"),
        ("8472918374652", "entirely numeric"),
        ("newbie-account1", "too similar"),
    ] {
        let response = sign_up(&client, &signup_fields("newbie-account", password)).await;
        assert_eq!(response.status(), 422, "{password}");
        let page = response.text();
        assert!(
            field_errors(&page, "password1").contains(says),
            "{password}: {page}"
        );
        assert!(page.contains("value=\"newbie-account\""), "{page}");
        assert!(
            !page.contains(&format!("value=\"{password}\"")),
            "the password was sent back: {page}"
        );
    }
    assert!(usernames(&client).await.is_empty());
    assert_eq!(whoami_of(&client).await, "anonymous");
}

#[tokio::test]
async fn signup_with_a_different_confirmation_says_so_on_that_field() {
    let client = client("");
    let response = sign_up(
        &client,
        &[
            ("username", "newbie"),
            ("email", "new@example.com"),
            ("password1", PASSWORD),
            ("password2", "correct horse battery stapler"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(
        field_errors(&page, "password2").contains("didn’t match"),
        "{page}"
    );
    assert!(field_errors(&page, "password1").is_empty(), "{page}");
    assert!(usernames(&client).await.is_empty());
}

#[tokio::test]
async fn signup_answers_hostile_input_with_field_errors_not_500() {
    let client = client("");
    let long_name = "a".repeat(10_000);
    let long_email = format!("{}@example.com", "e".repeat(300));
    let long_password = "Zq9#".repeat(2_000);
    let cases = [
        (
            signup_fields(&long_name, PASSWORD),
            "username",
            "at most 150",
        ),
        (
            vec![
                ("username", "newbie"),
                ("email", &long_email),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ],
            "email",
            "at most 254",
        ),
        (
            signup_fields("newbie", &long_password),
            "password1",
            "at most 4096",
        ),
        (
            vec![
                ("username", "newbie"),
                ("email", "not an address"),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ],
            "email",
            "valid email",
        ),
        (signup_fields("", ""), "username", "required"),
    ];
    for (fields, field, says) in cases {
        let response = sign_up(&client, &fields).await;
        assert_eq!(response.status(), 422, "{field}");
        let page = response.text();
        assert!(field_errors(&page, field).contains(says), "{field}: {page}");
    }
    // HTML in the username is refused and shown back escaped.
    let xss = "<script>alert(1)</script>";
    let response = sign_up(&client, &signup_fields(xss, PASSWORD)).await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(!page.contains(xss), "unescaped: {page}");
    assert!(
        page.contains("value=\"&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\"")
            || page.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{page}"
    );
    assert!(
        field_errors(&page, "username").contains("letters, digits"),
        "{page}"
    );
    assert!(usernames(&client).await.is_empty());
}

#[tokio::test]
async fn signup_without_a_csrf_token_is_refused_and_creates_nobody() {
    let client = client("");
    let response = client
        .post(SIGNUP)
        .form(&signup_fields("newbie", PASSWORD))
        .send()
        .await;
    assert_eq!(response.status(), 403);
    assert!(usernames(&client).await.is_empty());
    assert_eq!(whoami_of(&client).await, "anonymous");
}

#[tokio::test]
async fn the_login_page_links_to_signup_when_the_project_has_it() {
    let client = client("");
    let page = client
        .get("/accounts/login/?next=/private/")
        .send()
        .await
        .text();
    assert!(
        page.contains("href=\"/accounts/signup/?next=/private/\""),
        "{page}"
    );
    let without = TestClient::with_settings(
        Project::new("t")
            .mount("/", kiln::sessions::app())
            .mount("/accounts", auth::app()),
        Settings::from_toml("debug = true").unwrap(),
    );
    let page = without.get("/accounts/login/").send().await.text();
    assert!(!page.contains("Sign up"), "{page}");
}
