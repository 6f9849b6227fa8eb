//! Attack tests for Kiln's security middleware: each one fails if its
//! protection is removed. CSRF (cross-site posts, stolen tokens, bad
//! origins), forged Host headers, clickjacking, HTTPS detection, signed
//! values with key rotation, and rate limits.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/multipart.rs"]
pub mod multipart;

use std::time::Duration;

use kiln::messages::Messages;
use kiln::prelude::*;
use kiln::security::signing::{Signer, SigningError};
use kiln::security::{CsrfToken, RateLimit, Throttle};
use kiln::test::TestClient;

const KEY: &str = "test-only-secret-key-0123456789abcdef0123456789";
const OLD_KEY: &str = "test-only-former-key-abcdef0123456789abcdef0123";

async fn form(parts: Parts) -> Result<Response, kiln::Error> {
    kiln::templates::render(&parts, "site/form.html", ())
}

async fn submit(body: String) -> String {
    format!("accepted {} bytes", body.len())
}

async fn token(csrf: CsrfToken) -> String {
    csrf.to_string()
}

async fn rotate(parts: Parts) -> Result<&'static str, kiln::Error> {
    kiln::security::rotate_csrf_token(&parts)?;
    Ok("rotated")
}

async fn framed() -> ([(HeaderName, &'static str); 1], &'static str) {
    (
        [(header::X_FRAME_OPTIONS, "SAMEORIGIN")],
        "may be framed by this site",
    )
}

async fn vote(mut messages: Messages) -> (Messages, &'static str) {
    messages.success("Your vote was counted.");
    (messages, "voted")
}

async fn page(mut messages: Messages) -> (Messages, String) {
    let shown: Vec<String> = messages.take().into_iter().map(|m| m.text).collect();
    (messages, shown.join("\n"))
}

use kiln::deps::axum::http::HeaderName;

fn project() -> Project {
    let app = App::new("site")
        .templates(kiln::templates_dir!("tests/templates/security"))
        .route("/form", "form", get(form).post(submit))
        .route("/token", "token", get(token))
        .route("/rotate", "rotate", post(rotate))
        .route("/hook", "hook", post(submit).csrf_exempt())
        .route("/framed", "framed", get(framed))
        .route("/vote", "vote", post(vote))
        .route("/page", "page", get(page));
    Project::new("security").mount("/", app)
}

fn settings(debug: bool, extra: &str) -> Settings {
    Settings::from_toml(&format!(
        "debug = {debug}\nsecret_key = \"{KEY}\"\nallowed_hosts = [\"testserver\", \"www.example.com\"]\n{extra}"
    ))
    .unwrap()
}

/// A client that checks CSRF like a browser's request would be checked.
fn browser(debug: bool, extra: &str) -> TestClient {
    TestClient::with_settings(project(), settings(debug, extra)).enforce_csrf_checks()
}

/// The token of the form on `/form`, loading the page (which sets the cookie).
async fn form_token(client: &TestClient) -> String {
    let page = client.get("/form").send().await.text();
    let start = page.find("name=\"csrfmiddlewaretoken\" value=\"").unwrap() + 34;
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

// ---- CSRF ----

#[tokio::test]
async fn rejects_cross_site_post_without_a_token() {
    let client = browser(true, "");
    // A forged form on another site: the browser sends no cookie, no token.
    let forged = client
        .post("/form")
        .form(&[("amount", "1000")])
        .send()
        .await;
    assert_eq!(forged.status(), 403);
    assert!(
        forged.text().contains("CSRF cookie not set"),
        "{}",
        forged.text()
    );

    // The victim has visited the site (cookie set), the forged form has no token.
    form_token(&client).await;
    assert!(client.cookie("kiln_csrftoken").is_some());
    let forged = client
        .post("/form")
        .form(&[("amount", "1000")])
        .send()
        .await;
    assert_eq!(forged.status(), 403);
    let page = forged.text();
    assert!(page.contains("CSRF token missing"), "{page}");
    assert!(
        page.contains("{{ csrf_input() }}"),
        "the debug page says how to fix it: {page}"
    );
    assert!(page.contains("X-CSRFToken"), "{page}");
}

#[tokio::test]
async fn rejects_a_token_from_another_session() {
    let attacker = browser(true, "");
    let stolen = form_token(&attacker).await;
    let victim = browser(true, "");
    form_token(&victim).await;
    let forged = victim
        .post("/form")
        .form(&[("csrfmiddlewaretoken", stolen.as_str())])
        .send()
        .await;
    assert_eq!(forged.status(), 403);
    assert!(
        forged.text().contains("another session"),
        "{}",
        forged.text()
    );
    let forged = victim
        .post("/form")
        .header("x-csrftoken", &stolen)
        .send()
        .await;
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn rejects_a_bad_origin_even_with_a_good_token() {
    let client = browser(true, "csrf_trusted_origins = [\"https://app.example.com\"]");
    let token = form_token(&client).await;
    let post = |origin: &'static str| {
        client
            .post("/form")
            .header("origin", origin)
            .form(&[("csrfmiddlewaretoken", token.as_str())])
    };
    let refused = post("https://evil.example").send().await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.text().contains("Origin checking failed"),
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("csrf_trusted_origins"));
    assert_eq!(post("http://testserver").send().await.status(), 200);
    assert_eq!(post("https://app.example.com").send().await.status(), 200);
    assert_eq!(post("null").send().await.status(), 403);
}

#[tokio::test]
async fn https_posts_need_a_same_site_referer_without_origin() {
    let client = browser(
        true,
        "secure_proxy_ssl_header = \"X-Forwarded-Proto: https\"",
    );
    let token = form_token(&client).await;
    let post = || {
        client
            .post("/form")
            .header("x-forwarded-proto", "https")
            .header("x-csrftoken", &token)
    };
    let refused = post().send().await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.text().contains("Referer checking failed"),
        "{}",
        refused.text()
    );
    let foreign = post()
        .header("referer", "https://evil.example/form")
        .send()
        .await;
    assert_eq!(foreign.status(), 403);
    let downgraded = post()
        .header("referer", "http://testserver/form")
        .send()
        .await;
    assert_eq!(downgraded.status(), 403);
    let own = post()
        .header("referer", "https://testserver/form")
        .send()
        .await;
    assert_eq!(own.status(), 200, "{}", own.text());
    // Over plain HTTP the Referer is not required.
    let plain = client
        .post("/form")
        .header("x-csrftoken", &token)
        .send()
        .await;
    assert_eq!(plain.status(), 200);
}

#[tokio::test]
async fn accepts_a_correct_token_in_the_form_the_header_and_the_first_multipart_part() {
    let client = browser(true, "");
    let token = form_token(&client).await;
    let by_form = client
        .post("/form")
        .form(&[("csrfmiddlewaretoken", token.as_str()), ("amount", "5")])
        .send()
        .await;
    assert_eq!(by_form.status(), 200, "{}", by_form.text());
    // The handler still sees the whole body.
    let expected = format!("csrfmiddlewaretoken={token}&amount=5").len();
    assert_eq!(by_form.text(), format!("accepted {expected} bytes"));

    let by_header = client
        .post("/form")
        .header("X-CSRFToken", &token)
        .send()
        .await;
    assert_eq!(by_header.status(), 200);

    let body = multipart::multipart(
        &[("csrfmiddlewaretoken", token.as_str()), ("title", "hi")],
        &[("file", "a.bin", &[7u8; 100_000])],
    );
    let length = body.len();
    let by_multipart = multipart::post(&client, "/form", body).await;
    assert_eq!(by_multipart.status(), 200, "{}", by_multipart.text());
    assert_eq!(by_multipart.text(), format!("accepted {length} bytes"));

    // Anywhere but first, the multipart token is not looked for.
    let late = multipart::multipart(
        &[("title", "hi"), ("csrfmiddlewaretoken", token.as_str())],
        &[],
    );
    assert_eq!(multipart::post(&client, "/form", late).await.status(), 403);
}

#[tokio::test]
async fn exempt_routes_and_reads_are_not_checked() {
    let client = browser(true, "");
    assert_eq!(
        client.post("/hook").body("payload").send().await.status(),
        200
    );
    assert_eq!(client.get("/form").send().await.status(), 200);
    // No handler runs for a path no route serves: its 404 is not a 403.
    assert_eq!(client.post("/nowhere").send().await.status(), 404);
    // The plain test client skips the check, as Django's.
    let lenient = TestClient::with_settings(project(), settings(true, ""));
    assert_eq!(lenient.post("/form").body("x").send().await.status(), 200);
}

#[tokio::test]
async fn tokens_differ_between_renders_but_all_verify() {
    let client = browser(true, "");
    let first = form_token(&client).await;
    let cookie = client.cookie("kiln_csrftoken").unwrap();
    let second = form_token(&client).await;
    let from_extractor = client.get("/token").send().await.text();
    assert_ne!(first, second);
    assert_ne!(second, from_extractor);
    assert_eq!(
        client.cookie("kiln_csrftoken").unwrap(),
        cookie,
        "one secret"
    );
    for token in [&first, &second, &from_extractor] {
        let response = client
            .post("/form")
            .header("x-csrftoken", token)
            .send()
            .await;
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn the_cookie_is_readable_by_scripts_lax_and_secure_in_production() {
    let client = browser(false, "");
    let page = client.get("/form").send().await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("kiln_csrftoken="), "{cookie}");
    for attribute in ["SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("HttpOnly"),
        "JavaScript reads it: {cookie}"
    );
    // A page that asks for no token sets no cookie.
    let fresh = browser(false, "");
    assert!(
        fresh
            .get("/framed")
            .send()
            .await
            .header("set-cookie")
            .is_none()
    );
    // Production's 403 says nothing about the internals.
    let refused = client.post("/form").send().await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().contains("CSRF verification failed"));
    assert!(!refused.text().contains("csrf_input"), "{}", refused.text());
}

#[tokio::test]
async fn rotating_the_token_invalidates_older_ones() {
    let client = browser(true, "");
    let before = form_token(&client).await;
    let rotated = client
        .post("/rotate")
        .header("x-csrftoken", &before)
        .send()
        .await;
    assert_eq!(rotated.status(), 200);
    let stale = client
        .post("/form")
        .header("x-csrftoken", &before)
        .send()
        .await;
    assert_eq!(stale.status(), 403);
    let after = form_token(&client).await;
    assert_eq!(
        client
            .post("/form")
            .header("x-csrftoken", &after)
            .send()
            .await
            .status(),
        200
    );
}

// ---- Allowed hosts ----

#[tokio::test]
async fn rejects_a_forged_host_header() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let forged = client
        .get("/form")
        .header("host", "evil.example")
        .send()
        .await;
    assert_eq!(forged.status(), 400);
    let page = forged.text();
    assert!(
        page.contains("evil.example") && page.contains("allowed_hosts"),
        "{page}"
    );
    assert!(page.contains("KILN_ALLOWED_HOSTS"), "{page}");
    for junk in ["evil.com@testserver", "testserver/x", "[zz]"] {
        let response = client.get("/form").header("host", junk).send().await;
        assert_eq!(response.status(), 400, "{junk}");
    }
    // The URI's authority (HTTP/2, absolute-form requests) is checked too.
    let absolute = client.get("http://evil.example/form").send().await;
    assert_eq!(absolute.status(), 400);
    // Case and port do not matter; subdomains only where the entry says so.
    assert_eq!(
        client
            .get("/form")
            .header("host", "TestServer")
            .send()
            .await
            .status(),
        200
    );
    assert_eq!(
        client
            .get("/form")
            .header("host", "www.example.com:8443")
            .send()
            .await
            .status(),
        200
    );
    assert_eq!(
        client
            .get("/form")
            .header("host", "x.www.example.com")
            .send()
            .await
            .status(),
        400
    );
    let production = TestClient::with_settings(project(), settings(false, ""));
    let forged = production
        .get("/form")
        .header("host", "evil.example")
        .send()
        .await;
    assert_eq!(forged.status(), 400);
    assert!(!forged.text().contains("KILN_ALLOWED_HOSTS"));
}

