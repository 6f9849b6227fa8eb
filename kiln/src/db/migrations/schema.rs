//! Placeholder until the schema editor lands (branch `schema-editor`):
//! every operation yields no SQL.
use super::operations::Operation;
use super::state::ProjectState;

/// An operation the schema editor cannot express.
#[derive(Debug, thiserror::Error)]
#[error("the schema editor is not built yet")]
pub struct SchemaError;

pub(crate) fn schema_sql(
    _operation: &Operation,
    _app: &str,
    _before: &ProjectState,
    _after: &ProjectState,
    _backend: sea_orm::DbBackend,
) -> Result<Vec<String>, SchemaError> {
    Ok(Vec::new())
}
