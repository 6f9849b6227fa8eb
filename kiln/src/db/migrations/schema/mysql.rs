//! MySQL and MariaDB: a column changes with `MODIFY COLUMN` and its full new
//! definition; a single-column unique constraint is a unique index.
//!
//! A foreign key cannot be renamed on MariaDB, so a key whose name must
//! follow a renamed table or column is dropped and added again. The index
//! MySQL created for the old key stays (under the old key's name) and serves
//! the new one.

use sea_query::{Alias, Table};

use super::{
    Dialect, SchemaError, add_column, add_foreign_key, column_def, create_index, drop_foreign_key,
    fill_nulls, quote, rename_column, rename_table, render, type_sql, unique_constraint_name,
};
use crate::db::migrations::state::{Field, Index, ModelState};

const MY: Dialect = Dialect::Mysql;

/// Renames the table; keys of other tables that point to it follow by
/// themselves, its own `fk_` keys are recreated and `uq_` indexes renamed.
pub(super) fn rename_model(old: &ModelState, new: &ModelState) -> Vec<String> {
    let mut sql = vec![rename_table(MY, &old.table, &new.table)];
    for (old_field, new_field) in old.fields.iter().zip(&new.fields) {
        sql.extend(rename_constraints(
            &new.table, &old.table, old_field, new_field,
        ));
    }
    sql
}

pub(super) fn add_field(model: &ModelState, field: &Field) -> Result<Vec<String>, SchemaError> {
    let mut sql = vec![add_column(MY, model, field)?];
    if field.unique {
        sql.push(add_unique(&model.table, &field.name));
    }
    sql.extend(add_foreign_key(MY, &model.table, field));
    Ok(sql)
}

/// The key goes first (MySQL refuses to drop a column a key uses); the
/// column's indexes go with it.
pub(super) fn remove_field(model: &ModelState, field: &Field) -> Vec<String> {
    let mut sql: Vec<String> = drop_foreign_key(MY, &model.table, field)
        .into_iter()
        .collect();
    sql.push(super::drop_column(MY, &model.table, &field.name));
    sql
}

pub(super) fn alter_field(
    model: &ModelState,
    old: &Field,
    new: &Field,
) -> Result<Vec<String>, SchemaError> {
    let table = model.table.as_str();
    let column = new.name.as_str();
    let definition = column_def(MY, model, new, false)?;
    let modify = type_sql(MY, old) != type_sql(MY, new)
        || old.ty != new.ty
        || old.null != new.null
        || old.default != new.default
        || old.auto_increment != new.auto_increment;
    let unique_dropped = old.unique && !new.unique;
    // MySQL refuses to change a column a foreign key uses, and to drop the
    // unique index a key relies on, so the key is dropped around either.
    let key_dropped = old.foreign_key.is_some()
        && (old.foreign_key != new.foreign_key || modify || unique_dropped);
    let key_added =
        new.foreign_key.is_some() && (old.foreign_key != new.foreign_key || key_dropped);

    let mut sql = Vec::new();
    if key_dropped {
        sql.extend(drop_foreign_key(MY, table, old));
    }
    if unique_dropped {
        sql.push(super::drop_index(
            MY,
            table,
            &unique_constraint_name(table, column),
        ));
    }
    if modify {
        sql.extend(fill_nulls(MY, table, old, new));
        sql.push(render!(
            MY,
            Table::alter()
                .table(Alias::new(table))
                .modify_column(definition)
        ));
    }
    if new.unique && !old.unique {
        sql.push(add_unique(table, column));
    }
    if key_added {
        sql.extend(add_foreign_key(MY, table, new));
    }
    Ok(sql)
}

/// Drops the index. Once an index starts with a foreign key's column, MySQL
/// silently drops the index it had made for the key, then refuses to drop
/// the new one ("needed in a foreign key constraint"). So unless something
/// else starts with that column, the key is dropped around the index and
/// added again, and MySQL makes its own index for it anew.
pub(super) fn remove_index(model: &ModelState, index: &Index) -> Vec<String> {
    let table = model.table.as_str();
    let covered = |column: &str| {
        model
            .primary_key
            .first()
            .is_some_and(|first| first == column)
            || model.indexes.iter().any(|other| {
                other.name != index.name && other.columns.first().is_some_and(|c| c == column)
            })
    };
    let key = index
        .columns
        .first()
        .and_then(|column| model.get_field(column))
        .filter(|field| field.foreign_key.is_some() && !field.unique && !covered(&field.name));
    let mut sql: Vec<String> = key
        .and_then(|field| drop_foreign_key(MY, table, field))
        .into_iter()
        .collect();
    sql.push(super::drop_index(MY, table, &index.name));
    sql.extend(key.and_then(|field| add_foreign_key(MY, table, field)));
    sql
}

/// Renames the column (indexes and keys pointing to it follow), then its
/// `fk_`/`uq_` names.
pub(super) fn rename_field(model: &ModelState, old: &Field, new: &Field) -> Vec<String> {
    let mut sql = vec![rename_column(MY, &model.table, &old.name, &new.name)];
    sql.extend(rename_constraints(&model.table, &model.table, old, new));
    sql
}

fn rename_constraints(table: &str, old_table: &str, old: &Field, new: &Field) -> Vec<String> {
    let mut sql = Vec::new();
    if new.unique {
        // Written by hand: sea-query has no `RENAME INDEX`.
        sql.push(format!(
            "ALTER TABLE {} RENAME INDEX {} TO {}",
            quote(MY, table),
            quote(MY, &unique_constraint_name(old_table, &old.name)),
            quote(MY, &unique_constraint_name(table, &new.name))
        ));
    }
    if let Some(key) = &new.foreign_key {
        sql.push(super::drop_foreign_key_named(
            MY,
            table,
            &key.constraint_name(old_table, &old.name),
        ));
        sql.extend(add_foreign_key(MY, table, new));
    }
    sql
}

fn add_unique(table: &str, column: &str) -> String {
    create_index(
        MY,
        table,
        &Index::new(&unique_constraint_name(table, column), &[column]).unique(),
    )
}
