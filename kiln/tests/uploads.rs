//! File uploads through `TestClient`: multipart bodies streamed to disk,
//! saved by the media storage and served back with ranges; limits,
//! malformed bodies and hostile names, with nothing left behind.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/multipart.rs"]
pub mod multipart;

use std::fs;
use std::path::Path;

use kiln::prelude::*;
use kiln::storage::{FileSystemStorage, Storage, StorageError};
use kiln::test::TestClient;
use kiln::uploads::MultipartForm;
use multipart::{BOUNDARY, multipart};
use serde_json::{Value, json};

async fn save_upload(site: Site, form: MultipartForm) -> Result<Json<Value>, kiln::Error> {
    let storage = FileSystemStorage::media(&site);
    let mut saved = Vec::new();
    for file in form.files() {
        let name = storage
            .save(&format!("videos/{}", file.file_name()), file)
            .await
            .map_err(kiln::Error::internal)?;
        saved.push(json!({"name": name, "size": file.size(), "url": storage.url(&name), "type": file.content_type()}));
    }
    Ok(Json(
        json!({"title": form.field("title"), "tags": form.field_values("tag"), "saved": saved}),
    ))
}

struct UploadSite {
    dir: tempfile::TempDir,
    client: TestClient,
}

fn site(extra: &str) -> UploadSite {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("upload-tmp");
    fs::create_dir_all(&temp).unwrap();
    let key = "test-only-secret-key-0123456789abcdef0123456789";
    let settings = Settings::from_toml(&format!(
        "debug = false\nsecret_key = \"{key}\"\nupload_temp_dir = {:?}\n{extra}",
        temp.display().to_string()
    ))
    .unwrap();
    let project = Project::new("uploads").root(dir.path()).mount(
        "/",
        App::new("media").route("/upload", "upload", post(save_upload)),
    );
    UploadSite {
        client: TestClient::with_settings(project, settings),
        dir,
    }
}

impl UploadSite {
    async fn upload(&self, body: Vec<u8>) -> kiln::test::TestResponse {
        multipart::post(&self.client, "/upload", body).await
    }

    fn temp_files(&self) -> usize {
        fs::read_dir(self.dir.path().join("upload-tmp"))
            .unwrap()
            .count()
    }

    fn media(&self, name: &str) -> Vec<u8> {
        fs::read(self.dir.path().join("media").join(name)).unwrap()
    }
}

fn video(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn uploads_are_saved_without_overwriting_and_served_back_with_ranges() {
    let site = site("");
    let content = video(300_000);
    let body = multipart(
        &[("title", "Talk"), ("tag", "rust"), ("tag", "web")],
        &[("video", "talk.mp4", &content), ("extra", "", b"")],
    );
    let response = site.upload(body.clone()).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    let answer: Value = response.json();
    assert_eq!(answer["title"], "Talk");
    assert_eq!(answer["tags"], json!(["rust", "web"]));
    assert_eq!(
        answer["saved"].as_array().unwrap().len(),
        1,
        "an empty file input is no file"
    );
    assert_eq!(answer["saved"][0]["name"], "videos/talk.mp4");
    assert_eq!(answer["saved"][0]["size"], 300_000);
    assert_eq!(answer["saved"][0]["type"], "video/mp4");
    assert_eq!(site.media("videos/talk.mp4"), content);
    assert_eq!(
        site.temp_files(),
        0,
        "the temporary file went with the request"
    );

    // The same name again: saved beside it, never over it.
    let again: Value = site.upload(body).await.json();
    let second = again["saved"][0]["name"].as_str().unwrap().to_owned();
    assert!(
        second.starts_with("videos/talk_") && second.ends_with(".mp4"),
        "{second}"
    );
    assert_eq!(site.media(&second), content);
    assert_eq!(site.media("videos/talk.mp4"), content);

    let served = site.client.get("/media/videos/talk.mp4").send().await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes(), content.as_slice());
    assert_eq!(served.header("content-type"), Some("video/mp4"));
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        served.header("content-disposition"),
        None,
        "video plays inline"
    );
    let seek = site
        .client
        .get("/media/videos/talk.mp4")
        .header("range", "bytes=1000-1999")
        .send()
        .await;
    assert_eq!(seek.status(), 206);
    assert_eq!(seek.bytes(), &content[1000..2000]);
}

