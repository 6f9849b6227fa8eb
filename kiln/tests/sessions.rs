//! Sessions through `TestClient`: data survives requests on every store
//! (the database store on SQLite, PostgreSQL and MariaDB; Redis; the signed
//! cookie), and the attacks of issue 5 fail: a tampered or replayed cookie,
//! an unknown key, session fixation, expired and corrupt records.
//!
//! PostgreSQL, MariaDB and Redis are the servers on this machine; a server
//! that does not answer skips its part with a `SKIPPED:` line, unless
//! `KILN_REQUIRE_BACKENDS=1` (as in CI).

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::time::Duration;

use kiln::db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use kiln::messages::Messages;
use kiln::prelude::*;
use kiln::sessions::{Expiry, Session};
use kiln::test::TestClient;

const KEY: &str = "test-only-secret-key-0123456789abcdef0123456789";
const COOKIE: &str = "kiln_session";

async fn read(session: Session, Path(key): Path<String>) -> Result<String, kiln::Error> {
    Ok(match session.get::<serde_json::Value>(&key).await? {
        Some(value) => value.to_string(),
        None => "none".to_owned(),
    })
}

async fn write(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, kiln::Error> {
    session.insert(&key, value).await?;
    Ok("saved")
}

async fn login(session: Session) -> Result<&'static str, kiln::Error> {
    session.cycle_key().await?;
    session.insert("user", "alice").await?;
    Ok("logged in")
}

async fn logout(session: Session) -> Result<&'static str, kiln::Error> {
    session.flush().await?;
    Ok("logged out")
}

async fn forget_on_close(session: Session) -> Result<&'static str, kiln::Error> {
    session.set_expiry(Expiry::AtBrowserClose);
    session.insert("user", "bob").await?;
    Ok("until the browser closes")
}

async fn keys(session: Session) -> Result<String, kiln::Error> {
    let mut keys = session.keys().await?;
    keys.sort();
    Ok(keys.join(","))
}

async fn flash(mut messages: Messages) -> (Messages, Redirect) {
    messages.success("Saved <b>it</b>.");
    (messages, Redirect::to("/shown"))
}

async fn shown(mut messages: Messages) -> (Messages, String) {
    let texts: Vec<String> = messages.take().into_iter().map(|m| m.text).collect();
    (messages, texts.join("|"))
}

async fn rendered(parts: Parts) -> Result<Response, kiln::Error> {
    kiln::templates::render(&parts, "site/page.html", ())
}

fn project() -> Project {
    let site = App::new("site")
        .templates(kiln::templates_dir!("tests/templates/messages"))
        .route("/get/{key}", "get", get(read))
        .route("/set/{key}/{value}", "set", post(write))
        .route("/login", "login", post(login))
        .route("/logout", "logout", post(logout))
        .route("/forget-on-close", "forget_on_close", post(forget_on_close))
        .route("/keys", "keys", get(keys))
        .route("/flash", "flash", post(flash))
        .route("/shown", "shown", get(shown))
        .route("/rendered", "rendered", get(rendered));
    Project::new("sessions")
        .mount("/", kiln::sessions::app())
        .mount("/", site)
}

fn settings(extra: &str) -> Settings {
    Settings::from_toml(&format!("secret_key = \"{KEY}\"\n{extra}")).unwrap()
}

fn client(extra: &str) -> TestClient {
    TestClient::with_settings(project(), settings(extra))
}

async fn scalar(db: &kiln::db::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn execute(db: &kiln::db::DatabaseConnection, sql: &str) -> u64 {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .rows_affected()
}

async fn rows(db: &kiln::db::DatabaseConnection) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM kiln_session").await
}

