//! Templates through `TestClient`: loader order, autoescaping, inheritance,
//! context processors, `url()`, reload from disk, embedded templates, error
//! pages and `check`. Fixtures are under `tests/templates/`.

use std::path::Path as FsPath;

use kiln::prelude::*;
use kiln::templates::{TemplateDir, TemplateError, context};
use kiln::test::TestClient;

fn settings(debug: bool, extra: &str) -> Settings {
    let key = "test-only-secret-key-0123456789abcdef0123456789";
    Settings::from_toml(&format!("debug = {debug}\nsecret_key = \"{key}\"\n{extra}"))
        .expect("test settings are valid")
}

/// Renders the template named by the rest of the path, with a hostile `name`.
async fn show(parts: Parts, Path(name): Path<String>) -> Result<Response, kiln::Error> {
    kiln::templates::render(
        &parts,
        &name,
        context! { name => "<script>alert('x')</script>", title => "Shop & more" },
    )
}

/// Renders with a key that the app's context processor also adds.
async fn priced(parts: Parts) -> Result<Response, kiln::Error> {
    kiln::templates::render(&parts, "shop/currency.html", context! { currency => "USD" })
}

/// A templates folder outside the crate, as the macros would record it.
fn dir_at(path: &FsPath, embedded: Option<&'static [(&'static str, &'static str)]>) -> TemplateDir {
    let absolute: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    TemplateDir::new(absolute, "templates", embedded)
}

fn shop(templates: TemplateDir) -> App {
    App::new("shop")
        .templates(templates)
        .context_processor(|_request, context| context.insert("currency", "EUR"))
        .route("/", "index", get(|| async { "index" }))
        .route("/item/{id:int}/", "item", get(|| async { "item" }))
        .route("/t/{*name}", "show", get(show))
        .route("/priced/", "priced", get(priced))
}

fn project() -> Project {
    Project::new("t")
        .templates(kiln::templates_dir!("tests/templates/project"))
        .mount("/shop", shop(kiln::templates_dir!("tests/templates/app")))
}

fn client(debug: bool) -> TestClient {
    TestClient::with_settings(project(), settings(debug, ""))
}

#[tokio::test]
async fn the_project_folder_overrides_the_apps() {
    let client = client(true);
    let page = client.get("/shop/t/shop/override.html").send().await;
    assert_eq!(page.text(), "project version");
    let page = client.get("/shop/t/shop/only.html").send().await;
    assert_eq!(page.text(), "app only");
}

