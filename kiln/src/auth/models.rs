//! The models of the `auth` app: users, groups, permissions and the tables
//! that link them, as Django's `contrib.auth` has them.
//!
//! Permissions are keyed by app label and codename (`polls` +
//! `change_question`, written `polls.change_question`) rather than by a
//! content type: Kiln has no content-type table, and the pair is what
//! [`user::Model::has_perm`](crate::auth::user::Model) callers write anyway.

/// A person who can log in (table `auth_user`).
pub mod user {
    use crate::db::prelude::*;

    /// One user. `password` holds a PHC hash string from
    /// [`hashers`](crate::auth::hashers), or an unusable password (`!`…).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_user")]
    pub struct Model {
        /// The primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The login name: unique, 150 characters at most.
        #[sea_orm(unique, column_type = "String(StringLen::N(150))")]
        pub username: String,
        /// The email address (may be empty).
        #[sea_orm(column_type = "String(StringLen::N(254))")]
        pub email: String,
        /// The password hash (never the password).
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub password: String,
        /// Given name.
        #[sea_orm(column_type = "String(StringLen::N(150))")]
        pub first_name: String,
        /// Family name.
        #[sea_orm(column_type = "String(StringLen::N(150))")]
        pub last_name: String,
        /// Whether the account may log in; deactivate rather than delete.
        #[sea_orm(default_value = true)]
        pub is_active: bool,
        /// Whether the user may use the admin site.
        #[sea_orm(default_value = false)]
        pub is_staff: bool,
        /// Whether the user has every permission without them being granted.
        #[sea_orm(default_value = false)]
        pub is_superuser: bool,
        /// When the user last logged in.
        pub last_login: Option<DateTimeUtc>,
        /// When the account was created.
        pub date_joined: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A named set of permissions that users join (table `auth_group`).
pub mod group {
    use crate::db::prelude::*;

    /// One group.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_group")]
    pub struct Model {
        /// The primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The group's name, unique.
        #[sea_orm(unique, column_type = "String(StringLen::N(150))")]
        pub name: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One thing a user may do (table `auth_permission`): `polls.change_question`.
pub mod permission {
    use crate::db::prelude::*;

    /// One permission.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_permission")]
    pub struct Model {
        /// The primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// What people read: "Can change question".
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub name: String,
        /// The app the permission belongs to (`polls`).
        #[sea_orm(unique_key = "app_codename", column_type = "String(StringLen::N(100))")]
        pub app_label: String,
        /// The model it is about (`question`), empty for a custom permission
        /// not tied to one model.
        #[sea_orm(column_type = "String(StringLen::N(100))")]
        pub model: String,
        /// What code checks: `change_question`.
        #[sea_orm(unique_key = "app_codename", column_type = "String(StringLen::N(100))")]
        pub codename: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Which groups a user belongs to (table `auth_user_groups`).
pub mod user_groups {
    use crate::db::prelude::*;

    /// One membership.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_user_groups")]
    pub struct Model {
        /// The user.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        /// The group.
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: i64,
        /// The user row.
        #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
        pub user: BelongsTo<super::user::Entity>,
        /// The group row.
        #[sea_orm(belongs_to, from = "group_id", to = "id", on_delete = "Cascade")]
        pub group: BelongsTo<super::group::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Permissions granted to one user directly (table `auth_user_user_permissions`).
pub mod user_permissions {
    use crate::db::prelude::*;

    /// One grant.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_user_user_permissions")]
    pub struct Model {
        /// The user.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        /// The permission.
        #[sea_orm(primary_key, auto_increment = false)]
        pub permission_id: i64,
        /// The user row.
        #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
        pub user: BelongsTo<super::user::Entity>,
        /// The permission row.
        #[sea_orm(belongs_to, from = "permission_id", to = "id", on_delete = "Cascade")]
        pub permission: BelongsTo<super::permission::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Permissions granted to a group (table `auth_group_permissions`).
pub mod group_permissions {
    use crate::db::prelude::*;

    /// One grant.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_group_permissions")]
    pub struct Model {
        /// The group.
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: i64,
        /// The permission.
        #[sea_orm(primary_key, auto_increment = false)]
        pub permission_id: i64,
        /// The group row.
        #[sea_orm(belongs_to, from = "group_id", to = "id", on_delete = "Cascade")]
        pub group: BelongsTo<super::group::Entity>,
        /// The permission row.
        #[sea_orm(belongs_to, from = "permission_id", to = "id", on_delete = "Cascade")]
        pub permission: BelongsTo<super::permission::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