/// What every store that keeps data on the server must do.
async fn keeps_data_and_resists_attacks(client: &TestClient, label: &str) {
    // Nothing sent, nothing touched: no cookie.
    let first = client.get("/get/colour").send().await;
    assert_eq!(first.text(), "none", "{label}");
    assert!(first.header("set-cookie").is_none(), "{label}");

    // Data survives requests.
    assert_eq!(client.post("/set/colour/blue").send().await.text(), "saved");
    let key = client.cookie(COOKIE).expect("a session cookie");
    assert_eq!(key.len(), 43, "{label}: {key}");
    assert_eq!(
        client.get("/get/colour").send().await.text(),
        "\"blue\"",
        "{label}"
    );

    // Read but unchanged: nothing written.
    let again = client.get("/get/colour").send().await;
    assert!(again.header("set-cookie").is_none(), "{label}");

    // Login gives a new id with the same data; the old id leads nowhere.
    client.post("/login").send().await;
    let logged_in = client.cookie(COOKIE).unwrap();
    assert_ne!(logged_in, key, "{label}: cycle_key kept the id");
    assert_eq!(
        client.get("/get/colour").send().await.text(),
        "\"blue\"",
        "{label}"
    );
    assert_eq!(
        client.get("/get/user").send().await.text(),
        "\"alice\"",
        "{label}"
    );
    client.set_cookie(COOKIE, &key);
    assert_eq!(
        client.get("/get/user").send().await.text(),
        "none",
        "{label}: old id loads"
    );

    // Logout deletes the record; replaying its cookie is an empty session.
    client.set_cookie(COOKIE, &logged_in);
    let out = client.post("/logout").send().await;
    assert!(
        out.header("set-cookie").unwrap().contains("Max-Age=0"),
        "{label}"
    );
    assert_eq!(client.cookie(COOKIE), None, "{label}");
    client.set_cookie(COOKIE, &logged_in);
    assert_eq!(
        client.get("/get/user").send().await.text(),
        "none",
        "{label}: replay"
    );

    // Fixation: a key an attacker planted is never adopted, even on login.
    let planted = "A".repeat(43);
    client.set_cookie(COOKIE, &planted);
    client.post("/login").send().await;
    let after = client.cookie(COOKIE).unwrap();
    assert_ne!(after, planted, "{label}: fixation");
    assert_eq!(
        client.get("/get/user").send().await.text(),
        "\"alice\"",
        "{label}"
    );

    // A tampered or unknown cookie is an empty session, not an error.
    for forged in [
        "not-a-key",
        "%00'; DROP TABLE kiln_session;--",
        &"B".repeat(43),
    ] {
        client.set_cookie(COOKIE, forged);
        let response = client.get("/get/user").send().await;
        assert_eq!(response.status(), 200, "{label}: {forged}");
        assert_eq!(response.text(), "none", "{label}: {forged}");
    }
}

#[tokio::test]
async fn database_store_keeps_data_and_resists_attacks_on_sqlite() {
    let client = client("");
    keeps_data_and_resists_attacks(&client, "sqlite").await;
    let db = client.db().await;
    // The last session (alice's, after the planted key) is the one row;
    // the forged cookies created none.
    assert_eq!(rows(&db).await, 1);
}

#[tokio::test]
async fn database_store_keeps_data_and_resists_attacks_on_servers() {
    for backend in [DbBackend::Postgres, DbBackend::MySql] {
        let Some(database) = backends::connect(backend).await else {
            continue;
        };
        let url = database.url();
        let client = client(&format!("database_url = \"{url}\""));
        keeps_data_and_resists_attacks(&client, database.label()).await;
        let db = client.db().await;
        assert_eq!(rows(&db).await, 1, "{}", database.label());
        expiry_and_corruption(&client, database.label()).await;
        drop(db);
        drop(client);
        database.finish().await;
    }
}

/// Expired and corrupt rows are empty sessions; clearsessions removes
/// only the expired ones.
async fn expiry_and_corruption(client: &TestClient, label: &str) {
    let db = client.db().await;
    execute(&db, "DELETE FROM kiln_session").await;
    client.post("/set/a/1").send().await;
    let expired = client.cookie(COOKIE).unwrap();
    execute(
        &db,
        "UPDATE kiln_session SET expire_date = '2001-01-01 00:00:00'",
    )
    .await;
    assert_eq!(
        client.get("/get/a").send().await.text(),
        "none",
        "{label}: expired"
    );

    client.set_cookie(COOKIE, "");
    client.post("/set/b/2").send().await;
    let live = client.cookie(COOKIE).unwrap();
    assert_ne!(live, expired, "{label}");
    let removed = kiln::sessions::clear_expired(client.site()).await.unwrap();
    assert_eq!(removed, 1, "{label}: clearsessions");
    assert_eq!(rows(&db).await, 1, "{label}");
    assert_eq!(client.get("/get/b").send().await.text(), "\"2\"", "{label}");

    execute(&db, "UPDATE kiln_session SET session_data = '{not json'").await;
    let corrupt = client.get("/get/b").send().await;
    assert_eq!(corrupt.status(), 200, "{label}: corrupt");
    assert_eq!(corrupt.text(), "none", "{label}: corrupt");
}

#[tokio::test]
async fn expired_and_corrupt_rows_are_empty_sessions_and_clearsessions_removes_expired() {
    let client = client("");
    expiry_and_corruption(&client, "sqlite").await;
}