#[tokio::test]
async fn render_answers_200_html_with_inheritance_include_macros_and_processors() {
    let client = client(true);
    let page = client.get("/shop/t/shop/page.html?q=tea").send().await;
    assert_eq!(page.status(), 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let text = page.text();
    assert!(
        text.starts_with("<!doctype html><title>Shop &amp; more</title>"),
        "{text}"
    );
    assert!(
        text.contains("<ul><li>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</li></ul>"),
        "{text}"
    );
    assert!(
        text.contains(
            "<p>path=/shop/t/shop/page.html q=tea auth=False messages=0 currency=EUR</p>"
        ),
        "{text}"
    );
    assert!(!text.contains("<script>"), "{text}");
}

#[tokio::test]
async fn the_views_context_wins_over_the_context_processors() {
    let page = client(true).get("/shop/priced/").send().await;
    assert_eq!(page.status(), 200, "{}", page.text());
    // `currency` from the view, not the processor's EUR; `request` from
    // Kiln's processor; an unknown name prints nothing.
    assert_eq!(page.text(), "USD /shop/priced/ []");
}

#[tokio::test]
async fn autoescaping_is_off_for_text_templates() {
    let page = client(true).get("/shop/t/shop/mail.txt").send().await;
    assert_eq!(
        page.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(page.text(), "Hello <script>alert('x')</script>");
}

#[tokio::test]
async fn url_static_and_csrf_input_functions() {
    let page = client(true).get("/shop/t/shop/links.html").send().await;
    let text = page.text();
    let (links, input) = text.split_once(" [").unwrap();
    assert_eq!(links, "/shop/item/3/ /shop/ /static/shop/s.css");
    assert!(
        input.starts_with("<input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"")
            && input.ends_with("\">]"),
        "{input}"
    );
    assert!(
        page.header("set-cookie")
            .unwrap()
            .starts_with("kiln_csrftoken=")
    );
}

#[tokio::test]
async fn an_unknown_route_name_is_a_template_error_naming_it_with_the_line() {
    let client = client(true);
    let page = client.get("/shop/t/shop/badurl.html").send().await;
    assert_eq!(page.status(), 500);
    let text = page.text();
    assert!(text.contains("shop:nope"), "{text}");
    assert!(
        text.contains("Template <code>shop/badurl.html</code>, line 2"),
        "{text}"
    );
    assert!(
        text.contains("tests/templates/app/shop/badurl.html"),
        "{text}"
    );
    // The snippet: the lines around the error, the failing one marked.
    assert!(
        text.contains("   1 | &lt;p&gt;first line&lt;/p&gt;"),
        "{text}"
    );
    assert!(
        text.contains(
            "<mark>&gt;    2 | &lt;p&gt;{{ url(&quot;shop:nope&quot;) }}&lt;/p&gt;</mark>"
        ),
        "{text}"
    );
    assert!(
        text.contains("   3 | &lt;p&gt;third line&lt;/p&gt;"),
        "{text}"
    );
}

#[tokio::test]
async fn an_error_in_an_included_template_points_at_that_template() {
    let client = client(true);
    let text = client.get("/shop/t/shop/outer.html").send().await.text();
    assert!(
        text.contains("Template <code>shop/nested.html</code>, line 2"),
        "{text}"
    );
    assert!(text.contains("<mark>&gt;    2 | "), "{text}");
}

#[tokio::test]
async fn production_error_pages_show_nothing_of_the_template() {
    let client = client(false);
    for path in [
        "/shop/t/shop/badurl.html",
        "/shop/t/shop/missing.html",
        "/shop/t/shop/orphan.html",
    ] {
        let page = client.get(path).send().await;
        assert_eq!(page.status(), 500, "{path}");
        let text = page.text();
        for secret in [
            "shop:nope",
            "badurl",
            "tests/templates",
            "missing.html",
            "gone.html",
            "searched",
        ] {
            assert!(!text.contains(secret), "{path}: {secret} in {text}");
        }
    }
}

#[tokio::test]
async fn a_missing_template_lists_the_folders_searched() {
    let client = client(true);
    let text = client.get("/shop/t/shop/missing.html").send().await.text();
    assert!(
        text.contains("Template <code>shop/missing.html</code> not found"),
        "{text}"
    );
    let project_dir = text.find("tests/templates/project (the project)").unwrap();
    let app_dir = text.find("tests/templates/app (app `shop`)").unwrap();
    assert!(project_dir < app_dir, "project folder first: {text}");

    // A missing parent names the template that asked for it.
    let error = client
        .site()
        .templates()
        .render_to_string("shop/orphan.html", context! {})
        .unwrap_err();
    assert!(
        matches!(&error, TemplateError::NotFound { name, referenced_from: Some((from, 1)), .. }
            if name == "shop/gone.html" && from == "shop/orphan.html"),
        "{error:?}"
    );
}

#[tokio::test]
async fn render_errors_are_errors_never_panics() {
    let client = client(true);
    let templates = client.site().templates();
    for name in [
        "shop/loop.html",
        "shop/divide.html",
        "../secret.html",
        "/etc/passwd",
        "",
    ] {
        assert!(
            templates.render_to_string(name, context! {}).is_err(),
            "{name}"
        );
    }
    // Hostile names in the URL reach the loader as names, never as paths.
    let page = client.get("/shop/t/..%2f..%2fCargo.toml").send().await;
    assert!(page.status().is_client_error() || page.status() == 500);
    assert!(!page.text().contains("[package]"));
}

#[tokio::test]
async fn debug_mode_reloads_an_edited_template_without_a_rebuild() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("shop")).unwrap();
    let file = folder.path().join("shop/live.html");
    std::fs::write(&file, "first").unwrap();
    let client = TestClient::with_settings(
        Project::new("t").mount("/shop", shop(dir_at(folder.path(), None))),
        settings(true, ""),
    );
    assert_eq!(
        client.get("/shop/t/shop/live.html").send().await.text(),
        "first"
    );
    std::fs::write(&file, "second, longer").unwrap();
    assert_eq!(
        client.get("/shop/t/shop/live.html").send().await.text(),
        "second, longer"
    );

    // A project-level override created while serving wins at once.
    let project_folder = tempfile::tempdir().unwrap();
    let client = TestClient::with_settings(
        Project::new("t")
            .templates(dir_at(project_folder.path(), None))
            .mount("/shop", shop(dir_at(folder.path(), None))),
        settings(true, ""),
    );
    assert_eq!(
        client.get("/shop/t/shop/live.html").send().await.text(),
        "second, longer"
    );
    std::fs::create_dir(project_folder.path().join("shop")).unwrap();
    std::fs::write(project_folder.path().join("shop/live.html"), "override").unwrap();
    assert_eq!(
        client.get("/shop/t/shop/live.html").send().await.text(),
        "override"
    );
}

#[tokio::test]
async fn embedded_templates_serve_without_the_folder() {
    let embedded = kiln::__embed_dir!("tests/templates/embedded");
    assert_eq!(embedded.len(), 1);
    let gone = TemplateDir::new("/nonexistent/kiln/templates", "nonexistent", Some(embedded));
    let client = TestClient::with_settings(
        Project::new("t").mount("/shop", shop(gone)),
        settings(false, ""),
    );
    let page = client.get("/shop/t/shop/hello.html").send().await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.text(),
        "Embedded &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    );

    // `templates_dir!` embeds in release builds only; `embed_templates!` always.
    assert!(kiln::embed_templates!("tests/templates/embedded").is_embedded());
    assert_eq!(
        kiln::templates_dir!("tests/templates/embedded").is_embedded(),
        !cfg!(debug_assertions)
    );
}

#[tokio::test]
async fn templates_from_disk_reads_the_folder_even_when_embedded() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("shop")).unwrap();
    std::fs::write(folder.path().join("shop/hello.html"), "from disk").unwrap();
    let embedded = kiln::__embed_dir!("tests/templates/embedded");
    for (extra, expected) in [
        ("", "Embedded"),
        ("templates_from_disk = true", "from disk"),
    ] {
        let client = TestClient::with_settings(
            Project::new("t").mount("/shop", shop(dir_at(folder.path(), Some(embedded)))),
            settings(false, extra),
        );
        let text = client.get("/shop/t/shop/hello.html").send().await.text();
        assert!(text.starts_with(expected), "{extra}: {text}");
    }
}

