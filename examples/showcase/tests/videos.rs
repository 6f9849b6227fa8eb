//! The videos app through the test client: upload a video, see it listed,
//! play it back with a range request; refuse what a browser cannot play.

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

use kiln::test::{TestClient, TestResponse};

const BOUNDARY: &str = "showcase-test-boundary";

/// A client whose uploads go to a folder of its own.
fn client() -> (tempfile::TempDir, TestClient) {
    let media = tempfile::tempdir().unwrap();
    let settings = kiln::Settings::from_toml(&format!(
        "debug = true\nmedia_root = {:?}",
        media.path().display().to_string()
    ))
    .unwrap();
    (
        media,
        TestClient::with_settings(showcase::project(), settings),
    )
}

async fn upload(client: &TestClient, file_name: &str, content: &[u8]) -> TestResponse {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"{file_name}\"\r\nContent-Type: video/mp4\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    client
        .post("/videos/upload/")
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .follow_redirects()
        .send()
        .await
}

#[tokio::test]
async fn an_uploaded_video_is_listed_and_plays_with_seeking() {
    let (media, client) = client();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    let page = upload(&client, "talk.mp4", &content).await;
    assert_eq!(page.status(), 200);
    let html = page.text();
    assert!(html.contains("Uploaded talk.mp4 (200000 bytes)."), "{html}");
    assert!(
        html.contains(r#"<source src="/media/videos/talk.mp4" type="video/mp4">"#),
        "{html}"
    );
    assert!(media.path().join("videos/talk.mp4").is_file());

    let seek = client
        .get("/media/videos/talk.mp4")
        .header("range", "bytes=100000-100099")
        .send()
        .await;
    assert_eq!(seek.status(), 206);
    assert_eq!(seek.bytes(), &content[100_000..100_100]);
    assert_eq!(seek.header("content-type"), Some("video/mp4"));

    // The message was shown once.
    assert!(
        !client
            .get("/videos/")
            .send()
            .await
            .text()
            .contains("Uploaded talk.mp4")
    );
}

#[tokio::test]
async fn a_file_a_browser_cannot_play_is_refused_with_a_message() {
    let (media, client) = client();
    let page = upload(&client, "notes.html", b"<script>alert(1)</script>").await;
    let html = page.text();
    assert!(html.contains("is not a video a browser plays"), "{html}");
    assert!(html.contains("`notes.html`"), "{html}");
    assert!(!media.path().join("videos").exists(), "nothing was saved");
}

#[tokio::test]
async fn the_stylesheet_is_served_from_the_polls_app() {
    let (_media, client) = client();
    let page = client.get("/videos/").send().await.text();
    assert!(
        page.contains(r#"<link rel="stylesheet" href="/static/polls/style.css">"#),
        "{page}"
    );
    let css = client.get("/static/polls/style.css").send().await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.header("content-type"), Some("text/css"));
    assert!(css.text().contains(".messages"));
}
