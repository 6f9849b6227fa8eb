//! The showcase binary as a user runs it: management commands, bad settings,
//! a taken port, production logs and graceful shutdown on SIGTERM.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "showcase-test-secret-key-0123456789abcdefghijklmnop";

/// The showcase binary, with a clean environment and its own fresh SQLite
/// file, so tests never touch the development database or each other's.
fn showcase() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_showcase"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KILN_") || key == "RUST_LOG" || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("KILN_DATABASE_URL", fresh_database_url());
    command
}

/// A SQLite URL in this test run's temporary folder, new on every call.
fn fresh_database_url() -> String {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("sqlite://{}/db{n}.sqlite3", dir.path().display())
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the showcase binary runs")
}

/// A server process whose stderr lines are collected as they arrive.
struct Server {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(command: &mut Command, extra: &[&str]) -> Self {
        let mut child = command
            .arg("runserver")
            .args(extra)
            .args(["--addr", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the showcase starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        let reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let port = lines.lock().unwrap().iter().find_map(|line| {
                let rest = &line[line.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            });
            if let Some(port) = port {
                return Self {
                    child,
                    port,
                    lines,
                    reader,
                };
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                lines.lock().unwrap()
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("server exited with {status}: {:?}", lines.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.port, path)
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Every line the server wrote, once it has exited and its stderr is closed.
    fn final_log(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log()
    }

    fn signal(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: (status, head, body).
fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn routes_lists_every_named_route() {
    let output = run(showcase().arg("routes"));
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "pages:home",
        "api:square",
        "/api/square/{n:int}",
        "kiln:healthz",
        "showcase::api::views::square",
    ] {
        assert!(table.contains(expected), "missing {expected} in\n{table}");
    }
    let only = String::from_utf8(run(showcase().args(["routes", "--app", "api"])).stdout).unwrap();
    assert!(
        only.contains("api:status") && !only.contains("pages:home"),
        "{only}"
    );
}

#[test]
fn check_passes_on_the_showcase_and_reports_unknown_settings() {
    let output = run(showcase().arg("check"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no issues"));

    // KILN_ROOT and KILN_CONFIG locate the project; they are not settings.
    let root = env!("CARGO_MANIFEST_DIR");
    let config = format!("{root}/kiln.toml");
    let output = run(showcase()
        .arg("check")
        .env("KILN_ROOT", root)
        .env("KILN_CONFIG", &config));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("no issues"),
        "{}",
        stderr(&output)
    );

    let output = run(showcase().arg("check").env("KILN_PROT", "1"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("unknown setting `prot`") && stdout.contains("KILN_PROT"),
        "{stdout}"
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["runserver", "--help"],
        vec!["routes", "--help"],
        vec!["check", "--help"],
        vec!["makemigrations", "--help"],
        vec!["migrate", "--help"],
        vec!["showmigrations", "--help"],
        vec!["sqlmigrate", "--help"],
        vec!["dumpdata", "--help"],
        vec!["loaddata", "--help"],
    ] {
        let output = run(showcase().args(&args));
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let output = run(showcase().arg("no-such-command"));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn bad_environment_value_is_one_clear_message_and_exit_1() {
    let output = run(showcase().arg("check").env("KILN_PORT", "eighty"));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("KILN_PORT") && message.contains("`port`") && message.contains("fix:"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn unreadable_or_invalid_settings_file_is_one_clear_message_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(showcase().env("KILN_CONFIG", dir.path()));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read settings file"),
        "{}",
        stderr(&output)
    );

    let file = dir.path().join("kiln.toml");
    std::fs::write(&file, "port = [oops").unwrap();
    let output = run(showcase().arg("check").env("KILN_CONFIG", &file));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("kiln.toml"), "{}", stderr(&output));
}

#[test]
fn production_without_secret_key_refuses_to_start() {
    let output = run(showcase().env("KILN_DEBUG", "false"));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("`secret_key` is not set") && message.contains("KILN_SECRET_KEY"),
        "{message}"
    );
}

#[test]
fn port_in_use_is_one_clear_message_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(showcase().args(["runserver", "--addr", &addr]));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("cannot listen on") && message.contains("runserver --addr"),
        "{message}"
    );
}

#[test]
fn an_unreachable_cache_server_stops_runserver_with_the_fix() {
    // Nothing listens on port 1. With the `memcached` feature the server is
    // pinged and found down; without it the setting is refused: either way
    // one clear message and exit 1, before the server listens.
    let output = run(showcase()
        .args(["runserver", "--addr", "127.0.0.1:0"])
        .env("KILN_CACHE", "memcached://127.0.0.1:1"));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("cache") && message.contains("fix:") && !message.contains("serving"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn serves_pages_and_shuts_down_gracefully_on_sigterm() {
    let mut server = Server::start(&mut showcase(), &[]);
    let (status, _, body) = server.get("/");
    assert_eq!(status, 200);
    assert!(body.contains("Kiln showcase"));
    assert_eq!(server.get("/api/square/12").0, 200);

    // A request in flight when SIGTERM arrives still gets its answer.
    let port = server.port;
    let in_flight = std::thread::spawn(move || http_get(port, "/api/sleep/800"));
    std::thread::sleep(Duration::from_millis(200));
    let status = server.terminate();
    let (code, _, body) = in_flight.join().unwrap();
    assert_eq!((code, body.as_str()), (200, "slept 800 ms"));
    assert!(status.success(), "exit status {status}");
    assert!(server.log().iter().any(|l| l.contains("shutting down")));
}

#[test]
fn a_second_signal_exits_without_waiting() {
    let mut server = Server::start(&mut showcase(), &[]);
    let port = server.port;
    let in_flight = std::thread::spawn(move || http_get(port, "/api/sleep/5000"));
    std::thread::sleep(Duration::from_millis(200));
    server.signal();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    // The slow request was cut off: no answer, or a reset connection.
    assert!(!matches!(in_flight.join(), Ok((200, _, _))));
    assert!(server.log().iter().any(|l| l.contains("second signal")));
}

#[test]
fn the_last_access_lines_are_written_at_shutdown() {
    // The access log is written in batches by a thread that waits between
    // them; the lines of requests served just before SIGTERM are still
    // waiting when the server stops, and must be written before it exits.
    let mut server = Server::start(
        showcase()
            .env("KILN_DEBUG", "false")
            .env("KILN_SECRET_KEY", SECRET)
            .env("KILN_ALLOWED_HOSTS", "[\"localhost\", \"127.0.0.1\"]"),
        &[],
    );
    let paths: Vec<String> = (0..20).map(|i| format!("/api/square/{i}")).collect();
    for path in &paths {
        assert_eq!(server.get(path).0, 200);
    }
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let log = server.final_log();
    for path in &paths {
        assert!(
            log.iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|event| event["target"] == "kiln::request" && event["path"] == path.as_str()),
            "no access line for {path} in {log:?}"
        );
    }
}

#[test]
fn serves_one_app_alone_as_a_microservice() {
    let server = Server::start(&mut showcase(), &["--app", "api"]);
    assert_eq!(server.get("/api/status").0, 200);
    assert_eq!(server.get("/").0, 404);
    assert_eq!(server.get("/healthz").0, 200);
    assert!(server.log().iter().any(|l| l.contains("app `api` only")));
}

#[test]
fn production_logs_are_json_with_request_ids_and_errors_never_leak() {
    let server = Server::start(
        showcase()
            .env("KILN_DEBUG", "false")
            .env("KILN_SECRET_KEY", SECRET)
            .env("KILN_ALLOWED_HOSTS", "[\"localhost\", \"127.0.0.1\"]"),
        &[],
    );
    let (status, head, body) = server.get("/boom/");
    assert_eq!(status, 500);
    assert!(!body.contains("invalid digit"), "internals leaked: {body}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .to_owned();
    assert!(body.contains(&id));
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    let error = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|event| event["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no JSON error line in {log:?}"));
    assert_eq!(error["request_id"], id.as_str());
    assert!(error["error"].as_str().unwrap().contains("invalid digit"));
    let access = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|event| event["target"] == "kiln::request" && event["path"] == "/boom/")
        .unwrap_or_else(|| panic!("no access line in {log:?}"));
    let view_line = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|event| event["message"] == "about to fail on purpose")
        .unwrap_or_else(|| panic!("no line from the view in {log:?}"));
    assert_eq!(view_line["request_id"], id.as_str(), "{view_line}");

    // A panicking view: a 500, a JSON log line with the request id and where
    // it panicked, no plain-text panic message, and the server goes on.
    let (status, head, _) = server.get("/crash/");
    assert_eq!(status, 500);
    let crash_id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .to_owned();
    assert_eq!(server.get("/api/square/3").0, 200);
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    let panic_line = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|event| event["target"] == "kiln::panic")
        .unwrap_or_else(|| panic!("no JSON panic line in {log:?}"));
    assert_eq!(panic_line["request_id"], crash_id.as_str(), "{panic_line}");
    assert!(
        panic_line["location"]
            .as_str()
            .unwrap()
            .contains("views.rs"),
        "{panic_line}"
    );
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "every production log line is JSON: {log:?}"
    );
    assert_eq!(access["method"], "GET");
    assert_eq!(access["request_id"], id.as_str());
    assert!(access["latency_us"].is_u64());
}

#[test]
fn runserver_migrates_a_fresh_database_and_serves_the_seeded_polls() {
    let server = Server::start(&mut showcase(), &[]);
    let log = server.log().join("\n");
    assert!(
        log.contains("Applied migration polls.0001_initial"),
        "{log}"
    );
    assert!(
        log.contains("Applied migration polls.0002_demo_questions"),
        "{log}"
    );
    let (status, _, body) = server.get("/polls/");
    assert_eq!(status, 200);
    assert!(body.contains("What&#x27;s new?"), "{body}");
}

#[test]
fn migrate_showmigrations_and_sqlmigrate_work_on_the_same_file() {
    let url = fresh_database_url();
    let command = || {
        let mut command = showcase();
        command.env("KILN_DATABASE_URL", &url);
        command
    };
    let shown = run(command().arg("showmigrations"));
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "sessions\n [ ] 0001_initial\npolls\n [ ] 0001_initial\n [ ] 0002_demo_questions\nchat\n [ ] 0001_initial\nauth\n [ ] 0001_initial\n"
    );
    let migrated = run(command().arg("migrate"));
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let out = String::from_utf8_lossy(&migrated.stdout);
    assert!(out.contains("Applying polls.0001_initial... OK"), "{out}");
    let shown = run(command().arg("showmigrations"));
    assert!(String::from_utf8_lossy(&shown.stdout).contains(" [X] 0002_demo_questions"));
    let again = run(command().arg("migrate"));
    assert!(String::from_utf8_lossy(&again.stdout).contains("No migrations to apply."));
    let zero = run(command().args(["migrate", "polls", "zero"]));
    let out = String::from_utf8_lossy(&zero.stdout);
    assert!(
        out.contains("Unapplying polls.0002_demo_questions... OK"),
        "{out}"
    );
    assert!(out.contains("Unapplying polls.0001_initial... OK"), "{out}");
    let shown = run(command().arg("showmigrations"));
    assert!(String::from_utf8_lossy(&shown.stdout).contains(" [ ] 0001_initial"));
    let sql = run(command().args(["sqlmigrate", "polls", "0001", "--backend", "postgres"]));
    let sql = String::from_utf8_lossy(&sql.stdout);
    assert!(sql.contains("CREATE TABLE \"polls_question\""), "{sql}");
    assert!(sql.starts_with("BEGIN;"), "{sql}");
    let unknown = run(command().args(["migrate", "polls", "0009"]));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("app `polls` has no migration matching `0009`"));
}

#[test]
fn the_models_and_their_migrations_agree() {
    let output = run(showcase().args(["makemigrations", "--check"]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("No changes detected"));
}

#[test]
fn an_unreachable_database_is_one_message_that_names_it_and_exit_1() {
    // The showcase is built with SQLite only; a file in a folder that does
    // not exist cannot be opened. (Masking of passwords in PostgreSQL URLs is
    // tested in kiln's own tests, which have that driver.)
    let url = "sqlite:///no/such/folder/site.sqlite3";
    for args in [&["migrate"][..], &[]] {
        let output = run(showcase().args(args).env("KILN_DATABASE_URL", url));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains(
                "cannot connect to database `default` at sqlite:///no/such/folder/site.sqlite3"
            ),
            "{message}"
        );
        assert!(
            message.contains("fix: check that the folder of the SQLite file exists"),
            "{message}"
        );
        assert_eq!(
            message.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{message}"
        );
    }
}

/// Whether the showcase binary has the PostgreSQL driver depends on cargo's
/// feature unification (`cargo test --workspace` builds kiln with the
/// features its own tests enable); both answers must be one clear message
/// that never shows the password.
#[test]
fn a_postgres_url_is_refused_or_unreachable_with_the_password_masked() {
    let output = run(showcase().arg("migrate").env(
        "KILN_DATABASE_URL",
        "postgres://kiln:hunter2@127.0.0.1:1/site",
    ));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("postgres://kiln:***@127.0.0.1:1/site"),
        "{message}"
    );
    let lacks_driver = message.contains("enable kiln's `postgres` feature");
    let unreachable = message.contains("cannot connect to database `default`")
        && message.contains("fix: check that PostgreSQL is running");
    assert!(lacks_driver || unreachable, "{message}");
    assert_eq!(
        message.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{message}"
    );
}

