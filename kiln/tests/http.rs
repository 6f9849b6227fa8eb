//! The HTTP core through `TestClient`: handlers, errors and error pages,
//! Kiln's middleware stack and tower layers.

use std::time::Duration;

use kiln::prelude::*;
use kiln::test::TestClient;

fn settings(debug: bool, extra: &str) -> Settings {
    let key = "test-only-secret-key-0123456789abcdef0123456789";
    Settings::from_toml(&format!("debug = {debug}\nsecret_key = \"{key}\"\n{extra}"))
        .expect("test settings are valid")
}

async fn fails() -> Result<String, kiln::Error> {
    let n: u32 = "not-a-number-SECRET-DETAIL".parse()?;
    Ok(n.to_string())
}

async fn missing() -> Result<String, kiln::Error> {
    Err(kiln::Error::not_found("no question 42"))
}

async fn panics() -> &'static str {
    panic!("handler exploded");
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn echo(body: String) -> String {
    body
}

async fn big() -> String {
    "kiln ".repeat(2000)
}

fn project() -> Project {
    let app = App::new("t")
        .route("/fails/", "fails", get(fails))
        .route("/missing/", "missing", get(missing))
        .route("/panics/", "panics", get(panics))
        .route("/slow/", "slow", get(slow))
        .route("/echo/", "echo", post(echo))
        .route("/big/", "big", get(big))
        .route(
            "/item/{id:int}/",
            "item",
            get(|Path(id): Path<u32>| async move { id.to_string() }),
        );
    Project::new("t").mount("/t", app)
}

#[tokio::test]
async fn handlers_return_results_and_extractors_work() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let response = client.get("/t/item/7/").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "7");
    let response = client.post("/t/echo/").body("ping").send().await;
    assert_eq!(response.text(), "ping");
}

#[tokio::test]
async fn debug_500_page_shows_error_chain_route_and_request_id() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let response = client.get("/t/fails/").send().await;
    assert_eq!(response.status(), 500);
    let id = response.header("x-request-id").unwrap().to_owned();
    let page = response.text();
    assert!(page.contains("invalid digit found in string"), "{page}");
    assert!(page.contains("t:fails"), "matched route missing: {page}");
    assert!(page.contains(&id), "request id missing");
}

#[tokio::test]
async fn production_500_page_hides_internals_but_shows_request_id() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let response = client.get("/t/fails/").send().await;
    assert_eq!(response.status(), 500);
    let id = response.header("x-request-id").unwrap().to_owned();
    let page = response.text();
    assert!(page.contains("Internal Server Error"));
    assert!(page.contains(&id));
    assert!(!page.contains("invalid digit"), "internals leaked: {page}");
    assert!(!page.contains("t:fails"), "route leaked: {page}");
}

#[tokio::test]
async fn client_errors_show_their_public_message_in_production() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let response = client.get("/t/missing/").send().await;
    assert_eq!(response.status(), 404);
    assert!(response.text().contains("no question 42"));
}

#[tokio::test]
async fn debug_404_page_lists_existing_routes_production_does_not() {
    let debug = TestClient::with_settings(project(), settings(true, ""));
    let page = debug.get("/nowhere").send().await.text();
    assert!(
        page.contains("/t/item/{id:int}/") && page.contains("t:item"),
        "{page}"
    );
    assert!(page.contains("kiln:healthz"));

    let production = TestClient::with_settings(project(), settings(false, ""));
    let response = production.get("/nowhere").send().await;
    assert_eq!(response.status(), 404);
    assert!(!response.text().contains("t:item"));
}

#[tokio::test]
async fn api_clients_get_json_errors() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let response = client
        .get("/t/missing/")
        .header("accept", "application/json")
        .send()
        .await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json();
    assert_eq!(body["status"], 404);
    assert_eq!(body["error"], "no question 42");
    assert_eq!(body["request_id"], response.header("x-request-id").unwrap());
}

#[tokio::test]
async fn panicking_handler_answers_500_and_the_site_keeps_serving() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let response = client.get("/t/panics/").send().await;
    assert_eq!(response.status(), 500);
    assert!(!response.text().contains("exploded"));
    let debug = TestClient::with_settings(project(), settings(true, ""));
    assert!(
        debug
            .get("/t/panics/")
            .send()
            .await
            .text()
            .contains("handler exploded")
    );
    assert_eq!(client.get("/t/item/1/").send().await.status(), 200);
}

#[tokio::test]
async fn typed_parameter_mismatch_is_404_not_400() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    assert_eq!(client.get("/t/item/seven/").send().await.status(), 404);
    assert_eq!(client.get("/t/item/-1/").send().await.status(), 404);
}

