//! The default permissions of models, and the queries behind
//! `has_perm` and `get_all_permissions`.

use std::collections::{BTreeSet, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};

use super::{group_permissions, permission, user_groups, user_permissions};
use crate::db::{DbErr, ModelEntry};

/// The actions every model gets a permission for, as Django's
/// `default_permissions`.
const ACTIONS: [&str; 4] = ["view", "add", "change", "delete"];

/// The auth app's own link tables: rows of them are managed through users
/// and groups, so they get no permissions (Django creates none for the
/// tables behind its many-to-many fields either).
const LINK_TABLES: [&str; 3] = [
    "auth_user_groups",
    "auth_user_user_permissions",
    "auth_group_permissions",
];

/// The default permissions of one registered model, as
/// `(codename, name)`: `("change_question", "Can change question")`.
#[must_use]
pub fn default_permissions(model: &ModelEntry) -> Vec<(String, String)> {
    let model_name = model_name(model);
    let verbose = model.verbose_name();
    ACTIONS
        .iter()
        .map(|action| {
            (
                format!("{action}_{model_name}"),
                format!("Can {action} {verbose}"),
            )
        })
        .collect()
}

/// The model's name in codenames: its table without the app prefix
/// (`polls_question` -> `question`), as Django's `model_name`.
fn model_name(model: &ModelEntry) -> &str {
    model
        .table
        .strip_prefix(model.app.as_str())
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(&model.table)
}

/// Creates the default permissions of `models` that do not exist yet, and
/// returns how many it created. Idempotent: `migrate` runs it every time.
///
/// # Errors
///
/// When the database fails (the `auth` tables must exist).
pub async fn create_permissions<C: ConnectionTrait>(
    db: &C,
    models: &[ModelEntry],
) -> Result<usize, DbErr> {
    let existing: HashSet<(String, String)> = label_and_codename(permission::Entity::find(), db)
        .await?
        .into_iter()
        .collect();
    let mut missing = Vec::new();
    for model in models
        .iter()
        .filter(|m| !LINK_TABLES.contains(&m.table.as_str()))
    {
        let model_name = model_name(model);
        for (codename, name) in default_permissions(model) {
            if !existing.contains(&(model.app.clone(), codename.clone())) {
                missing.push(permission::ActiveModel {
                    name: Set(name),
                    app_label: Set(model.app.clone()),
                    model: Set(model_name.to_owned()),
                    codename: Set(codename),
                    ..Default::default()
                });
            }
        }
    }
    let created = missing.len();
    if created > 0 {
        permission::Entity::insert_many(missing).exec(db).await?;
    }
    Ok(created)
}

/// Whether user `user_id` was granted `app_label.codename` directly or
/// through a group: one query, with subqueries for the grants.
pub(super) async fn user_has<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    app_label: &str,
    codename: &str,
) -> Result<bool, DbErr> {
    let found = granted(user_id)
        .filter(permission::Column::AppLabel.eq(app_label))
        .filter(permission::Column::Codename.eq(codename))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Every permission of user `user_id` as `app_label.codename`.
pub(super) async fn of_user<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    superuser: bool,
) -> Result<BTreeSet<String>, DbErr> {
    let query = if superuser {
        permission::Entity::find()
    } else {
        granted(user_id)
    };
    Ok(label_and_codename(query, db)
        .await?
        .into_iter()
        .map(|(app, codename)| format!("{app}.{codename}"))
        .collect())
}

/// The `(app_label, codename)` of each permission `query` selects.
async fn label_and_codename<C: ConnectionTrait>(
    query: sea_orm::Select<permission::Entity>,
    db: &C,
) -> Result<Vec<(String, String)>, DbErr> {
    query
        .select_only()
        .column(permission::Column::AppLabel)
        .column(permission::Column::Codename)
        .into_tuple::<(String, String)>()
        .all(db)
        .await
}

/// The permissions granted to `user_id` directly or through its groups.
fn granted(user_id: i64) -> sea_orm::Select<permission::Entity> {
    let direct = user_permissions::Entity::find()
        .select_only()
        .column(user_permissions::Column::PermissionId)
        .filter(user_permissions::Column::UserId.eq(user_id));
    let groups = user_groups::Entity::find()
        .select_only()
        .column(user_groups::Column::GroupId)
        .filter(user_groups::Column::UserId.eq(user_id));
    let through_groups = group_permissions::Entity::find()
        .select_only()
        .column(group_permissions::Column::PermissionId)
        .filter(group_permissions::Column::GroupId.in_subquery(groups.into_query()));
    permission::Entity::find().filter(
        sea_orm::Condition::any()
            .add(permission::Column::Id.in_subquery(direct.into_query()))
            .add(permission::Column::Id.in_subquery(through_groups.into_query())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_permissions_are_named_as_djangos() {
        let model = ModelEntry {
            app: "polls".to_owned(),
            table: "polls_question".to_owned(),
            columns: vec!["id".to_owned()],
            options: crate::db::ModelOptions::new(),
        };
        assert_eq!(
            default_permissions(&model),
            [
                ("view_question".to_owned(), "Can view question".to_owned()),
                ("add_question".to_owned(), "Can add question".to_owned()),
                (
                    "change_question".to_owned(),
                    "Can change question".to_owned()
                ),
                (
                    "delete_question".to_owned(),
                    "Can delete question".to_owned()
                ),
            ]
        );
    }
}
