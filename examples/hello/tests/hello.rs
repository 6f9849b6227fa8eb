//! The single-file app, run as a user runs it.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A CSRF secret as a client holds it: the same value in the cookie and in
/// the header, as JavaScript that reads the `kiln_csrftoken` cookie sends it.
const CSRF_SECRET: &str = "Zm9yLXRlc3RzLW9ubHktMzItYnl0ZXMtb2Ytc2VjciE";

#[test]
fn single_file_app_serves_pages_json_and_forms() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hello"))
        .args(["runserver", "--addr", "127.0.0.1:0"])
        .env_remove("KILN_PORT")
        .env_remove("KILN_DEBUG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut port = 0;
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(at) = line.find("http://127.0.0.1:") {
            let rest = &line[at + "http://127.0.0.1:".len()..];
            port = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            break;
        }
    }
    assert_ne!(port, 0, "the server did not report its address");
    // The loop above dropped the read end of stderr: a server whose log pipe
    // is gone (a crashed log collector) must go on answering.

    let get = |path: &str| {
        http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        )
    };
    let (status, body) = get("/");
    assert_eq!(status, 200);
    assert!(body.contains("href=\"/hello/Ada\""), "{body}");
    assert_eq!(get("/hello/Ada"), (200, "Hello, Ada!".to_owned()));
    let (status, body) = get("/api/count/3");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"n":3,"squares":[1,4,9]}"#);
    assert_eq!(get("/api/count/5000").0, 400);
    let form = "message=hi+there";
    let (status, body) = http(
        port,
        &format!(
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: kiln_csrftoken={CSRF_SECRET}\r\nX-CSRFToken: {CSRF_SECRET}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!((status, body.as_str()), (200, "hi there"));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `#[kiln::main]` installs mimalloc as the program's allocator
/// (`kiln::allocator`): asked to be verbose, mimalloc says it started.
#[test]
fn the_program_allocates_with_mimalloc() {
    let output = Command::new(env!("CARGO_BIN_EXE_hello"))
        .arg("routes")
        .env("MIMALLOC_VERBOSE", "1")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mimalloc: v2"), "{stderr}");
}
