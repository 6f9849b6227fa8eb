//! Connecting to the project's databases: URLs from settings, pools, and
//! errors that name the database (password masked) and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::OnceCell;

use super::DatabaseRouter;
use crate::settings::Settings;

/// The name of the database that `database_url` configures.
pub const DEFAULT_DATABASE: &str = "default";

/// How to reach one database, resolved from settings.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `default`, or the name of a `[databases.NAME]` table.
    pub name: String,
    /// The URL, with a relative SQLite path made absolute against the
    /// project folder.
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("name", &self.name)
            .field("url", &mask_password(&self.url))
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl DatabaseConfig {
    /// Every database the settings name, the default one first.
    #[must_use]
    pub fn all(settings: &Settings, root: &Path) -> Vec<Self> {
        let config = |name: &str, url: &str, max_connections: Option<u32>| Self {
            name: name.to_owned(),
            url: absolute_sqlite_url(url, root),
            max_connections: max_connections.unwrap_or(settings.database_max_connections),
            min_connections: settings.database_min_connections,
            connect_timeout: settings.database_connect_timeout.0,
            acquire_timeout: settings.database_acquire_timeout.0,
        };
        std::iter::once(config(DEFAULT_DATABASE, &settings.database_url, None))
            .chain(
                settings
                    .databases
                    .iter()
                    .map(|(name, db)| config(name, &db.url, db.max_connections)),
            )
            .collect()
    }

    /// Which SQL dialect the URL speaks.
    #[must_use]
    pub fn backend(&self) -> DbBackend {
        backend_of(&self.url).unwrap_or(DbBackend::Sqlite)
    }

    /// Opens a pool and checks that the database answers.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the database, its URL (password masked),
    /// what went wrong and how to fix it.
    pub async fn connect(&self) -> Result<DatabaseConnection, ConnectError> {
        self.connect_with(self.max_connections).await
    }

    /// As [`connect`](Self::connect), with a pool of `max_connections`. The
    /// migration executor uses one connection, because SQLite's
    /// `PRAGMA foreign_keys` is per connection.
    pub(crate) async fn connect_with(
        &self,
        max_connections: u32,
    ) -> Result<DatabaseConnection, ConnectError> {
        let error = |problem: String, fix: &str| ConnectError {
            name: self.name.clone(),
            url: mask_password(&self.url),
            problem,
            fix: fix.to_owned(),
        };
        check_url(&self.url).map_err(|problem| error(problem, "check `database_url`"))?;
        let in_memory = self.url.contains(":memory:") || self.url.contains("mode=memory");
        let mut options = ConnectOptions::new(self.url.clone());
        options
            // Every pooled connection to `sqlite::memory:` would see its own
            // empty database; one connection keeps them the same.
            .max_connections(if in_memory { 1 } else { max_connections.max(1) })
            .min_connections(self.min_connections.min(max_connections))
            .connect_timeout(self.connect_timeout)
            .acquire_timeout(self.acquire_timeout)
            .sqlx_logging(false);
        #[cfg(feature = "sqlite")]
        options.map_sqlx_sqlite_opts(|options| {
            use sea_orm::sqlx::sqlite::SqliteJournalMode;
            // WAL lets readers work while one writer writes; foreign
            // keys are off by default in SQLite, on in every other database.
            options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
        let connection = sea_orm::Database::connect(options)
            .await
            .map_err(|source| error(source.to_string(), fix_for(&self.url)))?;
        connection
            .execute_unprepared("SELECT 1")
            .await
            .map_err(|source| error(source.to_string(), fix_for(&self.url)))?;
        Ok(connection)
    }
}

/// A database that could not be reached or refused the connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot connect to database `{name}` at {url}: {problem}\n  fix: {fix}")]
pub struct ConnectError {
    /// `default` or the name from `[databases.NAME]`.
    pub name: String,
    /// The URL with its password masked.
    pub url: String,
    pub problem: String,
    pub fix: String,
}

fn fix_for(url: &str) -> &'static str {
    match backend_of(url) {
        Ok(DbBackend::Postgres) => {
            "check that PostgreSQL is running and that the host, port, user, password and database name in the URL are right (`psql URL` should connect)"
        }
        Ok(DbBackend::MySql) => {
            "check that MySQL/MariaDB is running and that the host, port, user, password and database name in the URL are right (`mariadb` should connect with them)"
        }
        _ => "check that the folder of the SQLite file exists and is writable",
    }
}

fn backend_of(url: &str) -> Result<DbBackend, String> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(DbBackend::Sqlite),
        "postgres" | "postgresql" => Ok(DbBackend::Postgres),
        "mysql" | "mariadb" => Ok(DbBackend::MySql),
        _ => Err(format!(
            "`{}` is not a database URL (expected it to start with sqlite:, postgres: or mysql:)",
            mask_password(url)
        )),
    }
}

/// Checks that `url` names a database this build of Kiln can reach.
///
/// # Errors
///
/// A message saying what is wrong: an unknown scheme, or a driver that
/// needs a cargo feature.
pub fn check_url(url: &str) -> Result<(), String> {
    check_url_for(url, Drivers::COMPILED)
}