#[tokio::test]
async fn a_one_second_session_expires() {
    let client = client("session_cookie_age = 1");
    client.post("/set/a/1").send().await;
    assert_eq!(client.get("/get/a").send().await.text(), "\"1\"");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(client.get("/get/a").send().await.text(), "none");
}

#[tokio::test]
async fn sliding_expiry_pushes_the_expiry_forward_on_every_request() {
    let client = client("session_save_every_request = true");
    client.post("/set/a/1").send().await;
    let db = client.db().await;
    execute(
        &db,
        "UPDATE kiln_session SET expire_date = '2100-01-01 00:00:00'",
    )
    .await;
    // A request that only reads is saved again: two weeks from now.
    let response = client.get("/get/a").send().await;
    assert!(
        response
            .header("set-cookie")
            .unwrap()
            .contains("Max-Age=1209600")
    );
    let later = scalar(
        &db,
        "SELECT COUNT(*) FROM kiln_session WHERE expire_date < '2100-01-01 00:00:00'",
    )
    .await;
    assert_eq!(later, 1, "the expiry was not rewritten");

    // Without the setting, reading writes nothing.
    let fixed = self::client("");
    fixed.post("/set/a/1").send().await;
    assert!(
        fixed
            .get("/get/a")
            .send()
            .await
            .header("set-cookie")
            .is_none()
    );
}

#[tokio::test]
async fn production_cookie_is_secure_http_only_and_lax() {
    let client = client("debug = false");
    let response = client.post("/set/a/1").send().await;
    let cookie = response.header("set-cookie").unwrap();
    for attribute in [
        "kiln_session=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=1209600",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    // Debug mode serves plain HTTP: no Secure there.
    let debug = self::client("debug = true");
    let cookie = debug.post("/set/a/1").send().await;
    assert!(!cookie.header("set-cookie").unwrap().contains("Secure"));
}

#[tokio::test]
async fn a_session_set_to_end_at_browser_close_has_no_max_age_on_later_saves_too() {
    let client = client("");
    let response = client.post("/forget-on-close").send().await;
    let cookie = response.header("set-cookie").unwrap();
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    let later = client.post("/set/a/1").send().await;
    assert!(!later.header("set-cookie").unwrap().contains("Max-Age"));
    assert_eq!(client.get("/keys").send().await.text(), "a,user");
}

#[tokio::test]
async fn cookie_store_keeps_data_in_a_signed_cookie() {
    let client = client("session_engine = \"cookie\"");
    client.post("/set/colour/blue").send().await;
    client.post("/login").send().await;
    assert_eq!(client.get("/get/colour").send().await.text(), "\"blue\"");
    assert_eq!(client.get("/get/user").send().await.text(), "\"alice\"");
    // No table is written: the data is in the cookie.
    assert_eq!(rows(&client.db().await).await, 0);

    // One changed character: an empty session, not an error.
    let value = client.cookie(COOKIE).unwrap();
    let mut tampered = value.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    client.set_cookie(COOKIE, std::str::from_utf8(&tampered).unwrap());
    let response = client.get("/get/user").send().await;
    assert_eq!(
        (response.status().as_u16(), response.text().as_str()),
        (200, "none")
    );

    // Another site's key signs nothing this site accepts.
    let other = TestClient::with_settings(
        project(),
        Settings::from_toml("secret_key = \"another-secret-key-0123456789abcdefghijklmn\"\nsession_engine = \"cookie\"").unwrap(),
    );
    other.set_cookie(COOKIE, &value);
    assert_eq!(other.get("/get/user").send().await.text(), "none");

    // Logout expires the cookie.
    client.set_cookie(COOKIE, &value);
    let out = client.post("/logout").send().await;
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(client.get("/get/user").send().await.text(), "none");
}

#[tokio::test]
async fn an_expired_signed_cookie_is_an_empty_session() {
    let client = client("session_engine = \"cookie\"\nsession_cookie_age = 1");
    client.post("/set/a/1").send().await;
    assert_eq!(client.get("/get/a").send().await.text(), "\"1\"");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(client.get("/get/a").send().await.text(), "none");
}

/// Redis at 127.0.0.1:6379 (or `KILN_TEST_REDIS_URL`), or `None` after a
/// `SKIPPED:` line when it does not answer and `KILN_REQUIRE_BACKENDS` is
/// not `1`.
async fn redis_url() -> Option<String> {
    let url = std::env::var("KILN_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let reached = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(address.clone()),
    )
    .await;
    if matches!(reached, Ok(Ok(_))) {
        return Some(url);
    }
    let message = format!("Redis at {address} unreachable");
    assert!(
        std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "{message}; KILN_REQUIRE_BACKENDS=1 requires every backend"
    );
    eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
    None
}

#[tokio::test]
async fn redis_store_keeps_data_and_resists_attacks() {
    let Some(url) = redis_url().await else {
        return;
    };
    let client = client(&format!(
        "session_engine = \"redis\"\nsession_redis_url = \"{url}\""
    ));
    keeps_data_and_resists_attacks(&client, "redis").await;
    // The key carries the session's time to live.
    client.set_cookie(COOKIE, "");
    client.post("/set/a/1").send().await;
    let key = client.cookie(COOKIE).unwrap();
    let redis = kiln_redis_ttl(&url, &key).await;
    assert!((1_209_000..=1_209_600).contains(&redis), "ttl {redis}");
}

/// The time to live of session `key` in Redis, asked with a raw RESP
/// command so that the test does not depend on the store's own client.
async fn kiln_redis_ttl(url: &str, key: &str) -> i64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = format!("kiln:session:{key}");
    let command = format!("*2\r\n$3\r\nTTL\r\n${}\r\n{name}\r\n", name.len());
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut buffer = [0u8; 64];
    let n = stream.read(&mut buffer).await.unwrap();
    let reply = std::str::from_utf8(&buffer[..n]).unwrap();
    reply.trim_start_matches(':').trim().parse().unwrap()
}

