//! Static files and file responses through `TestClient`: finders and
//! overrides in debug, `collectstatic` and hashed names in production,
//! conditional GET, ranges, precompressed variants, hostile names, and
//! `FileResponse` / `stream` in handlers.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

use std::fs;

use std::io::Read;
use std::path::{Path, PathBuf};

use kiln::http::FileResponse;
use kiln::prelude::*;
use kiln::test::TestClient;
use sha2::Digest as _;

fn settings(debug: bool) -> Settings {
    let key = "test-only-secret-key-0123456789abcdef0123456789";
    Settings::from_toml(&format!("debug = {debug}\nsecret_key = \"{key}\"\n")).unwrap()
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A project folder with a `polls` app whose stylesheet the project's own
/// `static/` overrides, and a file outside every static folder.
fn project_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("src/polls/static/polls/style.css"),
        "body { color: red }",
    );
    write(&root.join("static/polls/style.css"), "body { color: blue }");
    let script = format!("console.log({:?});\n", "kiln ".repeat(200));
    write(&root.join("src/polls/static/polls/app.js"), script);
    write(&root.join("src/polls/static/polls/.hidden"), "hidden");
    write(&root.join("secret.txt"), "TOP-SECRET");
    dir
}

fn project(root: &Path) -> Project {
    Project::new("static-test").root(root).mount(
        "/polls",
        App::new("polls").route("/", "index", get(|| async { "polls" })),
    )
}

#[tokio::test]
async fn debug_serves_app_files_and_the_project_folder_overrides_them() {
    let dir = project_folder();
    let client = TestClient::with_settings(project(dir.path()), settings(true));

    let css = client.get("/static/polls/style.css").send().await;
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.text(),
        "body { color: blue }",
        "the project's file wins"
    );
    assert_eq!(css.header("content-type"), Some("text/css"));
    assert_eq!(css.header("cache-control"), Some("no-cache"));
    assert!(css.header("etag").is_some() && css.header("last-modified").is_some());

    let js = client.get("/static/polls/app.js").send().await;
    assert_eq!(js.status(), 200);
    assert!(js.text().starts_with("console.log"));

    // An edit shows on the next request.
    write(
        &dir.path().join("static/polls/style.css"),
        "body { color: green }",
    );
    assert_eq!(
        client.get("/static/polls/style.css").send().await.text(),
        "body { color: green }"
    );

    assert_eq!(
        client
            .get("/static/polls/missing.css")
            .send()
            .await
            .status(),
        404
    );
    assert_eq!(
        client.get("/static/polls/.hidden").send().await.status(),
        404,
        "hidden files are never served"
    );
    assert_eq!(
        kiln::staticfiles::url("polls/style.css"),
        "/static/polls/style.css"
    );
}

