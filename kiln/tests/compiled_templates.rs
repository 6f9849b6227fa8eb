//! Compiled templates (`#[kiln::template]`, the `compiled-templates`
//! feature) through `TestClient`: rendering and autoescaping, the content
//! type, `csrf_input()` with the CSRF check on, `url()` and `static()`, and
//! the error pages of a failing template.

use kiln::prelude::*;
use kiln::test::TestClient;

const KEY: &str = "test-only-secret-key-0123456789abcdef0123456789";

#[kiln::template(
    ext = "html",
    source = "<h1>Hello {{ name }}</h1><ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>"
)]
struct Greeting {
    name: String,
    items: Vec<&'static str>,
}

#[derive(Deserialize)]
struct Name {
    name: String,
}

async fn greeting(Query(query): Query<Name>) -> Greeting {
    Greeting {
        name: query.name,
        items: vec!["a & b", "<i>"],
    }
}

#[kiln::template(
    ext = "html",
    source = "<form method=\"post\">{{ csrf_input() }}<button>Vote</button></form><script>const token = \"{{ csrf_token() }}\";</script>"
)]
struct VoteForm;

async fn vote_form() -> VoteForm {
    VoteForm
}

async fn vote(body: String) -> String {
    format!("accepted {} bytes", body.len())
}

#[kiln::template(
    ext = "html",
    source = "{{ url(\"compiled:item\", [(\"id\", id)]) }} {{ url(\"compiled:index\", ()) }} {{ static(\"compiled/s.css\") }}"
)]
struct Links {
    id: u32,
}

async fn links(Path(id): Path<u32>) -> Links {
    Links { id }
}

#[kiln::template(
    ext = "html",
    source = "<p>first</p>\n<p>{{ url(\"compiled:nope\", ()) }}</p>"
)]
struct BrokenLink;

async fn broken() -> Result<BrokenLink, kiln::Error> {
    Ok(BrokenLink)
}

#[kiln::template(ext = "txt", source = "Dear {{ name }},")]
struct Letter {
    name: &'static str,
}

async fn letter() -> Letter {
    Letter {
        name: "<Ann & Bob>",
    }
}

fn project() -> Project {
    let app = App::new("compiled")
        .route("/", "index", get(greeting))
        .route("/item/{id:int}/", "item", get(links))
        .route("/vote", "vote", get(vote_form).post(vote))
        .route("/broken", "broken", get(broken))
        .route("/letter", "letter", get(letter));
    Project::new("compiled").mount("/c", app)
}

fn client(debug: bool) -> TestClient {
    let settings = Settings::from_toml(&format!(
        "debug = {debug}\nsecret_key = \"{KEY}\"\nallowed_hosts = [\"testserver\"]"
    ))
    .expect("test settings are valid");
    TestClient::with_settings(project(), settings).enforce_csrf_checks()
}

/// The value of the hidden CSRF field in `page`.
fn field_token(page: &str) -> String {
    let start = page
        .find("name=\"csrfmiddlewaretoken\" value=\"")
        .expect("the page has the CSRF field")
        + 34;
    let end = start + page[start..].find('"').expect("the field's value ends");
    page[start..end].to_owned()
}

#[tokio::test]
async fn a_compiled_template_renders_as_html_and_escapes_a_script_attack() {
    let page = client(true)
        .get("/c/?name=%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E")
        .send()
        .await;
    assert_eq!(page.status(), 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.text(),
        "<h1>Hello &#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;</h1><ul><li>a &#38; b</li><li>&#60;i&#62;</li></ul>"
    );
}

#[tokio::test]
async fn a_text_template_is_served_as_text_and_not_escaped() {
    let page = client(true).get("/c/letter").send().await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(page.text(), "Dear <Ann & Bob>,");
}

#[tokio::test]
async fn csrf_input_gives_a_token_that_a_post_then_accepts() {
    let client = client(true);
    let first = client.get("/c/vote").send().await;
    assert!(
        first
            .header("set-cookie")
            .is_some_and(|cookie| cookie.starts_with("kiln_csrftoken=")),
        "the first form sets the CSRF cookie"
    );
    let first = first.text();
    assert!(
        first.starts_with(
            "<form method=\"post\"><input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\""
        ),
        "{first}"
    );

    // The second page reads the cookie the first one set (the request's
    // `Cookie` header, through the task-local request context): no new
    // secret, and its token is accepted along with the first one's.
    let second = client.get("/c/vote").send().await;
    assert_eq!(second.header("set-cookie"), None);
    let second = second.text();
    let token = field_token(&second);
    assert_ne!(token, field_token(&first), "each render masks anew");
    let script_token = second
        .split("const token = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(script_token.len(), token.len());

    for token in [token, field_token(&first), script_token.to_owned()] {
        let accepted = client
            .post("/c/vote")
            .form(&[("csrfmiddlewaretoken", token.as_str())])
            .send()
            .await;
        assert_eq!(accepted.status(), 200, "{}", accepted.text());
        assert!(accepted.text().starts_with("accepted"));
    }

    let forged = client
        .post("/c/vote")
        .form(&[("csrfmiddlewaretoken", "not-a-token")])
        .send()
        .await;
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn url_and_static_functions_reverse_routes_and_name_static_files() {
    let page = client(true).get("/c/item/3/").send().await;
    assert_eq!(page.status(), 200, "{}", page.text());
    assert_eq!(page.text(), "/c/item/3/ /c/ /static/compiled/s.css");
}

#[tokio::test]
async fn a_failing_url_gives_the_debug_page_naming_the_template_and_route() {
    let page = client(true).get("/c/broken").send().await;
    assert_eq!(page.status(), 500);
    let text = page.text();
    assert!(text.contains("compiled:nope"), "{text}");
    assert!(text.contains("inline.html"), "{text}");
}

#[tokio::test]
async fn a_failing_template_in_production_is_a_plain_500() {
    let page = client(false).get("/c/broken").send().await;
    assert_eq!(page.status(), 500);
    let text = page.text();
    for secret in ["compiled:nope", "inline.html", "url()", "template"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn outside_a_request_csrf_input_is_empty_and_render_returns_the_text() {
    let html = kiln::templates::compiled::render(&VoteForm).unwrap();
    assert_eq!(
        html,
        "<form method=\"post\"><button>Vote</button></form><script>const token = \"\";</script>"
    );
    let error = kiln::templates::compiled::render(&BrokenLink).unwrap_err();
    assert!(error.to_string().contains("inline.html"), "{error}");
}
