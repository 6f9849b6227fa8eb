//! The account commands of the showcase binary, as a user runs them:
//! `createsuperuser` on a terminal and with `--no-input`, `changepassword`.
//! The terminal is a pseudo-terminal from util-linux's `script`.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln::auth::user;
use kiln::db::prelude::*;

/// The showcase binary with a clean environment and `database` (a fresh,
/// migrated SQLite file).
fn showcase(database: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_showcase"));
    isolate(&mut command, database);
    command
}

/// Runs `command` in the showcase folder without the caller's Kiln
/// settings, on `database`.
fn isolate(command: &mut Command, database: &str) {
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KILN_") || key == "RUST_LOG" || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("KILN_DATABASE_URL", database);
}

/// A migrated database of its own, in `dir`.
fn migrated(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}/db.sqlite3", dir.path().display());
    let output = showcase(&url).arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    url
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn users(url: &str) -> Vec<user::Model> {
    let db = kiln::db::sea_orm::Database::connect(url).await.unwrap();
    user::Entity::find().all(&db).await.unwrap()
}

/// Runs the showcase with `args` on a pseudo-terminal, answering each
/// prompt when it appears (as a person would: after the program turned
/// echo off), and returns everything the terminal showed.
fn on_a_terminal(url: &str, args: &str, answers: &[(&str, &str)]) -> (bool, String) {
    let binary = env!("CARGO_BIN_EXE_showcase");
    let mut command = Command::new("script");
    command
        .args(["--quiet", "--return", "--command"])
        .arg(format!("'{binary}' {args}"))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    isolate(&mut command, url);
    let mut child = command.spawn().expect("`script` (util-linux) runs");
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 1024];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    let mut keyboard = child.stdin.take().unwrap();
    let mut seen = 0;
    for (prompt, answer) in answers {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = shown.lock().unwrap().clone();
            if let Some(at) = text[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt {prompt:?} in:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The prompt is printed just before echo is turned off.
        std::thread::sleep(Duration::from_millis(150));
        keyboard
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        keyboard.flush().unwrap();
    }
    drop(keyboard);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let shown = shown.lock().unwrap().clone();
    (status.success(), shown)
}

#[test]
fn account_commands_have_help() {
    for command in ["createsuperuser", "changepassword"] {
        let output = showcase("sqlite::memory:")
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}");
        assert!(text(&output).contains("Usage"), "{command}");
    }
    let help = text(
        &showcase("sqlite::memory:")
            .args(["createsuperuser", "--help"])
            .output()
            .unwrap(),
    );
    assert!(help.contains("KILN_SUPERUSER_PASSWORD"), "{help}");
}

#[tokio::test]
async fn createsuperuser_no_input_reads_the_environment_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(&dir);

    let output = showcase(&url)
        .args(["createsuperuser", "--no-input"])
        .env("KILN_SUPERUSER_EMAIL", "root@example.com")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("set KILN_SUPERUSER_USERNAME"),
        "{}",
        text(&output)
    );

    let output = showcase(&url)
        .args(["createsuperuser", "--no-input"])
        .env("KILN_SUPERUSER_USERNAME", "root")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("set KILN_SUPERUSER_EMAIL"),
        "{}",
        text(&output)
    );

    let output = showcase(&url)
        .args(["createsuperuser", "--no-input"])
        .env("KILN_SUPERUSER_USERNAME", "root")
        .env("KILN_SUPERUSER_EMAIL", "root@example.com")
        .env("KILN_SUPERUSER_PASSWORD", "password")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("This password is too common."),
        "{}",
        text(&output)
    );
    assert!(users(&url).await.is_empty(), "nothing created on an error");

    let output = showcase(&url)
        .args(["createsuperuser", "--no-input"])
        .env("KILN_SUPERUSER_USERNAME", "root")
        .env("KILN_SUPERUSER_EMAIL", "root@example.com")
        .env("KILN_SUPERUSER_PASSWORD", "a long deploy passphrase")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("Superuser created successfully."));
    let users = users(&url).await;
    assert_eq!(users.len(), 1);
    let root = &users[0];
    assert!(root.is_superuser && root.is_staff && root.is_active);
    assert_eq!(root.email, "root@example.com");
    assert!(root.check_password("a long deploy passphrase").await);

    let output = showcase(&url)
        .args([
            "createsuperuser",
            "--no-input",
            "--username",
            "root",
            "--email",
            "x@example.com",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("already taken"), "{}", text(&output));
}

#[tokio::test]
async fn createsuperuser_asks_on_a_terminal_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(&dir);
    let (ok, shown) = on_a_terminal(
        &url,
        "createsuperuser",
        &[
            ("Username: ", "janedoe"),
            ("Email address: ", "jane@example.com"),
            ("Password: ", "s3cret-one"),
            ("Password (again): ", "s3cret-two"),
            ("Password: ", "janedoe1"),
            ("Password (again): ", "janedoe1"),
            ("anyway? [y/N]: ", "n"),
            ("Password: ", "violet kettle drums"),
            ("Password (again): ", "violet kettle drums"),
        ],
    );
    assert!(ok, "{shown}");
    assert!(
        shown.contains("Error: Your passwords didn't match."),
        "{shown}"
    );
    assert!(
        shown.contains("The password is too similar to the username."),
        "{shown}"
    );
    assert!(shown.contains("Superuser created successfully."), "{shown}");
    for secret in ["s3cret-one", "janedoe1", "violet kettle drums"] {
        assert!(!shown.contains(secret), "{secret:?} was echoed:\n{shown}");
    }
    let created = users(&url).await;
    assert_eq!(created[0].username, "janedoe");
    assert!(created[0].check_password("violet kettle drums").await);

    let (ok, shown) = on_a_terminal(
        &url,
        "changepassword janedoe",
        &[
            ("Password: ", "12345678"),
            ("Password (again): ", "12345678"),
            ("Password: ", "another fine passphrase"),
            ("Password (again): ", "another fine passphrase"),
        ],
    );
    assert!(ok, "{shown}");
    assert!(
        shown.contains("This password is entirely numeric."),
        "{shown}"
    );
    assert!(
        shown.contains("Password changed successfully for user 'janedoe'"),
        "{shown}"
    );
    let jane = &users(&url).await[0];
    assert!(jane.check_password("another fine passphrase").await);
    assert!(!jane.check_password("violet kettle drums").await);

    let output = showcase(&url)
        .args(["changepassword", "nobody"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("no user is named `nobody`"),
        "{}",
        text(&output)
    );
}