#[tokio::test]
async fn absolute_urls_never_use_a_forged_host() {
    let client = TestClient::with_settings(
        project(),
        settings(
            true,
            "secure_ssl_redirect = true\nsecure_proxy_ssl_header = \"X-Forwarded-Proto: https\"",
        ),
    );
    let redirected = client
        .get("/form?x=1")
        .header("host", "www.example.com")
        .send()
        .await;
    assert_eq!(redirected.status(), 301);
    assert_eq!(
        redirected.header("location"),
        Some("https://www.example.com/form?x=1")
    );
    let forged = client
        .get("/form")
        .header("host", "evil.example")
        .send()
        .await;
    assert_eq!(forged.status(), 400);
    assert!(forged.header("location").is_none());
    let secure = client
        .get("/form")
        .header("x-forwarded-proto", "https")
        .send()
        .await;
    assert_eq!(secure.status(), 200);
    let error = Settings::from_toml("secure_ssl_redirect = true")
        .unwrap_err()
        .to_string();
    assert!(error.contains("secure_proxy_ssl_header"), "{error}");
}

#[test]
fn production_without_allowed_hosts_refuses_to_boot() {
    let settings = Settings::from_toml(&format!("debug = false\nsecret_key = \"{KEY}\"")).unwrap();
    let error = project().build(settings).unwrap_err().to_string();
    assert!(
        error.contains("allowed_hosts") && error.contains("KILN_ALLOWED_HOSTS"),
        "{error}"
    );
    let error = Settings::from_toml("allowed_hosts = [\"https://example.com/\"]")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`allowed_hosts`") && error.contains("fix:"),
        "{error}"
    );
}

