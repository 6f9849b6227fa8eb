//! [`Connection`]: a database's pool as handlers use it, SeaORM's
//! `DatabaseConnection` with a shorter path for each statement.
//!
//! SeaORM's `DatabaseConnection` runs a statement through one `async fn`
//! whose future holds, inline, the futures of every driver it was built
//! with, wrapped in its tracing span: 15–18 KiB, built on the stack and
//! moved into a box on every query, then moved again by the caller.
//! Copying it cost about 37,000 instructions per query, more than sqlx
//! spends on the query itself (`benchmarks/orm-bench/README.md`). Here each
//! statement goes straight to the sqlx pool of the backend in use, through
//! the same SQL and bind values SeaORM built, and comes back as SeaORM's
//! `QueryResult`, so models, `ActiveModel`s and every SeaORM query work
//! unchanged; the future is a few hundred bytes. Transactions, streams and
//! anything else go to the `DatabaseConnection` inside, which `Connection`
//! dereferences to.

use std::ops::Deref;

use sea_orm::AccessMode;
use sea_orm::sqlx::{self, Database, IntoArguments};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseConnectionType,
    DatabaseTransaction, DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, RuntimeErr,
    Statement, TransactionError, TransactionOptions, TransactionTrait,
};
use sea_query::Values;
use sea_query_sqlx::SqlxValues;

/// A database's connection pool: what the [`Db`](super::Db) extractor
/// holds. It is SeaORM's `DatabaseConnection` (it dereferences to one, and
/// converts from one) with a faster way to run each statement; pass `&db`
/// wherever SeaORM asks for a connection.
#[derive(Clone, Debug)]
pub struct Connection(DatabaseConnection);

impl Connection {
    /// The SeaORM connection inside.
    #[must_use]
    pub fn into_inner(self) -> DatabaseConnection {
        self.0
    }
}

impl From<DatabaseConnection> for Connection {
    fn from(connection: DatabaseConnection) -> Self {
        Self(connection)
    }
}

impl Deref for Connection {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.0
    }
}

/// The sqlx query for a statement SeaORM built: its SQL, prepared and
/// cached per connection by sqlx, and its bind values.
///
/// The statement is taken by value: sqlx copies a borrowed SQL string into
/// a new `Arc<str>` and the values would need a clone, two allocations per
/// query that an owned `String` and `Values` avoid.
fn query<DB: Database>(stmt: Statement) -> sqlx::query::Query<'static, DB, SqlxValues>
where
    SqlxValues: IntoArguments<DB>,
{
    let values = stmt.values.unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values))
}

/// sqlx's errors as SeaORM reports them (`sqlx_conn_acquire_err` and the
/// others are private to SeaORM): a pool that timed out or closed is a
/// connection error, anything else `wrap`'s kind.
fn from_sqlx(error: sqlx::Error, wrap: fn(RuntimeErr) -> DbErr) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => wrap(RuntimeErr::SqlxError(std::sync::Arc::new(other))),
    }
}

/// Runs `$run` with `$pool` bound to the sqlx pool of the backend in use
/// (each arm with its own concrete pool type), or awaits `$fallback` when
/// the connection is not an sqlx pool.
macro_rules! on_pool {
    ($connection:expr, |$pool:ident| $run:expr, $fallback:expr) => {
        match &$connection.inner {
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                let $pool = $connection.get_postgres_connection_pool();
                $run
            }
            #[cfg(feature = "mysql")]
            DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
                let $pool = $connection.get_mysql_connection_pool();
                $run
            }
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                let $pool = $connection.get_sqlite_connection_pool();
                $run
            }
            _ => $fallback.await,
        }
    };
}

#[async_trait::async_trait]
impl ConnectionTrait for Connection {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        on_pool!(
            self.0,
            |pool| query(stmt)
                .execute(pool)
                .await
                .map(ExecResult::from)
                .map_err(|error| from_sqlx(error, DbErr::Exec)),
            self.0.execute_raw(stmt)
        )
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        on_pool!(
            self.0,
            |pool| query(stmt)
                .fetch_optional(pool)
                .await
                .map(|row| row.map(QueryResult::from))
                .map_err(|error| from_sqlx(error, DbErr::Query)),
            self.0.query_one_raw(stmt)
        )
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        on_pool!(
            self.0,
            |pool| query(stmt)
                .fetch_all(pool)
                .await
                .map(|rows| rows.into_iter().map(QueryResult::from).collect())
                .map_err(|error| from_sqlx(error, DbErr::Query)),
            self.0.query_all_raw(stmt)
        )
    }
}

/// Transactions are SeaORM's own: `begin` and `transaction` hand out its
/// `DatabaseTransaction`.
#[async_trait::async_trait]
impl TransactionTrait for Connection {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin_with_config(isolation_level, access_mode).await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.0.begin_with_options(options).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.0.transaction(callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.0
            .transaction_with_config(callback, isolation_level, access_mode)
            .await
    }
}
