//! Named routes, mounting under prefixes, reverse() and boot-time route checks.

use kiln::prelude::*;
use kiln::project::BootError;
use kiln::test::TestClient;
use kiln::urls::UrlError;

async fn ok() -> &'static str {
    "ok"
}

fn polls() -> App {
    App::new("polls")
        .route("/", "index", get(ok))
        .route("/{id:int}/", "detail", get(ok))
        .route("/{id:int}/results/", "results", get(ok))
        .route("/by-slug/{slug:slug}/", "by_slug", get(ok))
        .route("/files/{*path}", "files", get(ok))
        .route("/u/{key:uuid}/", "by_uuid", get(ok))
}

fn project() -> Project {
    Project::new("mysite")
        .mount("/polls", polls())
        .mount("/blog", App::new("blog").route("/", "index", get(ok)))
        .route("/", "home", get(ok))
}

#[test]
fn reverse_builds_namespaced_urls_under_their_prefix() {
    let urls = project().url_registry().unwrap();
    assert_eq!(urls.reverse("polls:index", ()).unwrap(), "/polls/");
    assert_eq!(
        urls.reverse("polls:detail", [("id", 3)]).unwrap(),
        "/polls/3/"
    );
    assert_eq!(
        urls.reverse("polls:results", [("id", "12")]).unwrap(),
        "/polls/12/results/"
    );
    assert_eq!(urls.reverse("blog:index", ()).unwrap(), "/blog/");
    assert_eq!(urls.reverse("home", ()).unwrap(), "/");
    assert_eq!(urls.reverse("kiln:healthz", ()).unwrap(), "/healthz");
    assert_eq!(
        urls.reverse("polls:files", [("path", "a/b c.txt")])
            .unwrap(),
        "/polls/files/a/b%20c.txt"
    );
    let key = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    assert_eq!(
        urls.reverse("polls:by_uuid", [("key", key)]).unwrap(),
        format!("/polls/u/{key}/")
    );
}

#[test]
fn unknown_name_is_an_error_with_a_suggestion() {
    let urls = project().url_registry().unwrap();
    let error = urls.reverse("polls:detial", [("id", 1)]).unwrap_err();
    assert!(matches!(error, UrlError::UnknownName { .. }));
    assert!(
        error.to_string().contains("did you mean `polls:detail`"),
        "{error}"
    );
    // Names are namespaced: the bare route name is not enough.
    assert!(urls.reverse("detail", [("id", 1)]).is_err());
}

#[test]
fn missing_unexpected_and_ill_typed_parameters_are_errors() {
    let urls = project().url_registry().unwrap();
    let missing = urls.reverse("polls:detail", ()).unwrap_err();
    assert!(
        matches!(missing, UrlError::MissingParam { ref param, .. } if param == "id"),
        "{missing}"
    );
    let unexpected = urls.reverse("polls:index", [("id", 1)]).unwrap_err();
    assert!(
        matches!(unexpected, UrlError::UnexpectedParam { .. }),
        "{unexpected}"
    );
    let ill_typed = urls.reverse("polls:detail", [("id", "three")]).unwrap_err();
    assert!(
        ill_typed.to_string().contains("not a valid int"),
        "{ill_typed}"
    );
    assert!(
        urls.reverse("polls:by_slug", [("slug", "no spaces")])
            .is_err()
    );
    assert!(
        urls.reverse("polls:by_uuid", [("key", "not-a-uuid")])
            .is_err()
    );
}