#[tokio::test]
async fn names_that_climb_out_of_the_static_folders_are_refused() {
    let dir = project_folder();
    let client = TestClient::with_settings(project(dir.path()), settings(true));
    for hostile in [
        "/static/../secret.txt",
        "/static/polls/../../../secret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/polls/%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/static/polls/..%5c..%5c..%5csecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static/polls/style.css%00.js",
        "/static//etc/passwd",
    ] {
        let response = client.get(hostile).send().await;
        assert!(
            response.status().is_client_error(),
            "{hostile}: {}",
            response.status()
        );
        assert!(!response.text().contains("TOP-SECRET"), "{hostile}");
    }
    let post = client.post("/static/polls/style.css").send().await;
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn conditional_get_answers_304_until_the_file_changes() {
    let dir = project_folder();
    let client = TestClient::with_settings(project(dir.path()), settings(true));
    let first = client.get("/static/polls/app.js").send().await;
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();

    let again = client
        .get("/static/polls/app.js")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(again.status(), 304);
    assert!(again.bytes().is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let by_date = client
        .get("/static/polls/app.js")
        .header("if-modified-since", &modified)
        .send()
        .await;
    assert_eq!(by_date.status(), 304);
    // The entity tag decides when both are sent (RFC 9110 §13.2.2).
    let stale_tag = client
        .get("/static/polls/app.js")
        .header("if-none-match", "\"other\"")
        .header("if-modified-since", &modified)
        .send()
        .await;
    assert_eq!(stale_tag.status(), 200);

    write(
        &dir.path().join("src/polls/static/polls/app.js"),
        "changed();",
    );
    let changed = client
        .get("/static/polls/app.js")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.text(), "changed();");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn ranges_are_served_and_bad_ones_get_416() {
    let dir = project_folder();
    let client = TestClient::with_settings(project(dir.path()), settings(true));
    let whole = client
        .get("/static/polls/app.js")
        .send()
        .await
        .bytes()
        .to_vec();
    let len = whole.len();
    assert_eq!(
        client
            .get("/static/polls/app.js")
            .send()
            .await
            .header("accept-ranges"),
        Some("bytes")
    );

    let part = client
        .get("/static/polls/app.js")
        .header("range", "bytes=2-9")
        .send()
        .await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes(), &whole[2..=9]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 2-9/{len}").as_str())
    );
    let tail = client
        .get("/static/polls/app.js")
        .header("range", "bytes=-5")
        .send()
        .await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes(), &whole[len - 5..]);

    for bad in [
        format!("bytes={len}-"),
        "bytes=abc".to_owned(),
        "bytes=9-2".to_owned(),
    ] {
        let refused = client
            .get("/static/polls/app.js")
            .header("range", &bad)
            .send()
            .await;
        assert_eq!(refused.status(), 416, "{bad}");
        assert_eq!(
            refused.header("content-range"),
            Some(format!("bytes */{len}").as_str()),
            "{bad}"
        );
    }

    // If-Range with an old tag: the whole (new) file, not a piece of it.
    let etag = client
        .get("/static/polls/app.js")
        .send()
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let current = client
        .get("/static/polls/app.js")
        .header("range", "bytes=0-3")
        .header("if-range", &etag)
        .send()
        .await;
    assert_eq!(current.status(), 206);
    let stale = client
        .get("/static/polls/app.js")
        .header("range", "bytes=0-3")
        .header("if-range", "\"an-older-version\"")
        .send()
        .await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().len(), len);
}

fn decompress(encoding: &str, body: &[u8]) -> String {
    let mut text = String::new();
    match encoding {
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_string(&mut text)
            .unwrap(),
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .unwrap(),
        other => panic!("unexpected encoding {other}"),
    };
    text
}

#[tokio::test]
async fn production_serves_collected_files_under_hashed_names() {
    let dir = project_folder();
    let root = dir.path();
    let files = project(root).static_files(&settings(false));
    let collected = files.collect().unwrap();
    // The app's two files and Kiln's own kiln/kiln.js.
    assert_eq!(collected.copied, 3);
    assert_eq!(collected.shadowed.len(), 1, "{collected:?}");
    assert!(
        !root.join("staticfiles/polls/.hidden").exists(),
        "hidden files are not collected"
    );
    let again = files.collect().unwrap();
    assert_eq!((again.copied, again.unmodified), (0, 3));

    let client = TestClient::with_settings(project(root), settings(false));
    let css_url = client.site().static_files().url("polls/style.css");
    assert!(
        css_url.starts_with("/static/polls/style.")
            && css_url.ends_with(".css")
            && css_url.len() == "/static/polls/style.css".len() + 13,
        "{css_url}"
    );
    let hashed = client.get(&css_url).send().await;
    assert_eq!(hashed.status(), 200);
    assert_eq!(hashed.text(), "body { color: blue }");
    assert_eq!(
        hashed.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let plain = client.get("/static/polls/style.css").send().await;
    assert_eq!(plain.text(), "body { color: blue }");
    assert_eq!(plain.header("cache-control"), Some("no-cache"));

    // Production reads static_root only: an edit in the app shows after
    // collectstatic, under a new hashed name.
    write(
        &root.join("static/polls/style.css"),
        "body { color: black }",
    );
    assert_eq!(
        client.get("/static/polls/style.css").send().await.text(),
        "body { color: blue }"
    );

    let js_url = client.site().static_files().url("polls/app.js");
    let original = fs::read_to_string(root.join("src/polls/static/polls/app.js")).unwrap();
    for encoding in ["br", "gzip"] {
        let compressed = client
            .get(&js_url)
            .header("accept-encoding", encoding)
            .send()
            .await;
        assert_eq!(compressed.status(), 200);
        assert_eq!(compressed.header("content-encoding"), Some(encoding));
        assert!(compressed.bytes().len() < original.len());
        assert_eq!(decompress(encoding, compressed.bytes()), original);
        assert!(
            compressed
                .header("vary")
                .unwrap_or_default()
                .contains("accept-encoding")
        );
    }
    // A range is taken from the file itself, never from a compressed variant.
    let part = client
        .get(&js_url)
        .header("accept-encoding", "br")
        .header("range", "bytes=0-6")
        .send()
        .await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.header("content-encoding"), None);
    assert_eq!(part.text(), &original[..7]);
}

