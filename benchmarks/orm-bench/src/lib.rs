//! Kiln's ORM path against hand-written sqlx on PostgreSQL: the shared part
//! of the `orm` criterion bench and of the paired run.
//!
//! The workload is TechEmpower's "single query" and "multiple queries"
//! tests without the HTTP server: read one row of `world` by a random
//! primary key and serialise it as JSON, or do that 20 times, one query
//! per row, and serialise the array. Both sides use the same sqlx (SeaORM's,
//! through `kiln::db::sea_orm::sqlx`), the same URL and the same pool size,
//! so what differs is exactly what Kiln's path adds: SeaORM building the
//! statement, its `QueryResult` wrapper and the model.
//!
//! `cargo bench -p orm-bench --bench orm` runs it; `benchmarks/orm-bench/run`
//! runs it in alternating rounds and writes `RESULTS.md`.

use std::time::Duration;

use kiln::db::sea_orm::sqlx::{self, postgres::PgPoolOptions};
use kiln::db::{DatabaseConfig, DatabaseConnection, DbErr};

/// The server used when `ORM_BENCH_POSTGRES_URL` is not set.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The server `migrate100` uses when `ORM_BENCH_MYSQL_URL` is not set.
pub const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// Rows in `world`, as TechEmpower's.
pub const WORLD_ROWS: i32 = 10_000;
/// Queries per "multiple queries" operation (TechEmpower's `?queries=20`).
pub const QUERIES: usize = 20;
/// Connections in each pool; the bench runs one operation at a time, so
/// two would do, but a web server's pool is larger and both sides get the
/// same.
pub const POOL_SIZE: u32 = 8;

/// The `World` model as a Kiln app declares it.
pub mod world {
    use kiln::db::prelude::*;
    use serde::Serialize;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "world")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        #[serde(rename = "randomNumber")]
        pub randomnumber: i32,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The hand-written side's row: the same fields and the same JSON. It is
/// read as an `(i32, i32)` tuple because SeaORM's sqlx is built without
/// its macros (no `FromRow` derive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct World {
    pub id: i32,
    #[serde(rename = "randomNumber")]
    pub randomnumber: i32,
}

/// A fast, seeded generator of ids in `1..=WORLD_ROWS` (xorshift64*), the
/// same for both sides, so that neither pays more for its randomness.
#[derive(Debug, Clone)]
pub struct Ids(u64);

impl Ids {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next id.
    pub fn next_id(&mut self) -> i32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
        // `value` is below 2^32, so the remainder fits in an i32.
        i32::try_from(value % u64::from(WORLD_ROWS.unsigned_abs())).unwrap_or(0) + 1
    }

    /// `QUERIES` ids.
    pub fn twenty(&mut self) -> [i32; QUERIES] {
        std::array::from_fn(|_| self.next_id())
    }
}

/// The two pools over one fresh schema holding `world`.
#[derive(Debug)]
pub struct Fixture {
    /// Kiln's pool, opened as `Databases` opens it.
    pub kiln: DatabaseConnection,
    /// A plain sqlx pool of the same size on the same URL.
    pub sqlx: sqlx::PgPool,
    /// `kiln_bench_<pid>`.
    pub schema: String,
    admin: sqlx::PgPool,
}

/// Why the fixture could not be set up.
#[derive(Debug)]
pub enum FixtureError {
    /// The server did not answer: the bench is skipped.
    Unreachable(String),
    /// The server answered but a statement failed.
    Failed(String),
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(message) | Self::Failed(message) => f.write_str(message),
        }
    }
}

