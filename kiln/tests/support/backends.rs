//! A fresh, throwaway database on each backend, for tests that run real SQL.
//!
//! A test file includes it with
//! `#[path = "support/backends.rs"] pub mod backends;` (a file directly in
//! `tests/` would be a test crate of its own; `pub` keeps the items a file
//! does not use from warning).
//!
//! [`connect`] gives a connection to an empty database of its own: a
//! temporary SQLite file, a new PostgreSQL schema (`kiln_t_<random>`, set as
//! every connection's `search_path`) or a new MariaDB/MySQL database. The
//! schema or database is dropped when the [`TestDatabase`] is dropped, even
//! when the test panics, or by [`TestDatabase::finish`].
//!
//! The servers are `postgres://postgres@127.0.0.1:5432/test` and
//! `mysql://root@127.0.0.1:3306/test`, or the URLs in `KILN_TEST_POSTGRES_URL`
//! and `KILN_TEST_MYSQL_URL`. A server that cannot be reached skips the test
//! with a `SKIPPED:` line on stderr, unless `KILN_REQUIRE_BACKENDS=1` (as in
//! CI), which makes it fail instead.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// The PostgreSQL server used when `KILN_TEST_POSTGRES_URL` is not set.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The MariaDB/MySQL server used when `KILN_TEST_MYSQL_URL` is not set.
pub const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// How many connections a test's pool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// One connection, so that per-connection state holds for every
    /// statement: the migration executor needs it on SQLite, where a table
    /// rebuild turns `PRAGMA foreign_keys` off on the connection it runs on.
    One,
    /// A few, for tests that hold a transaction open while querying.
    Several,
}

/// A connection to a database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// A pool on the fresh database.
    pub db: DatabaseConnection,
    /// Its backend.
    pub backend: DbBackend,
    url: String,
    search_path: Option<String>,
    pool: Pool,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// The temporary directory holding the SQLite file, removed on drop.
    Sqlite(
        #[expect(dead_code, reason = "held only to be dropped with the database")]
        tempfile::TempDir,
    ),
    /// `DROP SCHEMA|DATABASE …` on the server's own database; `None` once run.
    Server {
        admin_url: String,
        drop_sql: Option<String>,
    },
}

/// A fresh database on `backend` with a pool of one, or `None` (after a
/// `SKIPPED:` line on stderr) when its server cannot be reached and
/// `KILN_REQUIRE_BACKENDS` is not `1`.
///
/// # Panics
///
/// When the server is unreachable and `KILN_REQUIRE_BACKENDS=1`, or when
/// the server answers but refuses to create the database.
pub async fn connect(backend: DbBackend) -> Option<TestDatabase> {
    connect_with(backend, Pool::One).await
}

/// [`connect`], with the pool size chosen.
///
/// # Panics
///
/// As [`connect`].
pub async fn connect_with(backend: DbBackend, pool: Pool) -> Option<TestDatabase> {
    match backend {
        DbBackend::Sqlite => Some(sqlite(pool).await),
        DbBackend::Postgres => {
            let admin_url = url("KILN_TEST_POSTGRES_URL", POSTGRES_URL);
            let name = fresh_name();
            let admin = reach("PostgreSQL", &admin_url).await?;
            run(&admin, &format!("CREATE SCHEMA \"{name}\"")).await;
            let _ = admin.close().await;
            let drop_sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
            Some(
                open(
                    backend,
                    admin_url.clone(),
                    Some(name),
                    pool,
                    admin_url,
                    drop_sql,
                )
                .await,
            )
        }
        DbBackend::MySql => {
            let admin_url = url("KILN_TEST_MYSQL_URL", MYSQL_URL);
            let name = fresh_name();
            let admin = reach("MySQL/MariaDB", &admin_url).await?;
            run(
                &admin,
                &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
            )
            .await;
            let _ = admin.close().await;
            let database_url = match admin_url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => panic!("{admin_url} names no database"),
            };
            let drop_sql = format!("DROP DATABASE IF EXISTS `{name}`");
            Some(open(backend, database_url, None, pool, admin_url, drop_sql).await)
        }
        other => panic!("no test database for {other:?}"),
    }
}

/// A fresh SQLite database, then one on each server that answers; pools of
/// several connections.
pub async fn all() -> Vec<TestDatabase> {
    let mut all = Vec::new();
    for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
        all.extend(connect_with(backend, Pool::Several).await);
    }
    all
}