/// Kiln's JavaScript client, as the crate ships it.
const KILN_JS: &str = include_str!("../static/kiln/kiln.js");

#[tokio::test]
async fn kilns_own_client_script_is_a_static_file_in_debug_and_production() {
    let dir = project_folder();
    let root = dir.path();
    let debug = TestClient::with_settings(project(root), settings(true));
    assert_eq!(
        debug.site().static_files().url("kiln/kiln.js"),
        "/static/kiln/kiln.js"
    );
    let script = debug.get("/static/kiln/kiln.js").send().await;
    assert_eq!(script.status(), 200);
    assert_eq!(script.header("content-type"), Some("text/javascript"));
    assert_eq!(script.text(), KILN_JS);
    assert_eq!(script.header("cache-control"), Some("no-cache"));
    let etag = script.header("etag").unwrap().to_owned();
    let again = debug
        .get("/static/kiln/kiln.js")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(again.status(), 304);
    assert!(again.bytes().is_empty());
    let head = debug
        .request(Method::HEAD, "/static/kiln/kiln.js")
        .send()
        .await;
    assert_eq!(head.status(), 200);
    assert!(head.bytes().is_empty());

    // Production before collectstatic: still served, from the binary.
    let production = TestClient::with_settings(project(root), settings(false));
    let script = production.get("/static/kiln/kiln.js").send().await;
    assert_eq!(script.status(), 200);
    assert_eq!(script.text(), KILN_JS);

    // collectstatic copies it with a hashed name that templates' static() uses.
    project(root)
        .static_files(&settings(false))
        .collect()
        .unwrap();
    assert!(root.join("staticfiles/kiln/kiln.js").is_file());
    let production = TestClient::with_settings(project(root), settings(false));
    let url = production.site().static_files().url("kiln/kiln.js");
    assert!(
        url.starts_with("/static/kiln/kiln.")
            && url.ends_with(".js")
            && url.len() == "/static/kiln/kiln.js".len() + 13,
        "{url}"
    );
    let hashed = production.get(&url).send().await;
    assert_eq!(hashed.status(), 200);
    assert_eq!(hashed.header("content-type"), Some("text/javascript"));
    assert_eq!(hashed.text(), KILN_JS);
    assert_eq!(
        hashed.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[tokio::test]
async fn a_project_file_replaces_kilns_own_script() {
    let dir = project_folder();
    let root = dir.path();
    write(&root.join("static/kiln/kiln.js"), "// patched\n");
    let client = TestClient::with_settings(project(root), settings(true));
    assert_eq!(
        client.get("/static/kiln/kiln.js").send().await.text(),
        "// patched\n"
    );
    project(root)
        .static_files(&settings(false))
        .collect()
        .unwrap();
    assert_eq!(
        fs::read_to_string(root.join("staticfiles/kiln/kiln.js")).unwrap(),
        "// patched\n"
    );
}

#[tokio::test]
async fn a_file_that_stops_being_worth_compressing_loses_its_stale_variants() {
    let dir = project_folder();
    let root = dir.path();
    let files = project(root).static_files(&settings(false));
    files.collect().unwrap();
    assert!(root.join("staticfiles/polls/app.js.gz").is_file());
    write(&root.join("src/polls/static/polls/app.js"), "tiny();");
    files.collect().unwrap();
    assert!(!root.join("staticfiles/polls/app.js.gz").exists());
    assert!(!root.join("staticfiles/polls/app.js.br").exists());
}

#[test]
fn check_warns_when_production_has_not_collected_static_files() {
    let dir = project_folder();
    let warned = |debug| {
        kiln::checks::run(&project(dir.path()), &settings(debug))
            .iter()
            .any(|message| message.id == "kiln.W004")
    };
    assert!(warned(false));
    assert!(!warned(true), "debug mode serves from the app folders");
    project(dir.path())
        .static_files(&settings(false))
        .collect()
        .unwrap();
    assert!(!warned(false));
}

fn media_project(video: PathBuf) -> Project {
    let download = move |method: Method, headers: HeaderMap| {
        let video = video.clone();
        async move {
            FileResponse::new(video)
                .attachment("clip \"final\".mp4")
                .serve(&method, &headers)
                .await
        }
    };
    let numbers = || async {
        let chunks = (1..=3).map(|n| Ok::<_, std::io::Error>(format!("chunk {n}\n")));
        kiln::http::stream(
            "text/plain; charset=utf-8",
            futures_util::stream::iter(chunks),
        )
    };
    Project::new("media").mount(
        "/",
        App::new("media")
            .route("/video", "video", get(download))
            .route(
                "/missing",
                "missing",
                get(|m: Method, h: HeaderMap| async move {
                    FileResponse::new("/no/such/file.mp4").serve(&m, &h).await
                }),
            )
            .route("/numbers", "numbers", get(numbers)),
    )
}

#[tokio::test]
async fn file_responses_seek_download_and_are_never_recompressed() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&video, &content).unwrap();
    let client = TestClient::with_settings(media_project(video), settings(false));

    let whole = client
        .get("/video")
        .header("accept-encoding", "gzip, br")
        .send()
        .await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    assert_eq!(
        whole.header("content-encoding"),
        None,
        "video is not compressed again"
    );
    assert_eq!(
        whole.header("accept-ranges"),
        Some("bytes"),
        "so a <video> can seek"
    );
    assert_eq!(whole.bytes(), content.as_slice());
    assert_eq!(
        whole.header("content-disposition"),
        Some("attachment; filename=\"clip _final_.mp4\"; filename*=UTF-8''clip%20%22final%22.mp4")
    );

    let seek = client
        .get("/video")
        .header("range", "bytes=50000-50099")
        .send()
        .await;
    assert_eq!(seek.status(), 206);
    assert_eq!(seek.bytes(), &content[50_000..50_100]);

    let head = client.request(Method::HEAD, "/video").send().await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert!(head.bytes().is_empty());

    assert_eq!(client.get("/missing").send().await.status(), 404);

    let streamed = client.get("/numbers").send().await;
    assert_eq!(streamed.text(), "chunk 1\nchunk 2\nchunk 3\n");
}

