//! [`DatabaseStore`]: sessions in the `kiln_session` table of the project's
//! default database, created by the sessions app's migration.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};

use super::store::{BoxFuture, Data, SessionStore, StoreError};
use crate::db::{DatabaseConnection, Databases};

/// The table, as the sessions app's migration creates it.
pub(crate) const TABLE: &str = "kiln_session";

/// Sessions in the default database: one row per session, its key, its
/// data as JSON text and when it expires. `clearsessions` deletes the
/// expired rows; until then an expired row loads as an empty session.
#[derive(Debug, Clone)]
pub struct DatabaseStore {
    databases: Databases,
}

impl DatabaseStore {
    /// The store on the default database of `databases`, connected on first use.
    #[must_use]
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }

    async fn db(&self, action: &'static str) -> Result<&DatabaseConnection, StoreError> {
        self.databases.default_db().await.map_err(|error| {
            StoreError::new(
                self.describe(),
                action,
                error,
                "check `database_url` and that the database server is up",
            )
        })
    }

    fn failed(&self, action: &'static str, error: impl std::fmt::Display) -> StoreError {
        StoreError::new(
            self.describe(),
            action,
            error,
            format!(
                "run `migrate` so that the `{TABLE}` table exists, and check that the database server is up"
            ),
        )
    }
}

/// Now, to the second: every timestamp the store writes and compares has
/// the same text form, which SQLite compares as text.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

impl SessionStore for DatabaseStore {
    fn describe(&self) -> String {
        "database".to_owned()
    }

    fn load<'a>(&'a self, cookie: &'a str) -> BoxFuture<'a, Option<Data>> {
        Box::pin(async move {
            // A cookie that cannot be a key is not worth a query.
            if !super::is_session_key(cookie) {
                return Ok(None);
            }
            let action = "load a session";
            let db = self.db(action).await?;
            let select = Query::select()
                .column("session_data")
                .from(TABLE)
                .and_where(Expr::col("session_key").eq(cookie))
                .and_where(Expr::col("expire_date").gt(now()))
                .to_owned();
            let row = db
                .query_one(&select)
                .await
                .map_err(|error| self.failed(action, error))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let text: String = row
                .try_get("", "session_data")
                .map_err(|error| self.failed(action, error))?;
            Ok(super::parse_data(&text))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        data: &'a Data,
        expires: DateTime<Utc>,
    ) -> BoxFuture<'a, String> {
        Box::pin(async move {
            let action = "save a session";
            let text = serde_json::to_string(data).map_err(|error| self.failed(action, error))?;
            let db = self.db(action).await?;
            let upsert = Query::insert()
                .into_table(TABLE)
                .columns(["session_key", "session_data", "expire_date"])
                .values([key.into(), text.into(), expires.trunc_subsecs(0).into()])
                .map_err(|error| self.failed(action, error))?
                .on_conflict(
                    OnConflict::column("session_key")
                        .update_columns(["session_data", "expire_date"])
                        .to_owned(),
                )
                .to_owned();
            db.execute(&upsert)
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(key.to_owned())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let action = "delete a session";
            let db = self.db(action).await?;
            let delete = Query::delete()
                .from_table(TABLE)
                .and_where(Expr::col("session_key").eq(key))
                .to_owned();
            db.execute(&delete)
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(())
        })
    }

    fn delete_expired(&self) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let action = "delete expired sessions";
            let db = self.db(action).await?;
            let delete = Query::delete()
                .from_table(TABLE)
                .and_where(Expr::col("expire_date").lte(now()))
                .to_owned();
            let result = db
                .execute(&delete)
                .await
                .map_err(|error| self.failed(action, error))?;
            Ok(result.rows_affected())
        })
    }
}
