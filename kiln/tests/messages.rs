//! Flash messages through `TestClient`: shown once on the next page, kept
//! in a signed cookie that a client cannot forge, trimmed to fit.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

use kiln::messages::Messages;
use kiln::prelude::*;
use kiln::test::TestClient;

const KEY: &str = "test-only-secret-key-0123456789abcdef0123456789";

async fn vote(mut messages: Messages) -> (Messages, Redirect) {
    messages.success("Your vote for <b>Rust</b> was counted.");
    messages.debug("vote id 7");
    (messages, Redirect::to("/page"))
}

async fn many(mut messages: Messages) -> (Messages, &'static str) {
    for n in 0..100 {
        messages.info(format!("message {n:03} {}", "x".repeat(90)));
    }
    (messages, "queued")
}

async fn page(mut messages: Messages) -> (Messages, String) {
    let shown: Vec<String> = messages
        .take()
        .iter()
        .map(|m| format!("{}: {}", m.level, kiln::http::escape(&m.text)))
        .collect();
    (messages, shown.join("\n"))
}

async fn rendered(parts: Parts, Path(name): Path<String>) -> Result<Response, kiln::Error> {
    kiln::templates::render(&parts, &format!("site/{name}.html"), ())
}

fn client(debug: bool, key: &str) -> TestClient {
    let settings =
        Settings::from_toml(&format!("debug = {debug}\nsecret_key = \"{key}\"")).unwrap();
    let app = App::new("site")
        .templates(kiln::templates_dir!("tests/templates/messages"))
        .route("/vote", "vote", post(vote))
        .route("/many", "many", post(many))
        .route("/page", "page", get(page))
        .route("/rendered/{name}", "rendered", get(rendered));
    TestClient::with_settings(Project::new("messages").mount("/", app), settings)
}

#[tokio::test]
async fn a_message_is_shown_once_on_the_next_page() {
    let client = client(false, KEY);
    let voted = client.post("/vote").send().await;
    assert_eq!(voted.status(), 303);
    let cookie = voted.header("set-cookie").unwrap();
    for attribute in [
        "kiln_messages=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }

    let shown = client.get("/page").send().await;
    assert_eq!(
        shown.text(),
        "success: Your vote for &lt;b&gt;Rust&lt;/b&gt; was counted."
    );
    assert_eq!(
        client.cookie("kiln_messages"),
        None,
        "showing them cleared them"
    );
    assert_eq!(client.get("/page").send().await.text(), "", "shown once");
}

#[tokio::test]
async fn debug_messages_and_plain_cookies_belong_to_debug_mode() {
    let client = client(true, KEY);
    let voted = client.post("/vote").send().await;
    assert!(!voted.header("set-cookie").unwrap().contains("Secure"));
    let shown = client.get("/page").send().await.text();
    assert!(shown.contains("debug: vote id 7"), "{shown}");
}

#[tokio::test]
async fn forged_or_altered_cookies_are_ignored() {
    let client = client(false, KEY);
    client.set_cookie("kiln_messages", r#"[{"level":"error","text":"forged"}]"#);
    let forged = client.get("/page").send().await;
    assert_eq!(forged.status(), 200);
    assert_eq!(forged.text(), "");

    client.post("/vote").send().await;
    let genuine = client.cookie("kiln_messages").unwrap();
    let altered = genuine.replace("Rust", "Evil").replace("success", "error");
    assert_ne!(altered, genuine, "the test alters the signed value");
    client.set_cookie("kiln_messages", &altered);
    assert_eq!(client.get("/page").send().await.text(), "");

    // A cookie signed with another site's key is no better.
    let other = self::client(false, "another-secret-key-0123456789abcdef0123456789");
    other.set_cookie("kiln_messages", &genuine);
    assert_eq!(other.get("/page").send().await.text(), "");
}

#[tokio::test]
async fn too_many_messages_keep_the_latest_within_a_cookie() {
    let client = client(false, KEY);
    let queued = client.post("/many").send().await;
    let cookie = queued.header("set-cookie").unwrap();
    assert!(cookie.len() < 4096, "{} bytes", cookie.len());
    let shown = client.get("/page").send().await.text();
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines.len() > 10 && lines.len() < 100,
        "{} messages kept",
        lines.len()
    );
    assert!(
        lines.last().unwrap().starts_with("info: message 099"),
        "the newest is kept"
    );
}

#[tokio::test]
async fn a_template_that_shows_the_messages_clears_them_and_one_that_does_not_keeps_them() {
    let client = client(false, KEY);
    client.post("/vote").send().await;
    let quiet = client.get("/rendered/quiet").send().await;
    assert_eq!(quiet.text().trim(), "no messages here");
    assert_eq!(quiet.header("set-cookie"), None);
    assert!(
        client.cookie("kiln_messages").is_some(),
        "not shown, so kept"
    );

    let page = client.get("/rendered/page").send().await;
    assert_eq!(
        page.text().trim(),
        "<p class=\"success\">Your vote for &lt;b&gt;Rust&lt;/b&gt; was counted.</p>"
    );
    assert_eq!(client.cookie("kiln_messages"), None, "shown, so cleared");
    assert_eq!(client.get("/rendered/page").send().await.text().trim(), "");
}