#[tokio::test]
async fn missing_trailing_slash_redirects_like_append_slash() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let response = client.get("/t/item/3?x=1").send().await;
    assert_eq!(response.status(), 301);
    assert_eq!(response.header("location"), Some("/t/item/3/?x=1"));
    let followed = client.get("/t/item/3").follow_redirects().send().await;
    assert_eq!(followed.text(), "3");
    // Not for writes: a redirect would lose the body.
    assert_eq!(client.post("/t/echo").body("x").send().await.status(), 404);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_header() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let response = client.delete("/t/echo/").send().await;
    assert_eq!(response.status(), 405);
    assert!(response.header("allow").unwrap().contains("POST"));
    assert!(response.text().contains("This route answers"));
}

#[tokio::test]
async fn default_body_limit_is_two_mebibytes() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let limit = 2 * 1024 * 1024;
    let over = client
        .post("/t/echo/")
        .body(vec![b'x'; limit + 1])
        .send()
        .await;
    assert_eq!(over.status(), 413);
    let at = client.post("/t/echo/").body(vec![b'x'; limit]).send().await;
    assert_eq!(at.status(), 200);
    let raised =
        TestClient::with_settings(project(), settings(false, "request_body_limit = \"3 MiB\""));
    let under_raised = raised
        .post("/t/echo/")
        .body(vec![b'x'; limit + 1])
        .send()
        .await;
    assert_eq!(under_raised.status(), 200);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let client =
        TestClient::with_settings(project(), settings(true, "request_body_limit = \"1 KiB\""));
    let response = client.post("/t/echo/").body(vec![b'x'; 2048]).send().await;
    assert_eq!(response.status(), 413);
    let response = client.post("/t/echo/").body(vec![b'x'; 1000]).send().await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn slow_request_times_out_with_408() {
    let client =
        TestClient::with_settings(project(), settings(true, "request_timeout = \"100ms\""));
    let response = client.get("/t/slow/").send().await;
    assert_eq!(response.status(), 408);
}

#[tokio::test]
async fn every_response_has_a_request_id_and_sane_incoming_ids_are_kept() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let a = client.get("/t/item/1/").send().await;
    let b = client.get("/t/item/1/").send().await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    let c = client
        .get("/t/item/1/")
        .header("x-request-id", "from-proxy-1")
        .send()
        .await;
    assert_eq!(c.header("x-request-id"), Some("from-proxy-1"));
    let d = client
        .get("/t/item/1/")
        .header("x-request-id", "bad id<script>")
        .send()
        .await;
    assert_ne!(d.header("x-request-id"), Some("bad id<script>"));
}

#[tokio::test]
async fn responses_are_compressed_when_accepted_and_setting_allows() {
    let client = TestClient::with_settings(project(), settings(true, ""));
    let response = client
        .get("/t/big/")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert!(response.bytes().len() < 1000);
    let plain = client.get("/t/big/").send().await;
    assert_eq!(plain.header("content-encoding"), None);

    let off = TestClient::with_settings(project(), settings(true, "compression = false"));
    let response = off
        .get("/t/big/")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(response.header("content-encoding"), None);
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let client = TestClient::with_settings(project(), settings(false, ""));
    let health = client.get("/healthz").send().await;
    assert_eq!(
        (health.status().as_u16(), health.text().as_str()),
        (200, "ok\n")
    );
    assert_eq!(client.get("/readyz").send().await.status(), 200);
}

#[tokio::test]
async fn any_tower_layer_works_on_project_and_app() {
    use kiln::deps::tower_http::set_header::SetResponseHeaderLayer;
    let header = |name: &'static str| {
        SetResponseHeaderLayer::overriding(
            axum_name(name),
            kiln::deps::axum::http::HeaderValue::from_static("yes"),
        )
    };
    let api = App::new("api")
        .route("/", "index", get(|| async { "api" }))
        .layer(header("x-app-layer"));
    let project = Project::new("t")
        .route("/", "home", get(|| async { "home" }))
        .mount("/api", api)
        .layer(header("x-project-layer"));
    let client = TestClient::with_settings(project, settings(true, ""));
    let home = client.get("/").send().await;
    assert_eq!(home.header("x-project-layer"), Some("yes"));
    assert_eq!(home.header("x-app-layer"), None);
    let api = client.get("/api/").send().await;
    assert_eq!(api.header("x-project-layer"), Some("yes"));
    assert_eq!(api.header("x-app-layer"), Some("yes"));
}

