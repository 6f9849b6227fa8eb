//! Models and databases: SeaORM entities, connections and migrations.
//!
//! A model is a SeaORM 2 entity; an app registers its models and its
//! migrations, and `makemigrations` / `migrate` keep the database in step.
//! What a model file needs is re-exported here, so an app depends on `kiln`
//! alone.

pub(crate) mod commands;
mod connect;
mod extract;
pub mod migrations;

pub use connect::{
    ConnectError, DEFAULT_DATABASE, DatabaseConfig, Databases, check_url, mask_password,
};
pub use extract::Db;
pub use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
