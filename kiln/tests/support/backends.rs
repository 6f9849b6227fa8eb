//! A fresh, throwaway database on each backend, for tests that run real SQL.
//!
//! A test file includes it with
//! `#[path = "support/backends.rs"] mod backends;` (a file directly in
//! `tests/` would be a test crate of its own).
//!
//! [`connect`] gives a connection to an empty database of its own: a
//! temporary SQLite file, a new PostgreSQL schema (`kiln_t_<random>`, set as
//! the connection's `search_path`) or a new MariaDB/MySQL database. The
//! schema or database is dropped when the [`TestDatabase`] is dropped, even
//! when the test panics.
//!
//! The servers are `postgres://postgres@127.0.0.1:5432/test` and
//! `mysql://root@127.0.0.1:3306/test`, or the URLs in `KILN_TEST_POSTGRES_URL`
//! and `KILN_TEST_MYSQL_URL`. A server that cannot be reached skips the test
//! with a `SKIPPED:` line on stderr, unless `KILN_REQUIRE_BACKENDS=1` (as in
//! CI), which makes it fail instead.
//!
//! Each connection is a pool of one, so that per-connection settings
//! (SQLite's `PRAGMA foreign_keys`, PostgreSQL's `search_path`) hold for
//! every statement.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// The PostgreSQL server used when `KILN_TEST_POSTGRES_URL` is not set.
pub(crate) const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The MariaDB/MySQL server used when `KILN_TEST_MYSQL_URL` is not set.
pub(crate) const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A connection to a database that exists for one test.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: DbBackend,
    /// The PostgreSQL schema or MySQL database created for the test.
    pub(crate) name: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// The temporary directory holding the SQLite file, removed on drop.
    Sqlite(
        #[expect(dead_code, reason = "held only to be dropped with the database")]
        tempfile::TempDir,
    ),
    Server {
        admin_url: String,
        drop_sql: String,
    },
}

/// A fresh database on `backend`, or `None` (after a `SKIPPED:` line on
/// stderr) when its server cannot be reached and `KILN_REQUIRE_BACKENDS` is
/// not `1`.
///
/// # Panics
///
/// When the server is unreachable and `KILN_REQUIRE_BACKENDS=1`, or when
/// the server answers but refuses to create the database.
pub(crate) async fn connect(backend: DbBackend) -> Option<TestDatabase> {
    match backend {
        DbBackend::Sqlite => Some(sqlite().await),
        DbBackend::Postgres => {
            let url = url("KILN_TEST_POSTGRES_URL", POSTGRES_URL);
            let name = fresh_name();
            let admin = reach("PostgreSQL", &url).await?;
            run(&admin, &format!("CREATE SCHEMA \"{name}\"")).await;
            let _ = admin.close().await;
            let mut options = options(&url);
            // Tests change the schema under statements they ran before;
            // PostgreSQL refuses a cached plan whose result type changed.
            options
                .set_schema_search_path(name.clone())
                .map_sqlx_postgres_opts(|options| options.statement_cache_capacity(0));
            let db = Database::connect(options)
                .await
                .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
            Some(TestDatabase {
                db,
                backend,
                cleanup: Cleanup::Server {
                    admin_url: url,
                    drop_sql: format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"),
                },
                name,
            })
        }
        DbBackend::MySql => {
            let url = url("KILN_TEST_MYSQL_URL", MYSQL_URL);
            let name = fresh_name();
            let admin = reach("MySQL/MariaDB", &url).await?;
            run(&admin, &format!("CREATE DATABASE `{name}`")).await;
            let _ = admin.close().await;
            let database_url = match url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => panic!("{url} names no database"),
            };
            let db = Database::connect(options(&database_url))
                .await
                .unwrap_or_else(|error| panic!("cannot connect to {database_url}: {error}"));
            Some(TestDatabase {
                db,
                backend,
                cleanup: Cleanup::Server {
                    admin_url: url,
                    drop_sql: format!("DROP DATABASE IF EXISTS `{name}`"),
                },
                name,
            })
        }
        other => panic!("no test database for {other:?}"),
    }
}

async fn sqlite() -> TestDatabase {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("test.sqlite3");
    let db = Database::connect(options(&format!("sqlite://{}?mode=rwc", path.display())))
        .await
        .expect("SQLite opens a file in a temporary directory");
    run(&db, "PRAGMA foreign_keys = ON").await;
    TestDatabase {
        db,
        backend: DbBackend::Sqlite,
        name: "main".to_owned(),
        cleanup: Cleanup::Sqlite(directory),
    }
}

fn url(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

fn options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    options
}

fn fresh_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("kiln_t_{}", &random[..12])
}

/// Connects to the server's own database, or reports it unreachable.
async fn reach(server: &str, url: &str) -> Option<DatabaseConnection> {
    // A short wait: a server that is down should skip the test quickly.
    let mut options = options(url);
    options.acquire_timeout(Duration::from_secs(3));
    match Database::connect(options).await {
        Ok(db) => Some(db),
        Err(error) => {
            let address = url.rsplit('@').next().unwrap_or(url);
            let address = address.split('/').next().unwrap_or(address);
            let message = format!("{server} at {address} unreachable ({error})");
            if std::env::var("KILN_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!("{message}; KILN_REQUIRE_BACKENDS=1 requires every backend");
            }
            eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
            None
        }
    }
}

async fn run(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"));
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Server {
            admin_url,
            drop_sql,
        } = &self.cleanup
        else {
            return;
        };
        // Drop is not async and may run inside the test's runtime, so the
        // clean-up gets a thread and a runtime of its own.
        let (admin_url, drop_sql) = (admin_url.clone(), drop_sql.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(options(&admin_url))
                    .await
                    .map_err(|error| error.to_string())?;
                admin
                    .execute_unprepared(&drop_sql)
                    .await
                    .map_err(|error| error.to_string())?;
                let _ = admin.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                eprintln!("could not clean up test database `{}`: {error}", self.name)
            }
            Err(_) => eprintln!("clean-up of test database `{}` panicked", self.name),
        }
    }
}