/// The fix for a URL [`check_url`] refused: a known database whose driver
/// this build lacks, or not a database URL at all.
pub(crate) fn refused_url_fix(url: &str) -> &'static str {
    if backend_of(url).is_ok() {
        "build the project with that feature, or use a URL of a database it supports"
    } else {
        "use sqlite://db.sqlite3, postgres://user:password@host/name or mysql://user:password@host/name"
    }
}

/// Which database drivers a build of Kiln has (its cargo features).
#[derive(Clone, Copy, Debug)]
struct Drivers {
    postgres: bool,
    mysql: bool,
    sqlite: bool,
}

impl Drivers {
    const COMPILED: Self = Self {
        postgres: cfg!(feature = "postgres"),
        mysql: cfg!(feature = "mysql"),
        sqlite: cfg!(feature = "sqlite"),
    };
}

/// [`check_url`] for a build with `drivers`: the tests check the refusals
/// of builds they are not (every test build has SQLite).
fn check_url_for(url: &str, drivers: Drivers) -> Result<(), String> {
    let (compiled, database, feature, default) = match backend_of(url)? {
        DbBackend::Postgres => (drivers.postgres, "PostgreSQL", "postgres", ""),
        DbBackend::MySql => (drivers.mysql, "MySQL", "mysql", ""),
        DbBackend::Sqlite => (drivers.sqlite, "SQLite", "sqlite", "on by default; "),
        // `backend_of` gives no other (sea-orm's enum is non-exhaustive).
        _ => return Ok(()),
    };
    if compiled {
        return Ok(());
    }
    Err(format!(
        "{} needs {database} support, which this build lacks: enable kiln's `{feature}` feature ({default}kiln = {{ features = [\"{feature}\"] }})",
        mask_password(url)
    ))
}

/// `url` with the password replaced by `***`, for messages and logs.
#[must_use]
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `sqlite://db.sqlite3` means the file in the project folder, wherever the
/// command runs from.
fn absolute_sqlite_url(url: &str, root: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return url.to_owned();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with('/') || path.contains(":memory:") {
        return url.to_owned();
    }
    let absolute = root.join(path);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("sqlite://{}{query}", absolute.display())
}

/// The project's databases, connected on first use and shared by every
/// request, with the router that picks one per model.
#[derive(Clone)]
pub struct Databases {
    inner: Arc<BTreeMap<String, (DatabaseConfig, OnceCell<DatabaseConnection>)>>,
    router: Arc<dyn DatabaseRouter>,
}

impl fmt::Debug for Databases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.inner.values().map(|(config, _)| config))
            .finish()
    }
}

impl Databases {
    /// The databases the settings name, routed by `router`; nothing is
    /// connected yet.
    #[must_use]
    pub fn new(configs: Vec<DatabaseConfig>, router: Arc<dyn DatabaseRouter>) -> Self {
        Self {
            inner: Arc::new(
                configs
                    .into_iter()
                    .map(|config| (config.name.clone(), (config, OnceCell::new())))
                    .collect(),
            ),
            router,
        }
    }

    /// The router.
    #[must_use]
    pub fn router(&self) -> &dyn DatabaseRouter {
        &*self.router
    }