impl TestDatabase {
    /// `sqlite`, `postgres` or `mysql`, for assertion messages.
    pub fn label(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "postgres",
            DbBackend::MySql => "mysql",
            _ => "sqlite",
        }
    }

    /// A URL that reaches this database, for settings (`database_url`) of
    /// a test client: on PostgreSQL it sets the test's schema as the
    /// search path.
    pub fn url(&self) -> String {
        match &self.search_path {
            Some(schema) => format!("{}?options[search_path]={schema}", self.url),
            None => self.url.clone(),
        }
    }

    /// A second pool on the same database, for tests that want two clients.
    ///
    /// # Panics
    ///
    /// When the database no longer accepts connections.
    pub async fn connect_again(&self) -> DatabaseConnection {
        self.reconnect(self.pool).await
    }

    /// A pool of one connection on the same database, for the migration
    /// executor, which needs one on SQLite.
    ///
    /// # Panics
    ///
    /// When the database no longer accepts connections.
    pub async fn connect_alone(&self) -> DatabaseConnection {
        self.reconnect(Pool::One).await
    }

    async fn reconnect(&self, size: Pool) -> DatabaseConnection {
        pool(&self.url, self.search_path.as_deref(), size)
            .await
            .unwrap_or_else(|error| panic!("cannot connect again to {}: {error}", self.url))
    }

    /// Closes the pool and drops the database now. A test that fails before
    /// it calls this leaves the drop to `Drop`, which runs it on a thread.
    ///
    /// # Panics
    ///
    /// When the server refuses the drop.
    pub async fn finish(mut self) {
        let _ = self.db.clone().close().await;
        if let Cleanup::Server {
            admin_url,
            drop_sql,
        } = &mut self.cleanup
            && let Some(sql) = drop_sql.take()
        {
            drop_database(admin_url, &sql)
                .await
                .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"));
        }
    }
}

async fn sqlite(pool_size: Pool) -> TestDatabase {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("test.sqlite3").display()
    );
    let db = pool(&url, None, pool_size)
        .await
        .expect("SQLite opens a file in a temporary directory");
    // sqlx turns foreign keys on for every connection it opens; said again
    // here so that a change of that default cannot weaken the tests.
    run(&db, "PRAGMA foreign_keys = ON").await;
    TestDatabase {
        db,
        backend: DbBackend::Sqlite,
        url,
        search_path: None,
        pool: pool_size,
        cleanup: Cleanup::Sqlite(directory),
    }
}

async fn open(
    backend: DbBackend,
    url: String,
    search_path: Option<String>,
    pool_size: Pool,
    admin_url: String,
    drop_sql: String,
) -> TestDatabase {
    let db = pool(&url, search_path.as_deref(), pool_size)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    TestDatabase {
        db,
        backend,
        url,
        search_path,
        pool: pool_size,
        cleanup: Cleanup::Server {
            admin_url,
            drop_sql: Some(drop_sql),
        },
    }
}

async fn pool(
    url: &str,
    search_path: Option<&str>,
    size: Pool,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = options(url);
    if size == Pool::Several {
        options.max_connections(5);
    }
    if let Some(schema) = search_path {
        // Tests change the schema under statements they ran before;
        // PostgreSQL refuses a cached plan whose result type changed.
        options
            .set_schema_search_path(schema)
            .map_sqlx_postgres_opts(|options| options.statement_cache_capacity(0));
    }
    Database::connect(options).await
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

fn url(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
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
            skip_unreachable(&format!("{server} at {address} unreachable ({error})"));
            None
        }
    }
}

/// Reports a server that does not answer: a `SKIPPED:` line on stderr, or
/// a panic under `KILN_REQUIRE_BACKENDS=1` (as in CI).
///
/// # Panics
///
/// Under `KILN_REQUIRE_BACKENDS=1`.
pub fn skip_unreachable(message: &str) {
    if std::env::var("KILN_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("{message}; KILN_REQUIRE_BACKENDS=1 requires every backend");
    }
    eprintln!("SKIPPED: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail");
}

async fn run(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"));
}

async fn drop_database(admin_url: &str, sql: &str) -> Result<(), DbErr> {
    let admin = Database::connect(options(admin_url)).await?;
    admin.execute_unprepared(sql).await?;
    let _ = admin.close().await;
    Ok(())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Server {
            admin_url,
            drop_sql,
        } = &mut self.cleanup
        else {
            return;
        };
        let Some(sql) = drop_sql.take() else {
            return;
        };
        // Drop is not async and may run inside the test's runtime (or while
        // it shuts down after a panic), so the clean-up gets a thread and a
        // runtime of its own.
        let admin_url = admin_url.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime
                .block_on(drop_database(&admin_url, &sql))
                .map_err(|error| error.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!(
                "could not clean up a {} test database: {error}",
                self.label()
            ),
            Err(_) => eprintln!("clean-up of a {} test database panicked", self.label()),
        }
    }
}