/// A stylesheet in `polls/css/` pointing at an image, a font, another
/// stylesheet, things that are not static files, a missing file and a path
/// out of the static files.
fn stylesheet_project() -> tempfile::TempDir {
    let dir = project_folder();
    let statics = dir.path().join("src/polls/static/polls");
    write(&statics.join("img/logo.png"), "PNG-1");
    write(&statics.join("fonts/a.woff2"), "WOFF");
    write(&statics.join("css/base.css"), "h1 { margin: 0 }");
    let css = format!(
        "@import \"base.css\";\n\
         @import 'missing.css';\n\
         .logo {{ background: url(../img/logo.png) }}\n\
         .quoted {{ background: url( \"../img/logo.png?v=2#top\" ) }}\n\
         @font-face {{ src: url('../fonts/a.woff2#iefix') }}\n\
         .data {{ background: url(data:image/png;base64,AAAA) }}\n\
         .far {{ background: url(https://cdn.example.com/x.png) }}\n\
         .proto {{ background: url(//cdn.example.com/x.png) }}\n\
         .svg {{ filter: url(#shadow) }}\n\
         .gone {{ background: url(../img/nothing.png) }}\n\
         .evil {{ background: url(../../../../etc/passwd) }}\n\
         /* {} */\n",
        "padding ".repeat(60)
    );
    write(&statics.join("css/site.css"), css);
    dir
}

