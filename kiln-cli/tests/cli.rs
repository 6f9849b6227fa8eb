//! The `kiln` binary as a user runs it: names and folders it refuses without
//! writing anything, and a generated project that builds, passes its tests
//! and serves its start page.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kiln(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command.current_dir(cwd);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the command runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `command`, expecting exit code 1 and an `error:` message; returns the message.
fn refused(command: &mut Command) -> String {
    let output = run(command);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.starts_with("error: ") && message.contains("fix:"),
        "{message}"
    );
    message
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).expect("a readable folder") {
            let path = entry.expect("a readable folder entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            files.push(path.strip_prefix(dir).expect("a path under dir").to_owned());
        }
    }
    files.sort();
    files
}

/// The Kiln checkout this test belongs to.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the checkout exists")
}

/// A fresh project made by `kiln new demo` in a temporary folder.
fn new_project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let project = dir.path().join("demo");
    let output = run(kiln(dir.path()).args(["new", "demo"]));
    assert!(output.status.success(), "{}", stderr(&output));
    (dir, project)
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["new", "--help"],
        vec!["startapp", "--help"],
    ] {
        let output = run(kiln(dir.path()).args(&args));
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    assert_eq!(
        run(kiln(dir.path()).arg("no-such-command")).status.code(),
        Some(2)
    );
}

#[test]
fn new_refuses_bad_names_and_occupied_folders_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let message = refused(kiln(dir.path()).args(["new", "1abc"]));
    assert!(
        message.contains("must start with a lowercase letter") && message.contains("`my_1abc`"),
        "{message}"
    );
    let message = refused(kiln(dir.path()).args(["new", "fn"]));
    assert!(
        message.contains("Rust keyword") && message.contains("`fn_site`"),
        "{message}"
    );
    let message = refused(kiln(dir.path()).args(["new", "kiln"]));
    assert!(message.contains("`kiln`"), "{message}");
    assert_eq!(tree(dir.path()), Vec::<PathBuf>::new());

    let occupied = dir.path().join("occupied");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("notes.txt"), "mine").unwrap();
    let message = refused(kiln(dir.path()).args(["new", "demo", "--path", "occupied"]));
    assert!(
        message.contains("occupied") && message.contains("not an empty folder"),
        "{message}"
    );
    assert_eq!(tree(&occupied), vec![PathBuf::from("notes.txt")]);
    assert_eq!(
        fs::read_to_string(occupied.join("notes.txt")).unwrap(),
        "mine"
    );

    let message = refused(kiln(dir.path()).args(["new", "demo", "--kiln-path", "occupied"]));
    assert!(
        message.contains("not a Kiln checkout") && message.contains("--kiln-path"),
        "{message}"
    );
    assert!(!dir.path().join("demo").exists());
}

#[test]
fn new_writes_the_template_against_this_checkout() {
    let (_dir, project) = new_project();
    let version = env!("CARGO_PKG_VERSION");
    let manifest = fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let dependency = format!("kiln = {{ path = \"{}/kiln\" }}", checkout().display());
    assert!(manifest.contains(&dependency), "{manifest}");
    assert!(
        manifest.contains("name = \"demo\"") && manifest.contains("\n[workspace]\n"),
        "{manifest}"
    );
    for file in [
        "Cargo.toml",
        "kiln.toml",
        "README.md",
        ".gitignore",
        "src/main.rs",
        "src/pages.rs",
        "src/pages/urls.rs",
        "src/pages/views.rs",
        "src/pages/tests.rs",
    ] {
        let text = fs::read_to_string(project.join(file)).unwrap();
        assert!(
            text.contains(&format!("Generated by `kiln new` {version}")),
            "{file}"
        );
        assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
    }
    // The start page is an app of its own, as any app `kiln startapp` makes.
    let main = fs::read_to_string(project.join("src/main.rs")).unwrap();
    assert!(main.contains("// kiln:apps\nmod pages;\n"), "{main}");
    assert!(
        main.contains("// kiln:mount\n        .mount(\"/\", pages::app())"),
        "{main}"
    );
    // Sessions and accounts are on from the start, as in Django.
    assert!(
        main.contains(".mount(\"/\", kiln::sessions::app())")
            && main.contains(".mount(\"/accounts\", kiln::auth::app())"),
        "{main}"
    );
    if let Ok(lock) = fs::read_to_string(checkout().join("Cargo.lock")) {
        assert_eq!(
            fs::read_to_string(project.join("Cargo.lock")).unwrap(),
            lock
        );
    }
}

