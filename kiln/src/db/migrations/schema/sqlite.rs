//! SQLite: `ADD COLUMN`, `DROP COLUMN`, `RENAME COLUMN` and `RENAME TO`
//! where SQLite allows them, and otherwise Django's table rebuild.
//!
//! The rebuild needs foreign key enforcement off around the migration's
//! transaction; see the parent module for what the executor runs.

use sea_query::{Alias, Expr, Func, Query};

use super::{
    Dialect, SchemaError, add_column, create_index, create_model_common, create_table,
    default_expr, drop_column, drop_table, rename_table,
};
use crate::db::migrations::state::{DefaultValue, Field, ModelState};

const LITE: Dialect = Dialect::Sqlite;

pub(super) fn create_model(model: &ModelState) -> Result<Vec<String>, SchemaError> {
    create_model_common(LITE, model)
}

/// `ADD COLUMN` when SQLite accepts it for the field: it must be nullable
/// or have a constant default (so existing rows get a value), and be neither
/// unique, in the primary key nor a foreign key (SQLite would accept a key
/// only with a NULL default; the rebuild handles every key alike).
pub(super) fn add_field(
    old: &ModelState,
    new: &ModelState,
    field: &Field,
) -> Result<Vec<String>, SchemaError> {
    let constant_default = match &field.default {
        None => field.null,
        Some(DefaultValue::Expr(_)) => false,
        Some(_) => true,
    };
    if constant_default
        && !field.unique
        && !new.is_primary_key(&field.name)
        && field.foreign_key.is_none()
        && !field.auto_increment
    {
        Ok(vec![add_column(LITE, new, field)?])
    } else {
        rebuild(old, new)
    }
}

/// `DROP COLUMN` when SQLite accepts it: not unique, not in the primary key
/// and not a foreign key (it refuses columns that a constraint uses).
pub(super) fn remove_field(
    old: &ModelState,
    new: &ModelState,
    field: &Field,
) -> Result<Vec<String>, SchemaError> {
    if field.unique || old.is_primary_key(&field.name) || field.foreign_key.is_some() {
        rebuild(old, new)
    } else {
        Ok(vec![drop_column(LITE, &old.table, &field.name)])
    }
}

/// Rebuilds the table, unless SQLite would declare the column the same
/// (`Integer` to `BigInteger` are both `integer`, enum values are text).
pub(super) fn alter_field(old: &ModelState, new: &ModelState) -> Result<Vec<String>, SchemaError> {
    if create_table(LITE, old, &old.table)? == create_table(LITE, new, &new.table)? {
        return Ok(Vec::new());
    }
    rebuild(old, new)
}

/// Rebuilds the table as `new` describes it and copies the rows of `old`
/// over, as Django does:
///
/// 1. `CREATE TABLE "new__t"` with every column, key and constraint inline;
/// 2. `INSERT INTO "new__t" (...) SELECT ... FROM "t"` for the columns both
///    have (a column that becomes `NOT NULL` with a default takes the
///    default where it was NULL; a new column takes its default);
/// 3. `DROP TABLE "t"`, `ALTER TABLE "new__t" RENAME TO "t"`;
/// 4. the indexes again (they went with the old table).
pub(super) fn rebuild(old: &ModelState, new: &ModelState) -> Result<Vec<String>, SchemaError> {
    let table = new.table.as_str();
    let temporary = format!("new__{table}");
    let mut sql = vec![create_table(LITE, new, &temporary)?];

    let copied: Vec<(&Field, &Field)> = new
        .fields
        .iter()
        .filter_map(|field| old.get_field(&field.name).map(|before| (before, field)))
        .collect();
    if !copied.is_empty() {
        let mut select = Query::select();
        select.from(Alias::new(old.table.as_str()));
        for (before, after) in &copied {
            let column = Expr::col(Alias::new(after.name.as_str()));
            match &after.default {
                Some(default) if before.null && !after.null => {
                    select.expr(Func::coalesce([column, default_expr(default)]));
                }
                _ => {
                    select.expr(column);
                }
            }
        }
        let mut insert = Query::insert();
        insert.into_table(Alias::new(temporary.as_str())).columns(
            copied
                .iter()
                .map(|(_, after)| Alias::new(after.name.as_str())),
        );
        insert
            .select_from(select)
            .expect("the select has one expression per inserted column");
        sql.push(insert.to_string(sea_query::SqliteQueryBuilder));
    }

    sql.push(drop_table(LITE, &old.table));
    sql.push(rename_table(LITE, &temporary, table));
    sql.extend(
        new.indexes
            .iter()
            .map(|index| create_index(LITE, table, index)),
    );
    Ok(sql)
}
