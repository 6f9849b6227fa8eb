//! `multipart/form-data` bodies for upload and form tests; a test file
//! includes it with `#[path = "support/multipart.rs"] pub mod multipart;`.

/// The boundary of the bodies [`multipart`] builds.
pub const BOUNDARY: &str = "kiln-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body: text fields, then files (field, file name, content).
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (field, file_name, content) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: video/mp4\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// POSTs `body` (from [`multipart`]) to `path` with its content type.
pub async fn post(
    client: &kiln::test::TestClient,
    path: &str,
    body: Vec<u8>,
) -> kiln::test::TestResponse {
    client
        .post(path)
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
}
