//! A fresh database on every backend, for the query and fixture tests:
//! a SQLite file in a temporary folder, a PostgreSQL schema and a MariaDB /
//! MySQL database named `kiln_q_<random>`, dropped at the end.
//!
//! A server that cannot be reached is skipped with a line on stderr, unless
//! `KILN_REQUIRE_BACKENDS=1` (as in CI), which turns the skip into a panic.
//! `KILN_TEST_POSTGRES_URL` / `KILN_TEST_MYSQL_URL` point at other servers.
//!
//! Cargo also compiles this file as a test target of its own (it finds every
//! `tests/*.rs`); it has no tests there, and its items are `pub` so that
//! neither compilation warns about helpers one of them does not use.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failing setup should stop the test loudly"
)]

use std::time::Duration;

use kiln::db::sea_orm::{ConnectOptions, Database};
use kiln::db::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// One test database.
#[derive(Debug)]
pub struct TestDb {
    /// A pool on the fresh database (on PostgreSQL its schema is the search
    /// path of every connection).
    pub db: DatabaseConnection,
    /// `sqlite`, `postgres` or `mysql`, for assertion messages.
    pub name: &'static str,
    url: String,
    search_path: Option<String>,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// The SQLite file's folder, removed when dropped.
    Folder(#[expect(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    /// `DROP SCHEMA|DATABASE …`, run on a connection to the server's `test`
    /// database; `None` once done.
    Drop {
        admin_url: String,
        sql: Option<String>,
    },
}

impl TestDb {
    /// The backend.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// A second pool on the same database, for tests that want two clients.
    pub async fn connect_again(&self) -> DatabaseConnection {
        connect(&self.url, self.search_path.as_deref())
            .await
            .unwrap()
    }

    /// Closes the pool and drops the database. A test that fails before it
    /// calls this leaves the drop to `Drop`, which runs it on a thread.
    pub async fn finish(mut self) {
        self.db.clone().close().await.unwrap();
        if let Cleanup::Drop { admin_url, sql } = &mut self.cleanup
            && let Some(sql) = sql.take()
        {
            let admin = connect(admin_url, None).await.unwrap();
            admin.execute_unprepared(&sql).await.unwrap();
            admin.close().await.unwrap();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Drop { admin_url, sql } = &mut self.cleanup
            && let Some(sql) = sql.take()
        {
            let admin_url = admin_url.clone();
            // A runtime of its own: `Drop` cannot await, and the test's
            // runtime may be shutting down after a panic.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(admin) = connect(&admin_url, None).await {
                        let _ = admin.execute_unprepared(&sql).await;
                    }
                });
            })
            .join();
        }
    }
}

async fn connect(url: &str, search_path: Option<&str>) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(5)
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if let Some(schema) = search_path {
        options.set_schema_search_path(schema);
    }
    Database::connect(options).await
}

fn random_name() -> String {
    format!(
        "kiln_q_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `None` after printing why, or a panic under `KILN_REQUIRE_BACKENDS=1`.
fn skip(server: &str, address: &str, error: &DbErr) -> Option<TestDb> {
    let message = format!(
        "SKIPPED: {server} at {address} unreachable ({error}); set KILN_REQUIRE_BACKENDS=1 to make this fail"
    );
    assert!(
        std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "{message}"
    );
    eprintln!("{message}");
    None
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_owned()
}

/// A fresh SQLite file, with foreign keys on.
pub async fn sqlite() -> TestDb {
    let folder = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("db.sqlite3").display()
    );
    let db = connect(&url, None).await.unwrap();
    db.execute_unprepared("PRAGMA foreign_keys = ON")
        .await
        .unwrap();
    TestDb {
        db,
        name: "sqlite",
        url,
        search_path: None,
        cleanup: Cleanup::Folder(folder),
    }
}

/// A fresh schema on the PostgreSQL server, or `None` when unreachable.
pub async fn postgres() -> Option<TestDb> {
    let admin_url = std::env::var("KILN_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.into());
    let admin = match connect(&admin_url, None).await {
        Ok(admin) => admin,
        Err(error) => return skip("PostgreSQL", &host_of(&admin_url), &error),
    };
    let schema = random_name();
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let db = connect(&admin_url, Some(&schema)).await.unwrap();
    Some(TestDb {
        db,
        name: "postgres",
        url: admin_url.clone(),
        search_path: Some(schema.clone()),
        cleanup: Cleanup::Drop {
            admin_url,
            sql: Some(format!("DROP SCHEMA \"{schema}\" CASCADE")),
        },
    })
}

/// A fresh database on the MariaDB / MySQL server, or `None` when
/// unreachable.
pub async fn mysql() -> Option<TestDb> {
    let admin_url = std::env::var("KILN_TEST_MYSQL_URL").unwrap_or_else(|_| MYSQL_URL.into());
    let admin = match connect(&admin_url, None).await {
        Ok(admin) => admin,
        Err(error) => return skip("MySQL/MariaDB", &host_of(&admin_url), &error),
    };
    let name = random_name();
    admin
        .execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    let db = connect(&url, None).await.unwrap();
    Some(TestDb {
        db,
        name: "mysql",
        url,
        search_path: None,
        cleanup: Cleanup::Drop {
            admin_url,
            sql: Some(format!("DROP DATABASE `{name}`")),
        },
    })
}

/// SQLite, then each server that answers.
pub async fn backends() -> Vec<TestDb> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all.extend(mysql().await);
    all
}