#[test]
fn duplicate_names_are_caught_at_boot() {
    let app = App::new("polls")
        .route("/a/", "index", get(ok))
        .route("/b/", "index", get(ok));
    let error = Project::new("t")
        .mount("/polls", app)
        .url_registry()
        .unwrap_err();
    assert!(
        matches!(error, BootError::Url(UrlError::DuplicateName { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("polls:index"));
    // The same route name in two apps is fine: names are namespaced.
    project().url_registry().unwrap();
}

#[test]
fn same_path_and_method_twice_is_caught_at_boot_not_a_panic() {
    let app = App::new("a")
        .route("/x/", "one", get(ok))
        .route("/x/", "two", get(ok));
    let error = Project::new("t")
        .mount("/", app)
        .build(Settings::from_toml("").unwrap())
        .unwrap_err();
    assert!(
        error.to_string().contains("GET /x/ is routed twice"),
        "{error}"
    );

    let shadow =
        App::new("a")
            .route("/p/{id}/", "one", get(ok))
            .route("/p/{slug}/", "two", post(ok));
    assert!(Project::new("t").mount("/", shadow).url_registry().is_err());

    // Different methods on one path merge into one route.
    let split = App::new("a")
        .route("/x/", "show", get(ok))
        .route("/x/", "save", post(ok));
    let built = Project::new("t")
        .mount("/", split)
        .build(Settings::from_toml("").unwrap());
    assert!(built.is_ok());
}

#[test]
fn bad_patterns_labels_and_prefixes_name_the_app_and_route() {
    let error = Project::new("t")
        .mount("/", App::new("shop").route("/{id:float}/", "item", get(ok)))
        .url_registry()
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("app `shop`") && message.contains("item") && message.contains("float"),
        "{message}"
    );

    let error = Project::new("t")
        .mount("/", App::new("Bad-Label"))
        .url_registry()
        .unwrap_err();
    assert!(error.to_string().contains("lowercase identifier"));

    let error = Project::new("t")
        .mount("shop", App::new("shop"))
        .url_registry()
        .unwrap_err();
    assert!(error.to_string().contains("must start with `/`"));

    let error = Project::new("t")
        .mount("/a", App::new("shop"))
        .mount("/b", App::new("shop"))
        .url_registry()
        .unwrap_err();
    assert!(matches!(error, BootError::DuplicateApp { .. }));
}

#[test]
fn only_app_keeps_one_app_and_the_health_checks() {
    let urls = project().only_app("polls").unwrap().url_registry().unwrap();
    assert!(urls.reverse("polls:detail", [("id", 1)]).is_ok());
    assert!(urls.reverse("kiln:readyz", ()).is_ok());
    assert!(urls.reverse("blog:index", ()).is_err());
    let error = project().only_app("nope").unwrap_err();
    assert!(error.to_string().contains("polls, blog"), "{error}");
}

#[tokio::test]
async fn app_served_alone_keeps_its_urls() {
    let client = TestClient::with_settings(
        project().only_app("polls").unwrap(),
        Settings::from_toml("").unwrap(),
    );
    assert_eq!(client.get("/polls/3/").send().await.status(), 200);
    assert_eq!(client.get("/blog/").send().await.status(), 404);
    assert_eq!(client.get("/healthz").send().await.status(), 200);
}

#[tokio::test]
async fn served_paths_match_reversed_urls() {
    let client = TestClient::with_settings(project(), Settings::from_toml("").unwrap());
    for (name, params) in [
        ("polls:detail", vec![("id", "5")]),
        ("polls:by_slug", vec![("slug", "hello-world")]),
        ("polls:files", vec![("path", "deep/er/file.txt")]),
        ("blog:index", vec![]),
    ] {
        let url = client.reverse(name, params);
        assert_eq!(
            client.get(&url).send().await.status(),
            200,
            "{name} at {url}"
        );
    }
}

#[test]
fn routes_table_lists_name_methods_path_and_handler() {
    let project = Project::new("t").mount(
        "/polls",
        App::new("polls").route("/{id:int}/", "detail", get(ok).post(ok)),
    );
    let table = kiln::cli::routes_table(&project).unwrap();
    let line = table
        .lines()
        .find(|l| l.starts_with("polls:detail"))
        .unwrap();
    assert!(line.contains("GET,POST"), "{line}");
    assert!(line.contains("/polls/{id:int}/"), "{line}");
    assert!(line.contains("urls::ok"), "{line}");
    assert!(table.starts_with("NAME"));
}

#[tokio::test]
async fn reverse_inside_a_request_uses_the_serving_project() {
    // Two projects in one process: each request reverses against its own routes.
    async fn link() -> Result<String, kiln::Error> {
        Ok(reverse("app:target", ())?)
    }
    let make = |prefix: &str| {
        Project::new("t").mount(
            prefix,
            App::new("app")
                .route("/link/", "link", get(link))
                .route("/t/", "target", get(ok)),
        )
    };
    let one = TestClient::with_settings(make("/one"), Settings::from_toml("").unwrap());
    let two = TestClient::with_settings(make("/two"), Settings::from_toml("").unwrap());
    assert_eq!(one.get("/one/link/").send().await.text(), "/one/t/");
    assert_eq!(two.get("/two/link/").send().await.text(), "/two/t/");
}

#[test]
fn reverse_outside_any_project_says_how_to_fix_it() {
    // No test in this binary installs a process-wide registry, so outside a
    // request there is no project to reverse against.
    let error = reverse("app:target", ()).unwrap_err();
    assert!(
        matches!(error, kiln::urls::UrlError::NoProject { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("TestClient::reverse"), "{error}");
}

#[test]
fn the_builtin_app_label_is_reserved() {
    let project = Project::new("t").mount("/k", App::new("kiln").route("/", "x", get(ok)));
    let error = project.url_registry().unwrap_err().to_string();
    assert!(error.contains("reserved"), "{error}");
}