#[test]
fn a_database_url_of_unknown_kind_is_refused_at_boot() {
    let output = run(showcase()
        .arg("check")
        .env("KILN_DATABASE_URL", "oracle://x"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("invalid setting `database_url`"));
}

#[test]
fn dumpdata_and_loaddata_round_trip_the_polls() {
    let (source, target) = (fresh_database_url(), fresh_database_url());
    let on = |url: &str| {
        let mut command = showcase();
        command.env("KILN_DATABASE_URL", url);
        command
    };
    assert!(run(on(&source).arg("migrate")).status.success());
    let dumped = run(on(&source).args(["dumpdata", "polls"]));
    assert!(dumped.status.success(), "{}", stderr(&dumped));
    let json = String::from_utf8_lossy(&dumped.stdout).into_owned();
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        8,
        "2 questions and 6 choices: {json}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("polls.json");
    std::fs::write(&fixture, &json).unwrap();
    // The schema only: the demo-data migration would insert the same rows.
    assert!(
        run(on(&target).args(["migrate", "polls", "0001"]))
            .status
            .success()
    );
    let loaded = run(on(&target).arg("loaddata").arg(&fixture));
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("Installed 8 object(s)"));
    let again = run(on(&target).args(["dumpdata", "polls"]));
    assert_eq!(String::from_utf8_lossy(&again.stdout), json);

    // A broken entry: an error naming it, and nothing of the file inserted.
    let mut broken: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    for entry in &mut broken {
        entry["pk"] = serde_json::json!(entry["pk"].as_i64().unwrap() + 100);
    }
    broken[7]["fields"]["votes"] = serde_json::json!("many");
    std::fs::write(&fixture, serde_json::to_string(&broken).unwrap()).unwrap();
    let refused = run(on(&target).arg("loaddata").arg(&fixture));
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("votes"), "{}", stderr(&refused));
    let after = run(on(&target).args(["dumpdata", "polls"]));
    assert_eq!(String::from_utf8_lossy(&after.stdout), json);
}