fn axum_name(name: &'static str) -> kiln::deps::axum::http::HeaderName {
    kiln::deps::axum::http::HeaderName::from_static(name)
}

#[tokio::test]
async fn handlers_can_read_the_site_and_reverse_urls() {
    async fn where_am_i(site: Site) -> Result<String, kiln::Error> {
        Ok(format!(
            "{} {}",
            site.name(),
            reverse("t:item", [("id", 5)])?
        ))
    }
    let app = App::new("t")
        .route("/here/", "here", get(where_am_i))
        .route("/item/{id:int}/", "item", get(|| async { "" }));
    let client =
        TestClient::with_settings(Project::new("site").mount("/t", app), settings(true, ""));
    assert_eq!(
        client.get("/t/here/").send().await.text(),
        "site /t/item/5/"
    );
}

#[tokio::test]
async fn client_keeps_cookies_and_follows_redirects() {
    async fn set() -> impl IntoResponse {
        (
            [("set-cookie", "flavour=oat; Path=/")],
            Redirect::to("/read/"),
        )
    }
    async fn read(headers: HeaderMap) -> String {
        headers
            .get("cookie")
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    }
    async fn clear() -> impl IntoResponse {
        [("set-cookie", "flavour=; Max-Age=0; Path=/")]
    }
    let project = Project::new("t")
        .route("/set/", "set", post(set))
        .route("/read/", "read", get(read))
        .route("/clear/", "clear", get(clear));
    let client = TestClient::with_settings(project, settings(true, ""));
    let response = client
        .post("/set/")
        .form(&[("a", "b")])
        .follow_redirects()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "flavour=oat");
    assert_eq!(client.cookie("flavour").as_deref(), Some("oat"));
    client.get("/clear/").send().await;
    assert_eq!(client.cookie("flavour"), None);
    assert_eq!(client.get("/read/").send().await.text(), "");
}

#[tokio::test]
async fn json_bodies_round_trip_and_bad_json_is_a_4xx() {
    async fn double(Json(v): Json<serde_json::Value>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "twice": v["n"].as_i64().unwrap_or(0) * 2 }))
    }
    let client = TestClient::with_settings(
        Project::new("t").route("/d", "d", post(double)),
        settings(true, ""),
    );
    let response = client
        .post("/d")
        .json(&serde_json::json!({"n": 21}))
        .send()
        .await;
    assert_eq!(response.json::<serde_json::Value>()["twice"], 42);
    let bad = client
        .post("/d")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await;
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let put = client.put("/d").send().await;
    assert_eq!(put.status(), 405);
    let patch = client.patch("/d").send().await;
    assert_eq!(patch.status(), 405);
}

async fn needs_auth() -> impl IntoResponse {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"kiln\"")],
    )
}

async fn throttled() -> impl IntoResponse {
    (
        [(header::RETRY_AFTER, "30")],
        kiln::Error::new(StatusCode::TOO_MANY_REQUESTS, "slow down"),
    )
}

#[derive(serde::Deserialize)]
struct Vote {
    #[expect(dead_code, reason = "only its presence in the body matters")]
    choice: u32,
}

async fn vote(Json(_vote): Json<Vote>) -> &'static str {
    "counted"
}

fn header_project() -> Project {
    Project::new("t").mount(
        "/",
        App::new("h")
            .route("/auth/", "auth", get(needs_auth))
            .route("/throttled/", "throttled", get(throttled))
            .route("/vote/", "vote", post(vote)),
    )
}

#[tokio::test]
async fn error_pages_keep_the_headers_the_handler_set() {
    for debug in [true, false] {
        let client = TestClient::with_settings(header_project(), settings(debug, ""));
        let auth = client.get("/auth/").send().await;
        assert_eq!(auth.status(), 401);
        assert_eq!(
            auth.header("www-authenticate"),
            Some("Basic realm=\"kiln\"")
        );
        assert!(
            auth.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let throttled = client.get("/throttled/").send().await;
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.header("retry-after"), Some("30"));
        assert!(throttled.text().contains("slow down"));
    }
}

#[tokio::test]
async fn extractor_rejections_are_rendered_like_other_errors() {
    let client = TestClient::with_settings(header_project(), settings(false, ""));
    let response = client
        .post("/vote/")
        .header("accept", "application/json")
        .json(&serde_json::json!({"pick": 1}))
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `choice`"),
        "{body}"
    );
    assert_eq!(body["request_id"], response.header("x-request-id").unwrap());
    let page = client.post("/vote/").body("choice=1").send().await;
    assert_eq!(page.status(), 415);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("Content-Type"), "{}", page.text());
}