    /// The database the router picks to read entity `E`'s table.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn for_read<E: sea_orm::EntityName + Default>(
        &self,
    ) -> Result<&DatabaseConnection, ConnectError> {
        let table = E::default().table_name().to_owned();
        self.get(self.router.db_for_read(&table)).await
    }

    /// The database the router picks to write entity `E`'s table.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn for_write<E: sea_orm::EntityName + Default>(
        &self,
    ) -> Result<&DatabaseConnection, ConnectError> {
        let table = E::default().table_name().to_owned();
        self.get(self.router.db_for_write(&table)).await
    }

    /// The configuration of database `name`.
    #[must_use]
    pub fn config(&self, name: &str) -> Option<&DatabaseConfig> {
        self.inner.get(name).map(|(config, _)| config)
    }

    /// The names of all databases, `default` first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(DEFAULT_DATABASE).chain(
            self.inner
                .keys()
                .map(String::as_str)
                .filter(|name| *name != DEFAULT_DATABASE),
        )
    }

    /// The pool of database `name`, connecting on first use.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when it cannot connect, or when no database has that name.
    pub async fn get(&self, name: &str) -> Result<&DatabaseConnection, ConnectError> {
        let (config, cell) = self.inner.get(name).ok_or_else(|| ConnectError {
            name: name.to_owned(),
            url: "-".to_owned(),
            problem: "no database has this name".to_owned(),
            fix: format!(
                "add a [databases.{name}] table with a `url` to kiln.toml, or use one of: {}",
                self.names().collect::<Vec<_>>().join(", ")
            ),
        })?;
        // Boxed: SeaORM's connect future holds every driver's, several KiB
        // that would otherwise sit inline in the future of every `Db`
        // extractor (and so of every handler taking one) and be copied
        // with it on each request, though it runs once.
        cell.get_or_try_init(|| Box::pin(config.connect())).await
    }

    /// The default database's pool.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn default_db(&self) -> Result<&DatabaseConnection, ConnectError> {
        self.get(DEFAULT_DATABASE).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_without_a_driver_refuses_its_urls_naming_the_feature() {
        let all = Drivers {
            postgres: true,
            mysql: true,
            sqlite: true,
        };
        let without_sqlite = Drivers {
            sqlite: false,
            ..all
        };
        assert_eq!(
            check_url_for("sqlite://db.sqlite3", without_sqlite),
            Err("sqlite://db.sqlite3 needs SQLite support, which this build lacks: enable kiln's `sqlite` feature (on by default; kiln = { features = [\"sqlite\"] })".to_owned())
        );
        assert_eq!(check_url_for("sqlite://db.sqlite3", all), Ok(()));
        assert_eq!(
            check_url_for("postgres://kiln@db/app", without_sqlite),
            Ok(())
        );
        let without_postgres = Drivers {
            postgres: false,
            ..all
        };
        let refused =
            check_url_for("postgres://kiln:s3cret@db/app", without_postgres).expect_err("refused");
        assert!(
            refused.starts_with("postgres://kiln:***@db/app needs PostgreSQL support"),
            "{refused}"
        );
        assert!(refused.contains("kiln's `postgres` feature"), "{refused}");
        let without_mysql = Drivers {
            mysql: false,
            ..all
        };
        assert!(
            check_url_for("mariadb://root@127.0.0.1/test", without_mysql)
                .is_err_and(|refused| refused.contains("kiln's `mysql` feature"))
        );
        assert!(check_url_for("redis://127.0.0.1", all).is_err());
    }

    #[test]
    fn a_refused_url_gets_the_fix_for_its_kind_of_problem() {
        // Chosen by the URL's scheme, not by the words of the message: this
        // one's message ("`featuredb` is not a database URL") says "feature".
        assert!(refused_url_fix("featuredb").starts_with("use sqlite://"));
        assert!(refused_url_fix("mysql://root@db/app").starts_with("build the project"));
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://kiln:s3cret@db.example:5432/app"),
            "postgres://kiln:***@db.example:5432/app"
        );
        assert_eq!(
            mask_password("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(mask_password("sqlite://db.sqlite3"), "sqlite://db.sqlite3");
        assert_eq!(
            mask_password("postgres://u:p@ss@host/db?sslmode=require"),
            "postgres://u:***@host/db?sslmode=require"
        );
    }

    #[test]
    fn relative_sqlite_files_live_in_the_project_folder() {
        let root = Path::new("/srv/site");
        assert_eq!(
            absolute_sqlite_url("sqlite://db.sqlite3", root),
            "sqlite:///srv/site/db.sqlite3"
        );
        assert_eq!(
            absolute_sqlite_url("sqlite://data/x.db?mode=rwc", root),
            "sqlite:///srv/site/data/x.db?mode=rwc"
        );
        assert_eq!(
            absolute_sqlite_url("sqlite:///var/x.db", root),
            "sqlite:///var/x.db"
        );
        assert_eq!(
            absolute_sqlite_url("sqlite::memory:", root),
            "sqlite::memory:"
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let error = check_url("oracle://x").unwrap_err();
        assert!(error.contains("sqlite:, postgres: or mysql:"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_database_names_its_masked_url_and_a_fix() {
        let config = DatabaseConfig {
            name: DEFAULT_DATABASE.to_owned(),
            // Port 1 on loopback: refused at once, no server listens there.
            url: "postgres://kiln:hunter2@127.0.0.1:1/app".to_owned(),
            max_connections: 1,
            min_connections: 0,
            connect_timeout: Duration::from_secs(2),
            acquire_timeout: Duration::from_secs(2),
        };
        let error = config.connect().await.unwrap_err().to_string();
        assert!(
            error.contains("postgres://kiln:***@127.0.0.1:1/app"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        assert!(
            error.contains("fix: check that PostgreSQL is running"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn sqlite_files_are_created_in_wal_mode_with_foreign_keys_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig {
            name: DEFAULT_DATABASE.to_owned(),
            url: absolute_sqlite_url("sqlite://site.db", dir.path()),
            max_connections: 2,
            min_connections: 0,
            connect_timeout: Duration::from_secs(2),
            acquire_timeout: Duration::from_secs(2),
        };
        let db = config.connect().await.unwrap();
        assert!(dir.path().join("site.db").exists());
        let pragma = |sql: &'static str| {
            let db = db.clone();
            async move {
                let row = db
                    .query_one_raw(sea_orm::Statement::from_string(DbBackend::Sqlite, sql))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<String>(0)
                    .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                    .unwrap()
            }
        };
        assert_eq!(pragma("PRAGMA journal_mode").await, "wal");
        assert_eq!(pragma("PRAGMA foreign_keys").await, "1");
    }
}