#[tokio::test]
async fn hostile_file_names_stay_inside_the_media_folder_and_active_content_is_downloaded() {
    let site = site("");
    let page = b"<script>alert(document.cookie)</script>";
    let body = multipart(
        &[],
        &[
            ("video", "../../../evil.html", page),
            ("video", "..\\..\\x.svg", page),
        ],
    );
    let answer: Value = site.upload(body).await.json();
    assert_eq!(answer["saved"][0]["name"], "videos/evil.html");
    assert_eq!(answer["saved"][1]["name"], "videos/x.svg");
    assert!(!site.dir.path().join("evil.html").exists());
    for name in ["evil.html", "x.svg"] {
        let served = site
            .client
            .get(&format!("/media/videos/{name}"))
            .send()
            .await;
        assert_eq!(served.status(), 200);
        assert!(
            served
                .header("content-disposition")
                .unwrap()
                .starts_with("attachment;"),
            "{name} must not render in the site's origin"
        );
        assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    }
    fs::write(site.dir.path().join("secret.txt"), "TOP-SECRET").unwrap();
    for hostile in [
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/videos/..%2f..%2fsecret.txt",
    ] {
        let response = site.client.get(hostile).send().await;
        assert!(response.status().is_client_error(), "{hostile}");
        assert!(!response.text().contains("TOP-SECRET"), "{hostile}");
    }
}

#[tokio::test]
async fn limits_answer_413_and_leave_no_file_behind() {
    let site = site("upload_max_file_size = 1000\nupload_max_files = 2\nrequest_body_limit = 100");
    let over = site
        .upload(multipart(&[], &[("video", "big.mp4", &video(1001))]))
        .await;
    assert_eq!(over.status(), 413);
    assert!(
        over.text().contains("upload_max_file_size"),
        "{}",
        over.text()
    );

    let at_limit = site
        .upload(multipart(&[], &[("video", "ok.mp4", &video(1000))]))
        .await;
    assert_eq!(at_limit.status(), 200);

    let files: Vec<(&str, &str, &[u8])> = vec![
        ("v", "a.mp4", b"a"),
        ("v", "b.mp4", b"b"),
        ("v", "c.mp4", b"c"),
    ];
    let too_many = site.upload(multipart(&[], &files)).await;
    assert_eq!(too_many.status(), 413);
    assert!(
        too_many.text().contains("upload_max_files"),
        "{}",
        too_many.text()
    );

    let long_text = "x".repeat(101);
    let chatty = site.upload(multipart(&[("title", &long_text)], &[])).await;
    assert_eq!(chatty.status(), 413);

    assert_eq!(site.temp_files(), 0);
    let saved: Vec<_> = fs::read_dir(site.dir.path().join("media/videos"))
        .unwrap()
        .collect();
    assert_eq!(
        saved.len(),
        1,
        "only the upload within the limits was saved"
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_leave_no_file_behind() {
    let site = site("");
    let not_multipart = site
        .client
        .post("/upload")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    assert_eq!(not_multipart.status(), 415);

    let mut truncated = multipart(&[("title", "x")], &[("video", "cut.mp4", &video(50_000))]);
    truncated.truncate(30_000);
    let cut = site.upload(truncated).await;
    assert_eq!(cut.status(), 400, "{}", cut.text());

    let garbage = site.upload(b"this is not multipart at all".to_vec()).await;
    assert_eq!(garbage.status(), 400);

    let headerless = format!("--{BOUNDARY}\r\nno headers here\r\n--{BOUNDARY}--\r\n").into_bytes();
    assert_eq!(site.upload(headerless).await.status(), 400);

    assert_eq!(site.temp_files(), 0);
    assert!(!site.dir.path().join("media").exists(), "nothing was saved");
}

#[tokio::test]
async fn storages_refuse_names_that_leave_them() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FileSystemStorage::new(dir.path(), "/media/");
    for name in ["../x", "/etc/passwd", "a/../../b", ".env", ""] {
        assert!(
            matches!(storage.path(name), Err(StorageError::InvalidName(_))),
            "{name:?}"
        );
    }
    assert!(!storage.exists("a/b.txt").await.unwrap());
    storage.delete("a/b.txt").await.unwrap();
    assert_eq!(
        storage.url("videos/my talk.mp4"),
        "/media/videos/my%20talk.mp4"
    );
    assert!(Path::new(&storage.path("a/b.txt").unwrap()).starts_with(dir.path()));
}
