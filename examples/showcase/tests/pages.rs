//! The showcase's pages and API through the in-process test client.

use kiln::test::TestClient;
use serde_json::Value;

fn client() -> TestClient {
    TestClient::new(showcase::project())
}

/// Every `href="..."` on a page.
fn links(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn home_page_links_all_resolve() {
    let client = client();
    let home = client.get("/").send().await;
    assert_eq!(home.status(), 200);
    let links = links(&home.text());
    assert!(links.len() >= 6, "{links:?}");
    for link in links {
        let status = client.get(&link).send().await.status().as_u16();
        let expected = match link.as_str() {
            "/boom/" | "/crash/" => 500,
            "/nowhere" | "/api/square/seven" => 404,
            _ => 200,
        };
        assert_eq!(status, expected, "{link}");
    }
}

#[tokio::test]
async fn api_answers_json() {
    let client = client();
    let square: Value = client.get("/api/square/12").send().await.json();
    assert_eq!(square["square"], 144);
    assert_eq!(square["url"], "/api/square/12");
    let status = client.get("/api/status").send().await;
    let body: Value = status.json();
    assert_eq!(body["project"], "showcase");
    assert_eq!(body["request_id"], status.header("x-request-id").unwrap());
    let echo: Value = client
        .post("/api/echo")
        .json(&serde_json::json!({"message": "hi"}))
        .send()
        .await
        .json();
    assert_eq!(echo["message"], "hi");
}

#[tokio::test]
async fn api_refuses_bad_input_with_4xx() {
    let client = client();
    let overflow = client.get("/api/square/4294967296").send().await;
    assert_eq!(overflow.status(), 400);
    assert!(overflow.text().contains("does not fit"));
    let missing_field = client
        .post("/api/echo")
        .json(&serde_json::json!({"msg": "hi"}))
        .send()
        .await;
    assert_eq!(missing_field.status(), 422);
    let too_long = client.get("/api/sleep/60000").send().await;
    assert_eq!(too_long.status(), 400);
}

#[tokio::test]
async fn pages_link_the_icon_so_browsers_do_not_ask_for_favicon_ico() {
    // Found in a browser (tests/browser.rs): without a `<link rel="icon">`,
    // Chromium asks for /favicon.ico, whose 404 is a console error.
    let client = client();
    for path in ["/", "/polls/", "/accounts/login/", "/accounts/signup/"] {
        let page = client.get(path).send().await;
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text();
        let icon = html
            .split("<link rel=\"icon\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{path} links no icon: {html}"));
        let served = client.get(icon).send().await;
        assert_eq!(served.status(), 200, "{icon}");
        assert!(served.text().starts_with("<svg"), "{icon}");
    }
    // The log-in page is in the showcase's layout, navigation included.
    let login = client.get("/accounts/login/").send().await.text();
    assert!(login.contains("<nav><a href=\"/\">Home</a>"), "{login}");
    assert!(login.contains("name=\"username\""), "{login}");
}