#[test]
fn startapp_refuses_outside_a_project_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let message = refused(kiln(dir.path()).args(["startapp", "blog"]));
    assert!(
        message.contains("not a Kiln project") && message.contains("--project"),
        "{message}"
    );
    assert_eq!(tree(dir.path()), Vec::<PathBuf>::new());

    let (_dir, project) = new_project();
    let before = tree(&project);
    let message = refused(kiln(&project).args(["startapp", "chat-rooms"]));
    assert!(message.contains("`chat_rooms`"), "{message}");
    let message = refused(kiln(&project).args(["startapp", "kiln"]));
    assert!(message.contains("`kiln`"), "{message}");
    assert_eq!(tree(&project), before);
}

#[test]
fn startapp_refuses_an_app_that_exists() {
    let (dir, project) = new_project();
    let output = run(kiln(dir.path()).args(["startapp", "blog", "--project", "demo"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("cargo run -- routes"));
    let template = fs::read_to_string(project.join("src/blog/templates/blog/index.html")).unwrap();
    assert!(template.contains("<h1>blog</h1>"), "{template}");
    let main = fs::read_to_string(project.join("src/main.rs")).unwrap();
    let before = tree(&project);

    for name in ["blog", "pages"] {
        let message = refused(kiln(&project).args(["startapp", name]));
        assert!(message.contains("already exists"), "{message}");
    }
    assert_eq!(tree(&project), before);
    assert_eq!(
        fs::read_to_string(project.join("src/main.rs")).unwrap(),
        main
    );
}

#[test]
fn startapp_without_markers_writes_nothing_and_says_what_to_add() {
    let (_dir, project) = new_project();
    let main_rs = project.join("src/main.rs");
    let without_mount = fs::read_to_string(&main_rs)
        .unwrap()
        .replace("// kiln:mount\n", "");
    fs::write(&main_rs, &without_mount).unwrap();
    let before = tree(&project);

    let message = refused(kiln(&project).args(["startapp", "blog"]));
    assert!(
        message.contains("no `// kiln:mount` line") && message.contains("nothing was written"),
        "{message}"
    );
    assert!(
        message.contains(".mount(\"/blog\", blog::app())"),
        "{message}"
    );
    assert_eq!(tree(&project), before);
    assert_eq!(fs::read_to_string(&main_rs).unwrap(), without_mount);
}

/// A child process killed when the test ends, even by a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo` with the generated project's target folder, and without the
/// variables that would change what the project's tests see.
fn cargo(project: &Path, target: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(project).env("CARGO_TARGET_DIR", target);
    without_kiln_env(&mut command);
    command
}

fn without_kiln_env(command: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("KILN_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
}

fn succeeds(command: &mut Command, what: &str) -> String {
    let started = Instant::now();
    eprintln!("kiln-cli: {what} ...");
    let output = run(command);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert!(
        output.status.success(),
        "{what} failed ({}); if a crate is missing for --offline, run `cargo fetch` in the Kiln checkout:\n{log}",
        output.status
    );
    eprintln!(
        "kiln-cli: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    log
}

/// Runs `cargo run -- <command>` in `project` on a pseudo-terminal (through
/// util-linux's `script`, so that the program sees a terminal on stdin) with
/// `typed` as the keyboard input; returns what the terminal showed.
fn answered_on_a_terminal(project: &Path, target: &Path, command: &str, typed: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut script = Command::new("script");
    script
        .args(["--quiet", "--return", "--command"])
        .arg(format!("'{cargo}' run --offline -q -- {command}"))
        .arg("/dev/null")
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    without_kiln_env(&mut script);
    let mut child = script
        .spawn()
        .expect("`script` (util-linux) runs a command on a pseudo-terminal");
    // The terminal keeps the typed line until the program reads it; the end
    // of the input afterwards answers "no" to any further question.
    let mut keyboard = child.stdin.take().expect("stdin is piped");
    keyboard
        .write_all(typed.as_bytes())
        .expect("`script` reads what is typed");
    drop(keyboard);
    let output = child.wait_with_output().expect("`script` runs to the end");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert!(
        output.status.success(),
        "{command} on a terminal failed:\n{shown}"
    );
    shown
}

/// A minimal HTTP/1.1 GET: the status and the body, or `None` if nothing answers yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Builds Kiln once in `<target>/kiln-new-test` (about 1.5 minutes cold on two
/// cores, seconds after that); `cargo test -p kiln-cli -- --nocapture` shows
/// the progress.
#[test]
fn new_project_with_an_app_builds_tests_and_serves() {
    let (dir, project) = new_project();
    let output = run(kiln(dir.path()).args(["startapp", "blog", "--project", "demo"]));
    assert!(output.status.success(), "{}", stderr(&output));

    // Next to the kiln binary, so that reruns are incremental and a custom
    // CARGO_TARGET_DIR of the checkout is honoured.
    let target = Path::new(env!("CARGO_BIN_EXE_kiln"))
        .ancestors()
        .nth(2)
        .expect("the binary is in <target>/<profile>/")
        .join("kiln-new-test");
    // Django's loop: declare a model, makemigrations, migrate.
    let blog = project.join("src/blog");
    fs::write(
        blog.join("models.rs"),
        "pub mod entry {\n    use kiln::db::prelude::*;\n\n    #[sea_orm::model]\n    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]\n    #[sea_orm(table_name = \"blog_entry\")]\n    pub struct Model {\n        #[sea_orm(primary_key)]\n        pub id: i64,\n        pub title: String,\n    }\n\n    impl ActiveModelBehavior for ActiveModel {}\n}\n",
    )
    .unwrap();
    let app_rs = project.join("src/blog.rs");
    let app = fs::read_to_string(&app_rs).unwrap().replace(
        ".urls(urls::urls())",
        ".model::<models::entry::Entity>()\n        .urls(urls::urls())",
    );
    fs::write(&app_rs, app).unwrap();
    let made = succeeds(
        cargo(&project, &target).args([
            "run",
            "--offline",
            "-q",
            "--",
            "makemigrations",
            "--no-input",
        ]),
        "makemigrations in the generated project",
    );
    assert!(made.contains("Create model blog_entry"), "{made}");
    assert!(blog.join("migrations/m0001_initial.rs").is_file());
    let migrated = succeeds(
        cargo(&project, &target).args(["run", "--offline", "-q", "--", "migrate"]),
        "migrate in the generated project",
    );
    for applied in [
        "Applying sessions.0001_initial... OK",
        "Applying auth.0001_initial... OK",
        "Applying blog.0001_initial... OK",
    ] {
        assert!(migrated.contains(applied), "{applied}: {migrated}");
    }
    let checked = succeeds(
        cargo(&project, &target).args([
            "run",
            "--offline",
            "-q",
            "--",
            "makemigrations",
            "--check",
        ]),
        "makemigrations --check",
    );
    assert!(checked.contains("No changes detected"), "{checked}");
    assert!(project.join("db.sqlite3").is_file());

    // A renamed field is asked about on a real terminal: `script` runs
    // makemigrations on a pseudo-terminal and types the answer.
    let models = fs::read_to_string(blog.join("models.rs")).unwrap();
    fs::write(
        blog.join("models.rs"),
        models.replace("pub title: String", "pub headline: String"),
    )
    .unwrap();
    let asked = answered_on_a_terminal(&project, &target, "makemigrations", "y\n");
    assert!(
        asked.contains("Was the field `blog_entry.title` renamed to `blog_entry.headline`"),
        "{asked}"
    );
    assert!(
        asked.contains("Rename field title on blog_entry to headline"),
        "{asked}"
    );
    let renamed = blog.join("migrations/m0002_rename_blog_entry_title_to_headline.rs");
    assert!(renamed.is_file(), "{asked}");
    let migrated = succeeds(
        cargo(&project, &target).args(["run", "--offline", "-q", "--", "migrate"]),
        "migrate the rename",
    );
    assert!(
        migrated.contains("Applying blog.0002_rename_blog_entry_title_to_headline... OK"),
        "{migrated}"
    );

    let tests = succeeds(
        cargo(&project, &target).args(["test", "--offline"]),
        "cargo test in the generated project (a minute or two the first time)",
    );
    for test in [
        "pages::tests::start_page_names_the_project",
        "blog::tests::index_answers_under_the_app_prefix",
    ] {
        assert!(
            tests.contains(&format!("test {test} ... ok")),
            "{test} did not pass:\n{tests}"
        );
    }
    succeeds(
        cargo(&project, &target).args(["build", "--offline"]),
        "cargo build",
    );
    succeeds(
        cargo(&project, &target).args([
            "clippy",
            "--offline",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
        "cargo clippy -D warnings",
    );

    let demo = target
        .join("debug")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    let binary = |args: &[&str]| {
        let mut command = Command::new(&demo);
        command.current_dir(&project).args(args);
        without_kiln_env(&mut command);
        command
    };
    let routes = run(&mut binary(&["routes"]));
    let table = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.status.success(), "{}", stderr(&routes));
    for expected in [
        "pages:home",
        "blog:index",
        "/blog/",
        "auth:login",
        "/accounts/login/",
    ] {
        assert!(table.contains(expected), "missing {expected} in\n{table}");
    }
    let check = run(&mut binary(&["check"]));
    assert!(check.status.success(), "{}", stderr(&check));

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("server.log");
    let mut server = KillOnDrop(
        binary(&["runserver", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, body) = loop {
        if let Some(answer) = http_get(port, "/") {
            break answer;
        }
        if let Ok(Some(exit)) = server.0.try_wait() {
            panic!(
                "the server exited with {exit}:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer within 60 s:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("It worked!") && body.contains("<strong>demo</strong>"),
        "{body}"
    );
    assert_eq!(
        http_get(port, "/blog/").map(|(status, _)| status),
        Some(200)
    );
}