impl Fixture {
    /// Creates schema `kiln_bench_<pid>` with `world` and its 10,000 rows,
    /// and opens both pools on it.
    ///
    /// # Errors
    ///
    /// [`FixtureError::Unreachable`] when PostgreSQL cannot be reached,
    /// [`FixtureError::Failed`] when it refuses a statement.
    pub async fn create(url: &str) -> Result<Self, FixtureError> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(|error| FixtureError::Unreachable(format!("{url}: {error}")))?;
        let schema = format!("kiln_bench_{}", std::process::id());
        let failed = |error: sqlx::Error| FixtureError::Failed(format!("{url}: {error}"));
        let seed = format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE;
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.world (id integer PRIMARY KEY, randomnumber integer NOT NULL);
             INSERT INTO {schema}.world (id, randomnumber)
                 SELECT n, 1 + floor(random() * {WORLD_ROWS})::integer FROM generate_series(1, {WORLD_ROWS}) AS n;
             ANALYZE {schema}.world;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(seed))
            .execute(&admin)
            .await
            .map_err(failed)?;

        // Both pools reach the table through the connection's search_path,
        // set in the URL, so both send the same unqualified table name.
        let separator = if url.contains('?') { '&' } else { '?' };
        let schema_url = format!("{url}{separator}options[search_path]={schema}");
        let config = DatabaseConfig {
            name: kiln::db::DEFAULT_DATABASE.to_owned(),
            url: schema_url.clone(),
            max_connections: POOL_SIZE,
            min_connections: POOL_SIZE,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        };
        let kiln = config
            .connect()
            .await
            .map_err(|error| FixtureError::Failed(error.to_string()))?;
        let sqlx = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&schema_url)
            .await
            .map_err(failed)?;
        let fixture = Self {
            kiln,
            sqlx,
            schema,
            admin,
        };
        fixture.check().await?;
        Ok(fixture)
    }

    /// Both sides read the same row and write the same JSON, and the Kiln
    /// side really goes through the schema's table.
    async fn check(&self) -> Result<(), FixtureError> {
        let kiln = kiln_one(&self.kiln, 42)
            .await
            .map_err(|error| FixtureError::Failed(error.to_string()))?;
        let sqlx = sqlx_one(&self.sqlx, 42)
            .await
            .map_err(|error| FixtureError::Failed(error.to_string()))?;
        if kiln != sqlx || !kiln.starts_with(b"{\"id\":42,\"randomNumber\":") {
            return Err(FixtureError::Failed(format!(
                "the two sides disagree: kiln {}, sqlx {}",
                String::from_utf8_lossy(&kiln),
                String::from_utf8_lossy(&sqlx)
            )));
        }
        let ids = [
            1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765,
            10000,
        ];
        let kiln = kiln_twenty(&self.kiln, ids)
            .await
            .map_err(|error| FixtureError::Failed(error.to_string()))?;
        let sqlx = sqlx_twenty(&self.sqlx, ids)
            .await
            .map_err(|error| FixtureError::Failed(error.to_string()))?;
        if kiln != sqlx {
            return Err(FixtureError::Failed(
                "the two sides disagree on twenty rows".to_owned(),
            ));
        }
        let backend = self.kiln.get_database_backend();
        if backend != kiln::db::sea_orm::DbBackend::Postgres {
            return Err(FixtureError::Failed(format!(
                "Kiln connected to {backend:?}"
            )));
        }
        Ok(())
    }

    /// Closes the pools and drops the schema.
    pub async fn drop_schema(self) {
        let _ = self.kiln.close().await;
        self.sqlx.close().await;
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&self.admin)
            .await
        {
            eprintln!("orm-bench: could not drop schema {}: {error}", self.schema);
        }
        self.admin.close().await;
    }
}

/// An error of either side, as the bench reports it.
#[derive(Debug)]
pub enum QueryError {
    Kiln(DbErr),
    Sqlx(sqlx::Error),
    Missing(i32),
    Json(serde_json::Error),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kiln(error) => write!(f, "kiln: {error}"),
            Self::Sqlx(error) => write!(f, "sqlx: {error}"),
            Self::Missing(id) => write!(f, "no world row {id}"),
            Self::Json(error) => write!(f, "json: {error}"),
        }
    }
}

/// Kiln's path: `world::Entity::find_by_id(id).one(&db)`, then the model
/// as JSON.
///
/// # Errors
///
/// The database's error, or [`QueryError::Missing`].
pub async fn kiln_one(db: &DatabaseConnection, id: i32) -> Result<Vec<u8>, QueryError> {
    use kiln::db::prelude::*;
    let row = world::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(QueryError::Kiln)?
        .ok_or(QueryError::Missing(id))?;
    serde_json::to_vec(&row).map_err(QueryError::Json)
}

/// Kiln's path, 20 queries one after the other, as a JSON array.
///
/// # Errors
///
/// As [`kiln_one`].
pub async fn kiln_twenty(
    db: &DatabaseConnection,
    ids: [i32; QUERIES],
) -> Result<Vec<u8>, QueryError> {
    use kiln::db::prelude::*;
    let mut rows = Vec::with_capacity(QUERIES);
    for id in ids {
        rows.push(
            world::Entity::find_by_id(id)
                .one(db)
                .await
                .map_err(QueryError::Kiln)?
                .ok_or(QueryError::Missing(id))?,
        );
    }
    serde_json::to_vec(&rows).map_err(QueryError::Json)
}

/// The statement both hand-written functions send.
const SELECT_ONE: &str = "SELECT id, randomnumber FROM world WHERE id = $1";

/// Hand-written sqlx: one prepared `SELECT`, then the row as JSON.
///
/// # Errors
///
/// The database's error, or [`QueryError::Missing`].
pub async fn sqlx_one(pool: &sqlx::PgPool, id: i32) -> Result<Vec<u8>, QueryError> {
    let row = fetch(pool, id).await?;
    serde_json::to_vec(&row).map_err(QueryError::Json)
}

/// Hand-written sqlx, 20 queries one after the other, as a JSON array.
///
/// # Errors
///
/// As [`sqlx_one`].
pub async fn sqlx_twenty(pool: &sqlx::PgPool, ids: [i32; QUERIES]) -> Result<Vec<u8>, QueryError> {
    let mut rows = Vec::with_capacity(QUERIES);
    for id in ids {
        rows.push(fetch(pool, id).await?);
    }
    serde_json::to_vec(&rows).map_err(QueryError::Json)
}

async fn fetch(pool: &sqlx::PgPool, id: i32) -> Result<World, QueryError> {
    let (id, randomnumber) = sqlx::query_as::<_, (i32, i32)>(SELECT_ONE)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(QueryError::Sqlx)?
        .ok_or(QueryError::Missing(id))?;
    Ok(World { id, randomnumber })
}

/// CPU time (user + system) the whole process has used, from the
/// scheduler's per-thread accounting (`/proc/self/task/*/schedstat`, in
/// nanoseconds), or `None` where it is not available. Threads that have
/// exited are not counted, which is why the bench's runtime keeps its
/// workers for the whole run.
#[must_use]
pub fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}
