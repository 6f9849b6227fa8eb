//! Models and databases: SeaORM entities, connections and migrations.
//!
//! A model is a SeaORM 2 entity; an app registers its models and its
//! migrations, and `makemigrations` / `migrate` keep the database in step.
//! What a model file needs is re-exported here, so an app depends on `kiln`
//! alone.

pub(crate) mod commands;
mod connect;
mod connection;
mod extract;
pub mod fixtures;
pub mod migrations;
pub mod models;
pub(crate) mod options;
mod query;
mod router;

pub(crate) use connect::refused_url_fix;
pub use connect::{
    ConnectError, DEFAULT_DATABASE, DatabaseConfig, Databases, check_url, mask_password,
};
pub use connection::Connection;
pub use extract::Db;
pub use options::{FieldOptions, ModelEntry, ModelOptions};
pub use query::{
    AggregateExt, AggregateValue, Page, PageLink, Paginator, atomic, bulk_create,
    get_object_or_404, get_or_create, max_bind_params, update_or_create,
};
pub use router::{DatabaseRouter, DefaultRouter, ReadReplicas};
pub use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
pub use sea_orm::{
    DbBackend, PaginatorTrait, SelectExt, SqlErr, TransactionError, TransactionSession,
    TransactionTrait,
};

/// SeaORM itself, for what the prelude does not cover.
pub use sea_orm;

/// What a model file needs: `use kiln::db::prelude::*;`.
///
/// It brings `sea_orm` into scope under that name, which SeaORM's macros
/// expect, so an app depends on `kiln` alone:
///
/// ```
/// pub mod question {
///     use kiln::db::prelude::*;
///
///     #[sea_orm::model]
///     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
///     #[sea_orm(table_name = "polls_question")]
///     pub struct Model {
///         #[sea_orm(primary_key)]
///         pub id: i64,
///         pub question_text: String,
///     }
///
///     impl ActiveModelBehavior for ActiveModel {}
/// }
/// ```
pub mod prelude {
    pub use super::AggregateExt;
    pub use sea_orm;
    pub use sea_orm::entity::prelude::*;
    pub use sea_orm::sea_query::ExprTrait;
    pub use sea_orm::{
        ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, Condition, IntoActiveModel, Order,
        PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    };
}