/// Collects log lines, for tests that check what is logged.
#[path = "support/logs.rs"]
mod logs;
use logs::Logs;

#[tokio::test]
async fn an_unreachable_redis_is_a_500_that_names_the_url() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Port 9 (discard) is closed on this machine.
    let client = client("session_engine = \"redis\"\nsession_redis_url = \"redis://127.0.0.1:9\"");
    let response = client.post("/set/a/1").send().await;
    assert_eq!(response.status(), 500);
    assert!(
        response.header("set-cookie").is_none(),
        "half-written response"
    );
    let body = response.text();
    assert!(body.contains("redis://127.0.0.1:9"), "{body}");
    let logged = logs.text();
    assert!(
        logged.contains("redis at redis://127.0.0.1:9") && logged.contains("fix:"),
        "{logged}"
    );
}

#[tokio::test]
async fn a_session_without_the_sessions_app_is_a_500_that_names_the_fix() {
    let app = App::new("site").route("/get/{key}", "get", get(read));
    let client = TestClient::with_settings(Project::new("plain").mount("/", app), settings(""));
    let response = client.get("/get/a").send().await;
    assert_eq!(response.status(), 500);
    assert!(
        response.text().contains("kiln::sessions::app()"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn messages_travel_in_the_session_when_sessions_are_on() {
    let client = client("");
    let flashed = client.post("/flash").send().await;
    assert_eq!(flashed.status(), 303);
    // The browser holds only the marker; the text is in the session.
    assert_eq!(client.cookie("kiln_messages").as_deref(), Some("session"));
    assert_eq!(rows(&client.db().await).await, 1);
    assert_eq!(client.get("/shown").send().await.text(), "Saved <b>it</b>.");
    assert_eq!(client.cookie("kiln_messages"), None);
    assert_eq!(client.get("/shown").send().await.text(), "", "shown once");

    // A template shows them, escaped, once.
    client.post("/flash").send().await;
    let page = client.get("/rendered").send().await.text();
    assert!(page.contains("Saved &lt;b&gt;it&lt;/b&gt;."), "{page}");
    let again = client.get("/rendered").send().await.text();
    assert!(!again.contains("Saved"), "{again}");
}

async fn untouched() -> &'static str {
    "no session used"
}

#[tokio::test]
async fn a_request_that_does_not_use_the_session_reads_nothing_from_the_store() {
    // The store cannot be reached: any read or write would be a 500.
    let app = App::new("site")
        .route("/untouched", "untouched", get(untouched))
        .route("/get/{key}", "get", get(read));
    let project = Project::new("lazy")
        .mount("/", kiln::sessions::app())
        .mount("/", app);
    let client = TestClient::with_settings(
        project,
        settings("session_engine = \"redis\"\nsession_redis_url = \"redis://127.0.0.1:9\""),
    );
    client.set_cookie(COOKIE, &"A".repeat(43));
    let response = client.get("/untouched").send().await;
    assert_eq!(response.status(), 200);
    assert!(response.header("set-cookie").is_none());
    // Touching it does reach the store, which proves the test's premise.
    assert_eq!(client.get("/get/a").send().await.status(), 500);
}
