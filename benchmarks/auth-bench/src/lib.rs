//! The fixture of the auth benchmark: the showcase project in production
//! mode, in-process ([`TestClient`]), on a fresh SQLite database with the
//! default (database) session store, and two clients on it: one anonymous,
//! one logged in through the login form.
//!
//! `cargo bench -p auth-bench` times, in one run, the same page for both
//! clients and one argon2id password check with the default parameters;
//! the figures are in `benchmarks/RESULTS.md` and `docs/topics/auth.md`.

use kiln::auth::hashers::Hasher;
use kiln::prelude::*;
use kiln::test::TestClient;

/// The page both clients load: the polls index, which renders the base
/// template (and with it `user`) and queries the questions.
pub const PAGE: &str = "/polls/";

/// The benchmark user's password.
pub const PASSWORD: &str = "benchmark horse battery staple";

/// A public key for a benchmark on an in-process client only.
const SECRET: &str = "benchmark-only-secret-key-0123456789abcdef0123456789abcdef012345";

/// Two clients of the same site and database: `anonymous` without a
/// session cookie, `authenticated` logged in as `bench`.
#[derive(Debug)]
pub struct Fixture {
    /// No cookies: no session row is read, `user` is anonymous.
    pub anonymous: TestClient,
    /// Holds the session cookie of a login: every request reads the
    /// session row and loads the user.
    pub authenticated: TestClient,
    /// The `bench` user's stored hash (default argon2id parameters).
    pub hash: String,
}

/// Production-mode settings with the default password parameters and the
/// database session store on `database_url`.
///
/// # Panics
///
/// When the settings do not load (a bug in this file).
#[must_use]
pub fn settings(database_url: &str) -> Settings {
    match Settings::from_toml(&format!(
        "debug = false\nsecret_key = \"{SECRET}\"\nallowed_hosts = [\"testserver\"]\naccess_log = false\ndatabase_url = \"{database_url}\"\n"
    )) {
        Ok(settings) => settings,
        Err(error) => panic!("auth-bench: bad settings: {error}"),
    }
}

impl Fixture {
    /// Migrates a database in `dir`, creates the user and logs one client in.
    ///
    /// # Panics
    ///
    /// When any step fails: the benchmark would measure an error page.
    pub async fn create(dir: &std::path::Path) -> Self {
        let url = format!("sqlite://{}/bench.sqlite3?mode=rwc", dir.display());
        let anonymous = TestClient::with_settings(showcase::project(), settings(&url));
        let authenticated = TestClient::with_settings(showcase::project(), settings(&url));
        let db = anonymous.db().await;
        let user = match kiln::auth::create_user(&db, "bench", "bench@example.com", Some(PASSWORD))
            .await
        {
            Ok(user) => user,
            Err(error) => panic!("auth-bench: cannot create the user: {error}"),
        };
        let login = authenticated
            .post("/accounts/login/")
            .form(&[("username", "bench"), ("password", PASSWORD)])
            .send()
            .await;
        assert_eq!(
            login.status(),
            302,
            "auth-bench: the login failed: {}",
            login.text()
        );
        for (client, expected) in [
            (&anonymous, "Log in"),
            (&authenticated, "Logged in as bench"),
        ] {
            let page = client.get(PAGE).send().await;
            assert_eq!(page.status(), 200, "auth-bench: {PAGE}: {}", page.text());
            assert!(
                page.text().contains(expected),
                "auth-bench: {PAGE} lacks {expected:?}"
            );
        }
        Self {
            anonymous,
            authenticated,
            hash: user.password,
        }
    }
}

/// The hasher of the default settings (`password_hash_*`), and its
/// parameters as a line for the report.
#[must_use]
pub fn default_hasher() -> (Hasher, String) {
    let settings = Settings::default();
    let line = format!(
        "argon2id v19, m = {} KiB, t = {}, p = {}",
        settings.password_hash_memory_kib,
        settings.password_hash_iterations,
        settings.password_hash_parallelism
    );
    match Hasher::from_settings(&settings) {
        Ok(hasher) => (hasher, line),
        Err(error) => panic!("auth-bench: {error}"),
    }
}