// ---- Headers ----

#[tokio::test]
async fn pages_refuse_to_be_framed() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    for path in ["/form", "/nowhere"] {
        let response = client.get(path).send().await;
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("referrer-policy"), Some("same-origin"));
        assert_eq!(
            response.header("cross-origin-opener-policy"),
            Some("same-origin")
        );
        assert!(response.header("content-security-policy").is_none());
        assert!(response.header("strict-transport-security").is_none());
    }
    // A handler may allow framing by its own site.
    let framed = client.get("/framed").send().await;
    assert_eq!(framed.header("x-frame-options"), Some("SAMEORIGIN"));

    let csp = "default-src 'self'; frame-ancestors 'none'";
    let strict = TestClient::with_settings(
        project(),
        settings(false, &format!("content_security_policy = \"{csp}\"")),
    );
    let response = strict.get("/form").send().await;
    assert_eq!(response.header("content-security-policy"), Some(csp));
}

#[tokio::test]
async fn hsts_is_sent_only_over_https() {
    let client = TestClient::with_settings(
        project(),
        settings(
            false,
            "secure_hsts_seconds = 31536000\nsecure_hsts_include_subdomains = true\nsecure_proxy_ssl_header = \"X-Forwarded-Proto: https\"",
        ),
    );
    let plain = client.get("/form").send().await;
    assert!(plain.header("strict-transport-security").is_none());
    // A client cannot claim HTTPS with a header other than the configured one.
    let spoofed = client
        .get("/form")
        .header("x-forwarded-ssl", "on")
        .send()
        .await;
    assert!(spoofed.header("strict-transport-security").is_none());
    let secure = client
        .get("/form")
        .header("x-forwarded-proto", "https")
        .send()
        .await;
    assert_eq!(
        secure.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

// ---- Signing ----

#[test]
fn tampered_signed_values_are_refused() {
    let signer = Signer::new(KEY, &[] as &[&str], "tests");
    let signed = signer.sign("user:42");
    assert_eq!(signer.unsign(&signed), Ok("user:42"));
    let tampered = signed.replacen("42", "1", 1);
    assert_eq!(signer.unsign(&tampered), Err(SigningError::BadSignature));
    let mut flipped = signed.clone();
    flipped.pop();
    flipped.push(if signed.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(signer.unsign(&flipped), Err(SigningError::BadSignature));
}

#[test]
fn an_old_key_verifies_only_while_it_is_a_fallback() {
    let old = Signer::new(OLD_KEY, &[] as &[&str], "tests").sign("value");
    let rotated = Signer::new(KEY, &[OLD_KEY], "tests");
    assert_eq!(rotated.unsign(&old), Ok("value"));
    // New values are signed with the new key only.
    let new = rotated.sign("value");
    assert!(
        Signer::new(OLD_KEY, &[] as &[&str], "tests")
            .unsign(&new)
            .is_err()
    );
    let retired = Signer::new(KEY, &[] as &[&str], "tests");
    assert_eq!(retired.unsign(&old), Err(SigningError::BadSignature));
}

#[test]
fn an_expired_timestamp_is_refused() {
    let signer = Signer::new(KEY, &[] as &[&str], "tests");
    let fresh = signer.sign_timestamped("reset:7");
    assert_eq!(
        signer.unsign_timestamped(&fresh, Duration::from_secs(60)),
        Ok("reset:7")
    );
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let old = signer.sign(&format!("reset:7:{an_hour_ago}"));
    assert!(matches!(
        signer.unsign_timestamped(&old, Duration::from_secs(60)),
        Err(SigningError::Expired { .. })
    ));
    assert_eq!(
        signer.unsign_timestamped(&old, Duration::from_secs(7200)),
        Ok("reset:7")
    );
}

#[tokio::test]
async fn messages_survive_a_key_rotation_through_fallbacks() {
    let before = TestClient::with_settings(project(), settings(true, ""));
    before.post("/vote").send().await;
    let cookie = before.cookie("kiln_messages").unwrap();
    let rotated = |fallbacks: &str| {
        let settings = Settings::from_toml(&format!(
            "debug = true\nsecret_key = \"{OLD_KEY}\"\nsecret_key_fallbacks = [{fallbacks}]"
        ))
        .unwrap();
        let client = TestClient::with_settings(project(), settings);
        client.set_cookie("kiln_messages", &cookie);
        client
    };
    let kept = rotated(&format!("\"{KEY}\""));
    assert_eq!(
        kept.get("/page").send().await.text(),
        "Your vote was counted."
    );
    let dropped = rotated("");
    assert_eq!(dropped.get("/page").send().await.text(), "");
}

// ---- Rate limits ----

async fn hello() -> &'static str {
    "hello"
}

#[tokio::test]
async fn the_request_over_the_limit_gets_429_with_retry_after() {
    let app = App::new("api")
        .route("/hello", "hello", get(hello))
        .layer(RateLimit::per_ip(3, Duration::from_secs(60)));
    let client =
        TestClient::with_settings(Project::new("limits").mount("/", app), settings(true, ""));
    let alice: std::net::SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let bob: std::net::SocketAddr = "203.0.113.2:5000".parse().unwrap();
    for _ in 0..3 {
        assert_eq!(
            client
                .get("/hello")
                .remote_addr(alice)
                .send()
                .await
                .status(),
            200
        );
    }
    let limited = client.get("/hello").remote_addr(alice).send().await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    // Another client is unaffected.
    assert_eq!(
        client.get("/hello").remote_addr(bob).send().await.status(),
        200
    );
}

#[tokio::test]
async fn a_route_layer_limits_that_route_only() {
    let app = App::new("api")
        .route(
            "/limited",
            "limited",
            get(hello).layer(RateLimit::keyed(1, Duration::from_secs(60), |_| {
                Some("all".to_owned())
            })),
        )
        .route("/free", "free", get(hello));
    let client =
        TestClient::with_settings(Project::new("limits").mount("/", app), settings(true, ""));
    assert_eq!(client.get("/limited").send().await.status(), 200);
    assert_eq!(client.get("/limited").send().await.status(), 429);
    assert_eq!(client.get("/free").send().await.status(), 200);
}

#[test]
fn a_throttle_counts_failures_per_key_and_bounds_its_memory() {
    let throttle = Throttle::new(2, Duration::from_millis(200)).max_keys(10);
    throttle.record_failure("alice");
    assert!(throttle.check("alice").is_ok());
    throttle.record_failure("alice");
    let retry = throttle.check("alice").unwrap_err();
    assert!(retry.0 <= Duration::from_millis(200) && retry.seconds() == 1);
    assert!(throttle.check("bob").is_ok());
    std::thread::sleep(Duration::from_millis(250));
    assert!(throttle.check("alice").is_ok(), "the window slid past");
    throttle.record_failure("alice");
    throttle.record_failure("alice");
    throttle.reset("alice");
    assert!(throttle.check("alice").is_ok());

    for n in 0..1000 {
        throttle.record_failure(&format!("ip-{n}"));
        assert!(throttle.tracked_keys() <= 10);
    }
    // The newest keys are the ones kept.
    throttle.record_failure("ip-999");
    assert!(throttle.check("ip-999").is_err());
}