#[test]
fn check_reports_syntax_errors_with_file_and_line_and_missing_folders() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("shop")).unwrap();
    std::fs::write(folder.path().join("shop/fine.html"), "{{ x }}").unwrap();
    std::fs::write(
        folder.path().join("shop/broken.html"),
        "<p>ok</p>\n{% if x %}\n<p>{{ x }</p>\n",
    )
    .unwrap();
    let project = Project::new("t")
        .templates(dir_at(&folder.path().join("nowhere"), None))
        .mount("/shop", shop(dir_at(folder.path(), None)));
    let messages = kiln::checks::run(&project, &settings(true, ""));
    let syntax: Vec<_> = messages.iter().filter(|m| m.id == "kiln.E005").collect();
    assert_eq!(syntax.len(), 1, "{messages:?}");
    let file = folder.path().join("shop/broken.html");
    assert!(
        syntax[0]
            .message
            .starts_with(&format!("{}:3:", file.display())),
        "{}",
        syntax[0].message
    );
    let missing: Vec<_> = messages.iter().filter(|m| m.id == "kiln.E006").collect();
    assert_eq!(missing.len(), 1, "{messages:?}");
    assert!(
        missing[0].message.contains("nowhere"),
        "{}",
        missing[0].message
    );

    // The fixtures of this file compile.
    let clean = kiln::checks::run(&project_for_check(), &settings(true, ""));
    assert!(
        clean
            .iter()
            .all(|m| m.id != "kiln.E005" && m.id != "kiln.E006"),
        "{clean:?}"
    );
}

fn project_for_check() -> Project {
    project()
}