#[test]
fn collected_stylesheets_point_at_hashed_names() {
    let dir = stylesheet_project();
    let root = dir.path();
    let files = project(root).static_files(&settings(false));
    let collected = files.collect().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("staticfiles/staticfiles.json")).unwrap())
            .unwrap();
    let hashed = |name: &str| manifest["paths"][name].as_str().unwrap().to_owned();
    let base = |name: &str| hashed(name).rsplit('/').next().unwrap().to_owned();
    let site =
        fs::read_to_string(root.join("staticfiles").join(hashed("polls/css/site.css"))).unwrap();
    for expected in [
        format!("@import \"{}\";", base("polls/css/base.css")),
        format!("url(../img/{})", base("polls/img/logo.png")),
        format!("url( \"../img/{}?v=2#top\" )", base("polls/img/logo.png")),
        format!("url('../fonts/{}#iefix')", base("polls/fonts/a.woff2")),
        "@import 'missing.css';".to_owned(),
        "url(data:image/png;base64,AAAA)".to_owned(),
        "url(https://cdn.example.com/x.png)".to_owned(),
        "url(//cdn.example.com/x.png)".to_owned(),
        "url(#shadow)".to_owned(),
        "url(../img/nothing.png)".to_owned(),
        "url(../../../../etc/passwd)".to_owned(),
    ] {
        assert!(site.contains(&expected), "{expected} not in {site}");
    }
    // The stylesheet's own hash is of the rewritten text.
    let digest = sha2::Sha256::digest(site.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hashed("polls/css/site.css"),
        format!("polls/css/site.{hex}.css")
    );
    // The compressed variants are of the rewritten text too.
    let gz = fs::read(
        root.join("staticfiles")
            .join(format!("{}.gz", hashed("polls/css/site.css"))),
    )
    .unwrap();
    assert_eq!(decompress("gzip", &gz), site);
    let br = fs::read(
        root.join("staticfiles")
            .join(format!("{}.br", hashed("polls/css/site.css"))),
    )
    .unwrap();
    assert_eq!(decompress("br", &br), site);

    let mut warnings = collected.warnings.clone();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "polls/css/site.css: the reference \"../../../../etc/passwd\" climbs out of the static files; left as written",
            "polls/css/site.css: the reference \"../img/nothing.png\" names no collected static file; left as written",
            "polls/css/site.css: the reference \"missing.css\" names no collected static file; left as written",
        ]
    );
}

#[test]
fn a_changed_image_changes_the_name_of_the_stylesheet_that_uses_it() {
    let dir = stylesheet_project();
    let root = dir.path();
    let files = project(root).static_files(&settings(false));
    let read = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(root.join("staticfiles/staticfiles.json")).unwrap())
            .unwrap()
    };
    files.collect().unwrap();
    let before = read();
    write(&root.join("src/polls/static/polls/img/logo.png"), "PNG-2");
    write(
        &root.join("src/polls/static/polls/css/base.css"),
        "h1 { margin: 1px }",
    );
    files.collect().unwrap();
    let after = read();
    let name = |m: &serde_json::Value, n: &str| m["paths"][n].as_str().unwrap().to_owned();
    assert_ne!(
        name(&before, "polls/img/logo.png"),
        name(&after, "polls/img/logo.png")
    );
    assert_ne!(
        name(&before, "polls/css/site.css"),
        name(&after, "polls/css/site.css")
    );
    let site = fs::read_to_string(
        root.join("staticfiles")
            .join(name(&after, "polls/css/site.css")),
    )
    .unwrap();
    let base = name(&after, "polls/css/base.css");
    assert!(site.contains(base.rsplit('/').next().unwrap()), "{site}");
    // No file outside static_root was read or written.
    assert!(!root.join("etc").exists());
}
