//! The `Db` extractor: a handler's connection to the default database.

use super::Connection;
use crate::project::Site;

/// The default database's connection pool, for a handler.
///
/// ```
/// use kiln::prelude::*;
/// use kiln::db::{ConnectionTrait, Db};
///
/// async fn count(Db(db): Db) -> Result<String, kiln::Error> {
///     let backend = db.get_database_backend();
///     Ok(format!("{backend:?}"))
/// }
/// ```
///
/// A database that cannot be reached makes the request fail with a 500
/// whose page, in debug mode, names the database and the fix.
#[derive(Debug, Clone)]
pub struct Db(pub Connection);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Db {
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let site = Site::from_request_parts(parts, state).await?;
        let connection = site
            .databases()
            .default_db()
            .await
            .map_err(crate::Error::internal)?;
        Ok(Self(Connection::from(connection.clone())))
    }
}

impl std::ops::Deref for Db {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}
