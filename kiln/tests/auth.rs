//! The auth app on SQLite, PostgreSQL and MariaDB: its migrations, the
//! permissions `migrate` creates, `has_perm`, `authenticate` (hash
//! upgrades, the hasher running for unknown users, injection payloads) and
//! escaping of user-controlled fields in templates.
//!
//! PostgreSQL and MariaDB tests skip with a `SKIPPED:` line when the server
//! is unreachable (see `support/backends.rs`).

#![expect(
    clippy::unwrap_used,
    reason = "helpers of tests: an unexpected error should fail the test loudly"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::collections::BTreeSet;

use kiln::auth::{self, authenticate, group, group_permissions, permission, user, user_groups};
use kiln::db::migrations::{Executor, Field, Migration, ModelState, Target, Type};
use kiln::db::prelude::*;
use kiln::test::TestClient;
use kiln::{App, Project, Settings};

/// Tests that count hasher runs hold this so that no other test of this
/// file hashes meanwhile.
static HASHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod question {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_question")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub question_text: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

fn polls() -> App {
    App::new("polls")
        .model::<question::Entity>()
        .migrations(vec![
            Migration::new("0001_initial").create_model(
                ModelState::new("polls_question")
                    .field(Field::new("id", Type::BigInteger).auto_increment())
                    .field(Field::new("question_text", Type::string(200)))
                    .primary_key(&["id"]),
            ),
        ])
}

fn project() -> Project {
    Project::new("site")
        .mount("/accounts", auth::app())
        .mount("/polls", polls())
}

/// Applies every migration of [`project`] to `test`'s database, through a
/// pool of one connection as `kiln migrate` does (SQLite's foreign-key
/// switch is per connection).
async fn migrate(test: &backends::TestDatabase) {
    let db = test.connect_alone().await;
    let graph = project().migration_graph().unwrap();
    let executor = Executor::new(&db, &graph);
    let applied = executor.applied().await.unwrap();
    let steps = executor.plan(&applied, &Target::Latest).unwrap();
    executor.run(&steps, |_| {}).await.unwrap();
}

/// Every backend, migrated, with the permissions created.
async fn migrated() -> Vec<backends::TestDatabase> {
    let all = backends::all().await;
    for test in &all {
        migrate(test).await;
        let models = project().model_entries().unwrap();
        auth::create_permissions(&test.db, &models).await.unwrap();
    }
    all
}

/// A test client on a fresh SQLite database, migrated (permissions
/// included); keep the client alive as long as the connection.
async fn sqlite() -> (TestClient, DatabaseConnection) {
    let client = TestClient::with_settings(project(), Settings::from_toml("").unwrap());
    let db = client.db().await;
    (client, db)
}

async fn permission_id(db: &DatabaseConnection, app: &str, codename: &str) -> i64 {
    permission::Entity::find()
        .filter(permission::Column::AppLabel.eq(app))
        .filter(permission::Column::Codename.eq(codename))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no permission {app}.{codename}"))
        .id
}

#[test]
fn the_auth_migrations_agree_with_the_models() {
    // `makemigrations --check` for the auth app and the test app.
    let project = project();
    let report = kiln::checks::run(&project, &Settings::defaults_for(true));
    let errors: Vec<_> = report
        .iter()
        .filter(|m| m.level == kiln::checks::Level::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn permissions_are_created_once_for_every_model_on_every_backend() {
    for test in migrated().await {
        let db = &test.db;
        let all: BTreeSet<(String, String, String)> = permission::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.app_label, p.codename, p.name))
            .collect();
        // user, group, permission and question; no link tables.
        assert_eq!(all.len(), 16, "{}: {all:#?}", test.label());
        assert!(all.contains(&(
            "polls".to_owned(),
            "change_question".to_owned(),
            "Can change question".to_owned()
        )));
        assert!(all.contains(&(
            "auth".to_owned(),
            "view_user".to_owned(),
            "Can view user".to_owned()
        )));
        let models = project().model_entries().unwrap();
        assert_eq!(auth::create_permissions(db, &models).await.unwrap(), 0);
        assert_eq!(permission::Entity::find().count(db).await.unwrap(), 16);
        test.finish().await;
    }
}

#[tokio::test]
async fn migrate_creates_the_permissions_after_the_auth_tables() {
    // Through the shared migrate path (the test client's, as `migrate` and
    // runserver's migrate_on_start), not a direct call.
    let (_client, db) = sqlite().await;
    let count = permission::Entity::find()
        .filter(permission::Column::AppLabel.eq("polls"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn has_perm_follows_grants_groups_superusers_and_inactive_users_on_every_backend() {
    let _hashing = HASHING.lock().await;
    for test in migrated().await {
        let db = &test.db;
        let change = permission_id(db, "polls", "change_question").await;
        let view = permission_id(db, "polls", "view_question").await;
        let delete = permission_id(db, "polls", "delete_question").await;

        let jane = auth::create_user(db, "jane", "jane@example.com", None)
            .await
            .unwrap();
        assert!(!jane.has_perm(db, "polls.change_question").await.unwrap());
        auth::user_permissions::ActiveModel {
            user_id: Set(jane.id),
            permission_id: Set(change),
        }
        .insert(db)
        .await
        .unwrap();
        let editors = group::ActiveModel {
            name: Set("editors".to_owned()),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        group_permissions::ActiveModel {
            group_id: Set(editors.id),
            permission_id: Set(view),
        }
        .insert(db)
        .await
        .unwrap();
        user_groups::ActiveModel {
            user_id: Set(jane.id),
            group_id: Set(editors.id),
        }
        .insert(db)
        .await
        .unwrap();

        assert!(
            jane.has_perm(db, "polls.change_question").await.unwrap(),
            "own grant"
        );
        assert!(
            jane.has_perm(db, "polls.view_question").await.unwrap(),
            "group grant"
        );
        assert!(!jane.has_perm(db, "polls.delete_question").await.unwrap());
        assert!(
            !jane.has_perm(db, "auth.change_question").await.unwrap(),
            "other app"
        );
        assert!(
            !jane.has_perm(db, "change_question").await.unwrap(),
            "no app label"
        );
        assert!(
            jane.has_perms(db, &["polls.change_question", "polls.view_question"])
                .await
                .unwrap()
        );
        assert!(
            !jane
                .has_perms(db, &["polls.change_question", "polls.delete_question"])
                .await
                .unwrap()
        );
        assert_eq!(
            jane.get_all_permissions(db).await.unwrap(),
            BTreeSet::from([
                "polls.change_question".to_owned(),
                "polls.view_question".to_owned()
            ])
        );

        // Another user's grants are not jane's, and the reverse.
        let joe = auth::create_user(db, "joe", "", None).await.unwrap();
        assert!(!joe.has_perm(db, "polls.view_question").await.unwrap());
        assert!(joe.get_all_permissions(db).await.unwrap().is_empty());

        let mut inactive = jane.clone();
        inactive.is_active = false;
        assert!(
            !inactive
                .has_perm(db, "polls.change_question")
                .await
                .unwrap()
        );
        assert!(inactive.get_all_permissions(db).await.unwrap().is_empty());

        let root = auth::create_superuser(db, "root", "root@example.com", None)
            .await
            .unwrap();
        assert!(root.is_staff && root.is_superuser);
        assert!(root.has_perm(db, "polls.delete_question").await.unwrap());
        assert_eq!(root.get_all_permissions(db).await.unwrap().len(), 16);
        let _ = delete;

        // Deleting a user deletes its grants (ON DELETE CASCADE).
        user::Entity::delete_by_id(jane.id).exec(db).await.unwrap();
        assert_eq!(
            auth::user_permissions::Entity::find()
                .count(db)
                .await
                .unwrap(),
            0
        );
        assert_eq!(user_groups::Entity::find().count(db).await.unwrap(), 0);
        test.finish().await;
    }
}

#[tokio::test]
async fn authenticate_accepts_only_an_active_user_with_the_right_password_on_every_backend() {
    let _hashing = HASHING.lock().await;
    for test in migrated().await {
        let db = &test.db;
        let jane = auth::create_user(db, "jane", "jane@example.com", Some("a long passphrase"))
            .await
            .unwrap();
        assert!(
            jane.password.starts_with("$argon2id$"),
            "the hash is stored, not the password"
        );
        assert!(!jane.password.contains("passphrase"));
        let found = authenticate(db, "jane", "a long passphrase").await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(jane.id), "{}", test.label());
        assert!(
            authenticate(db, "jane", "a long passphrase!")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(db, "nobody", "a long passphrase")
                .await
                .unwrap()
                .is_none()
        );

        let taken = auth::create_user(db, "jane", "", None).await.unwrap_err();
        assert!(
            matches!(taken, auth::AuthError::UsernameTaken(_)),
            "{taken}"
        );

        // An unusable password matches nothing, not even itself.
        let bot = auth::create_user(db, "bot", "", None).await.unwrap();
        assert!(!bot.has_usable_password());
        assert!(
            authenticate(db, "bot", &bot.password)
                .await
                .unwrap()
                .is_none()
        );

        let mut active: user::ActiveModel = jane.into();
        active.is_active = Set(false);
        active.update(db).await.unwrap();
        assert!(
            authenticate(db, "jane", "a long passphrase")
                .await
                .unwrap()
                .is_none()
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn sql_injection_payloads_as_username_find_nobody_and_break_nothing_on_every_backend() {
    let _hashing = HASHING.lock().await;
    for test in migrated().await {
        let db = &test.db;
        auth::create_user(db, "admin", "", Some("a long passphrase"))
            .await
            .unwrap();
        for payload in [
            "admin' --",
            "admin' OR '1'='1",
            "' OR 1=1 --",
            "admin\"; DROP TABLE auth_user; --",
            "'; DELETE FROM auth_user; --",
            "admin' /*",
            "admin\\' OR 1=1 #",
        ] {
            let found = authenticate(db, payload, "a long passphrase").await;
            assert!(
                matches!(found, Ok(None)),
                "{}: {payload:?} gave {found:?}",
                test.label()
            );
        }
        assert_eq!(
            user::Entity::find().count(db).await.unwrap(),
            1,
            "table intact"
        );
        assert!(
            authenticate(db, "admin", "a long passphrase")
                .await
                .unwrap()
                .is_some()
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn authenticate_runs_the_hasher_whether_or_not_the_user_exists() {
    // Timing cannot be asserted reliably; the cause of a timing difference
    // can: a path that skips argon2. Each path must run it exactly once.
    let _hashing = HASHING.lock().await;
    let (_client, db) = sqlite().await;
    auth::create_user(&db, "jane", "", Some("a long passphrase"))
        .await
        .unwrap();
    let inactive = auth::create_user(&db, "gone", "", Some("a long passphrase"))
        .await
        .unwrap();
    let mut active: user::ActiveModel = inactive.into();
    active.is_active = Set(false);
    active.update(&db).await.unwrap();
    auth::create_user(&db, "bot", "", None).await.unwrap();

    // The first check without a real hash also makes the dummy hash.
    authenticate(&db, "warm-up", "x").await.unwrap();
    for (username, password) in [
        ("jane", "a long passphrase"),
        ("jane", "wrong"),
        ("nobody", "a long passphrase"),
        ("gone", "a long passphrase"),
        ("bot", "anything"),
    ] {
        let before = auth::hashers::hasher_runs();
        authenticate(&db, username, password).await.unwrap();
        let runs = auth::hashers::hasher_runs() - before;
        assert_eq!(runs, 1, "{username}/{password}: {runs} argon2 runs");
    }
}

#[tokio::test]
async fn a_hash_with_weaker_parameters_is_upgraded_on_login() {
    let _hashing = HASHING.lock().await;
    let (_client, db) = sqlite().await;
    let weak = auth::hashers::Hasher::new(8, 1, 1).unwrap();
    let old_hash = weak.make_password("a long passphrase").await.unwrap();
    let jane = auth::create_user(&db, "jane", "", None).await.unwrap();
    let mut active: user::ActiveModel = jane.into();
    active.password = Set(old_hash.clone());
    active.update(&db).await.unwrap();

    // A wrong password changes nothing.
    assert!(authenticate(&db, "jane", "wrong").await.unwrap().is_none());
    let stored = user::Entity::find().one(&db).await.unwrap().unwrap();
    assert_eq!(stored.password, old_hash);

    let jane = authenticate(&db, "jane", "a long passphrase")
        .await
        .unwrap()
        .unwrap();
    let stored = user::Entity::find().one(&db).await.unwrap().unwrap();
    assert_eq!(stored.password, jane.password);
    assert_ne!(stored.password, old_hash);
    assert!(
        stored
            .password
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.password
    );
    let check = auth::hashers::check_password("a long passphrase", &stored.password).await;
    assert!(check.valid && !check.needs_rehash);
}

#[tokio::test]
async fn a_username_with_markup_is_escaped_when_rendered() {
    let project = Project::new("site")
        .mount("/accounts", auth::app())
        .templates(kiln::templates_dir!("tests/templates/auth"));
    let client = TestClient::with_settings(project, Settings::from_toml("").unwrap());
    let db = client.db().await;
    // Stored as typed (through the model, bypassing the username rule)...
    let evil = user::ActiveModel {
        username: Set("<script>alert(1)</script>".to_owned()),
        email: Set(String::new()),
        password: Set(auth::hashers::make_unusable_password()),
        first_name: Set("\"><img src=x onerror=alert(1)>".to_owned()),
        last_name: Set(String::new()),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        last_login: Set(None),
        date_joined: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    // ...and escaped on the way out.
    let html = client
        .site()
        .templates()
        .render_to_string(
            "accounts/profile.html",
            serde_json::json!({"user": {"username": evil.username, "first_name": evil.first_name}}),
        )
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

#[tokio::test]
async fn usernames_match_exactly_and_a_login_voids_older_reset_tokens() {
    let _hashing = HASHING.lock().await;
    let (client, db) = sqlite().await;
    auth::create_user(&db, "jane", "jane@example.com", Some("a long passphrase"))
        .await
        .unwrap();
    assert!(
        authenticate(&db, "JANE", "a long passphrase")
            .await
            .unwrap()
            .is_none()
    );
    let jane = authenticate(&db, "jane", "a long passphrase")
        .await
        .unwrap()
        .unwrap();
    let tokens = auth::tokens::PasswordResetTokens::from_settings(client.site().settings());
    let token = tokens.make_token(&jane);
    assert!(tokens.check_token(&jane, &token));
    let jane = auth::update_last_login(&db, jane).await.unwrap();
    assert!(jane.last_login.is_some());
    assert!(
        !tokens.check_token(&jane, &token),
        "a login since voids the token"
    );
}
