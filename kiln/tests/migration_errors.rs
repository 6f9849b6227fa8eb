//! Migrations that go wrong: a hand-edited migration that no longer
//! replays, a missing dependency, two latest migrations in one app, a
//! migration recorded in the database but gone from the code, a statement
//! the database refuses, a rollback past an irreversible step, and the
//! constraint errors the migrated schema raises at run time.
//!
//! Each error is typed and its message names the migration (and its file),
//! the model or field, and the fix. Where the database rolls DDL back
//! (PostgreSQL, SQLite) nothing of a failed migration stays; on MariaDB the
//! error lists the statements that stay applied.
//!
//! The database scenarios run on SQLite (a temporary file), PostgreSQL and
//! MariaDB/MySQL; see `support/backends.rs` for the servers and for how an
//! unreachable server skips (or, with `KILN_REQUIRE_BACKENDS=1`, fails).

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot read its own state should stop there"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::collections::BTreeSet;
use std::future::Future;

use backends::TestDatabase;
use kiln::db::migrations::{
    Action, Executor, Field, ForeignKey, Graph, GraphError, Key, MigrateError, Migration,
    ModelState, RECORDER_TABLE, StateError, Step, Target, Type,
};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, Set, SqlErr, Statement};

const APP: &str = "polls";

mod tag {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_tag")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub slug: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

mod choice {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_choice")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub question_id: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

fn key(name: &str) -> Key {
    (APP.to_owned(), name.to_owned())
}

fn model(table: &str) -> ModelState {
    ModelState::new(table)
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .primary_key(&["id"])
}

fn question() -> ModelState {
    model("polls_question").field(Field::new("text", Type::string(200)))
}

fn initial() -> Migration {
    Migration::new("0001_initial").create_model(question())
}

/// `0002_edited`: an `AlterField` on a field that no migration created, as
/// a hand edit that renamed the field in one place only leaves it.
fn edited() -> Migration {
    Migration::new("0002_edited")
        .depends_on(APP, "0001_initial")
        .alter_field("polls_question", Field::new("ghost", Type::Text))
}

/// Every part is in the message.
fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

fn graph(migrations: Vec<Migration>) -> Graph {
    Graph::new(vec![(APP.to_owned(), migrations)]).unwrap_or_else(|error| panic!("{error}"))
}

// --- errors found before any database is involved ---------------------------

#[test]
fn a_hand_edited_migration_that_no_longer_replays_names_its_file_and_field() {
    let graph = graph(vec![initial(), edited()]);
    let error = graph.final_state().unwrap_err();
    assert_eq!(
        error,
        GraphError::Replay {
            app: APP.to_owned(),
            name: "0002_edited".to_owned(),
            source: StateError::UnknownField {
                table: "polls_question".to_owned(),
                column: "ghost".to_owned()
            }
        }
    );
    assert_mentions(
        &error.to_string(),
        &[
            "polls.0002_edited",
            "`polls_question` has no field `ghost`",
            "fix:",
            "src/polls/migrations/m0002_edited.rs",
        ],
    );
}

#[test]
fn a_missing_dependency_names_both_migrations_and_the_file_to_fix() {
    let orphan = Migration::new("0002_votes")
        .depends_on(APP, "0001_gone")
        .add_field("polls_question", Field::new("votes", Type::Integer));
    let error = Graph::new(vec![(APP.to_owned(), vec![initial(), orphan])]).unwrap_err();
    assert_eq!(
        error,
        GraphError::MissingDependency {
            app: APP.to_owned(),
            name: "0002_votes".to_owned(),
            dep_app: APP.to_owned(),
            dep_name: "0001_gone".to_owned()
        }
    );
    assert_mentions(
        &error.to_string(),
        &[
            "polls.0002_votes",
            "polls.0001_gone",
            "fix:",
            "src/polls/migrations/m0002_votes.rs",
        ],
    );
}

/// `0002_votes` and `0002_slug`, both written after `0001_initial`, as two
/// branches that each ran `makemigrations` do.
fn two_branches() -> Vec<Migration> {
    vec![
        initial(),
        Migration::new("0002_votes")
            .depends_on(APP, "0001_initial")
            .add_field(
                "polls_question",
                Field::new("votes", Type::Integer).default(0),
            ),
        Migration::new("0002_slug")
            .depends_on(APP, "0001_initial")
            .add_field("polls_question", Field::new("slug", Type::Text).null()),
    ]
}

#[test]
fn two_latest_migrations_in_one_app_are_a_conflict_that_points_to_merge() {
    let error = Graph::new(vec![(APP.to_owned(), two_branches())]).unwrap_err();
    let GraphError::Conflict { app, leaves } = &error else {
        panic!("expected a conflict, got {error}");
    };
    assert_eq!(app, APP);
    assert_eq!(leaves, &["0002_votes", "0002_slug"]);
    assert_mentions(
        &error.to_string(),
        &[
            "`polls`",
            "0002_votes",
            "0002_slug",
            "fix:",
            "makemigrations --merge",
        ],
    );
    // The merge migration the message asks for ends the conflict.
    let mut merged = two_branches();
    merged.push(
        Migration::new("0003_merge")
            .depends_on(APP, "0002_votes")
            .depends_on(APP, "0002_slug"),
    );
    assert_eq!(graph(merged).leaves(APP), [key("0003_merge")]);
}

// --- errors against a database ---------------------------------------------

/// A test database with helpers to migrate it and look at it.
struct Harness {
    database: TestDatabase,
}

impl Harness {
    fn backend(&self) -> DbBackend {
        self.database.backend
    }

    /// `migrate` as the command runs it: check the history, plan, run.
    async fn migrate(&self, graph: &Graph, target: Target) -> Result<Vec<Step>, MigrateError> {
        let executor = Executor::new(&self.database.db, graph);
        let applied = executor.applied().await?;
        executor.check_history(&applied)?;
        let steps = executor.plan(&applied, &target)?;
        executor.run(&steps, |_| {}).await?;
        Ok(steps)
    }

    async fn applied(&self) -> BTreeSet<Key> {
        Executor::new(&self.database.db, &Graph::default())
            .applied()
            .await
            .unwrap()
    }

    async fn try_exec(&self, sql: &str) -> Result<(), DbErr> {
        self.database.db.execute_unprepared(sql).await.map(drop)
    }

    async fn exec(&self, sql: &str) {
        if let Err(error) = self.try_exec(sql).await {
            panic!("`{sql}` failed on {:?}: {error}", self.backend());
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let row = self
            .database
            .db
            .query_one_raw(Statement::from_string(self.backend(), sql.clone()))
            .await
            .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"))
            .unwrap();
        row.try_get_by_index::<i64>(0)
            .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
            .unwrap()
    }

    async fn has_table(&self, table: &str) -> bool {
        self.try_exec(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .is_ok()
    }

    async fn has_column(&self, table: &str, column: &str) -> bool {
        self.try_exec(&format!("SELECT {column} FROM {table} WHERE 1 = 0"))
            .await
            .is_ok()
    }

    /// Whether the backend rolls back DDL with the migration's transaction.
    fn transactional_ddl(&self) -> bool {
        self.backend() != DbBackend::MySql
    }
}

/// `migrate` refuses a migration that does not replay before running
/// anything, naming it, its file and the missing field.
async fn edited_migration_stops_migrate_before_anything_runs(h: Harness) {
    let graph = graph(vec![initial(), edited()]);
    let error = h.migrate(&graph, Target::Latest).await.unwrap_err();
    assert!(
        matches!(
            &error,
            MigrateError::State { key: failed, source: StateError::UnknownField { column, .. } }
                if failed == &key("0002_edited") && column == "ghost"
        ) || matches!(
            &error,
            MigrateError::Graph(GraphError::Replay { name, .. }) if name == "0002_edited"
        ),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[
            "polls.0002_edited",
            "no field `ghost`",
            "fix:",
            "src/polls/migrations/m0002_edited.rs",
        ],
    );
    assert!(h.applied().await.is_empty(), "nothing is recorded");
    assert!(
        !h.has_table("polls_question").await,
        "0001 is not applied either: the plan was refused whole"
    );
}

/// A migration recorded as applied but gone from the code: `check_history`
/// names it, its file and both fixes.
async fn applied_migration_missing_from_the_code_is_reported(h: Harness) {
    let votes = Migration::new("0002_votes")
        .depends_on(APP, "0001_initial")
        .add_field(
            "polls_question",
            Field::new("votes", Type::Integer).default(0),
        );
    h.migrate(&graph(vec![initial(), votes]), Target::Latest)
        .await
        .unwrap();

    let without = graph(vec![initial()]);
    let executor = Executor::new(&h.database.db, &without);
    let applied = executor.applied().await.unwrap();
    let error = executor.check_history(&applied).unwrap_err();
    assert!(
        matches!(&error, MigrateError::MissingInCode { key: missing } if missing == &key("0002_votes")),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[
            "polls.0002_votes",
            "not in the code",
            "fix:",
            "src/polls/migrations/m0002_votes.rs",
            "src/polls/migrations.rs",
            "DELETE FROM kiln_migrations WHERE app = 'polls' AND name = '0002_votes'",
        ],
    );
    // `migrate` stops there too, and the schema is left as it was.
    let error = h.migrate(&without, Target::Latest).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::MissingInCode { .. }),
        "{error}"
    );
    assert!(h.has_column("polls_question", "votes").await);
    assert_eq!(h.applied().await.len(), 2);
}

/// The second statement of a migration fails: PostgreSQL and SQLite roll
/// the first one back; MariaDB keeps it and the error lists it.
async fn failing_second_statement_rolls_back_or_lists_what_stays(h: Harness) {
    let broken = Migration::new("0002_tags")
        .depends_on(APP, "0001_initial")
        .create_model(model("polls_tag").field(Field::new("slug", Type::string(50))))
        .run_sql(&["INSERT INTO polls_nowhere (x) VALUES (1)"], Some(&[]));
    let graph = graph(vec![initial(), broken]);
    let error = h.migrate(&graph, Target::Latest).await.unwrap_err();
    let MigrateError::Statement(failure) = &error else {
        panic!("expected a statement failure, got {error}");
    };
    let message = error.to_string();
    assert_eq!(failure.key, key("0002_tags"));
    assert_eq!(failure.operation, "Raw SQL (1 statements)");
    assert_eq!(
        failure.statement,
        "INSERT INTO polls_nowhere (x) VALUES (1)"
    );
    assert_mentions(
        &message,
        &[
            "polls.0002_tags",
            "polls_nowhere",
            "statement: INSERT INTO polls_nowhere",
            "fix:",
        ],
    );
    assert_eq!(
        h.applied().await,
        BTreeSet::from([key("0001_initial")]),
        "the failed migration is not recorded"
    );
    if h.transactional_ddl() {
        assert!(failure.rolled_back, "{message}");
        assert!(failure.already_applied.is_empty(), "{message}");
        assert_mentions(&message, &["nothing of polls.0002_tags was applied"]);
        assert!(
            !h.has_table("polls_tag").await,
            "the table of the first statement is rolled back"
        );
    } else {
        assert!(!failure.rolled_back, "{message}");
        assert_eq!(failure.already_applied.len(), 1, "{message}");
        assert!(
            failure.already_applied[0].starts_with("CREATE TABLE `polls_tag`"),
            "{message}"
        );
        assert_mentions(&message, &["stay applied", "CREATE TABLE `polls_tag`"]);
        assert!(h.has_table("polls_tag").await, "MySQL committed the DDL");
    }
}

/// A NOT NULL column without default cannot be added to a table with rows
/// (PostgreSQL, SQLite): the whole migration, a table created before it
/// included, is rolled back, and the rows stay.
async fn not_null_field_without_default_on_filled_table_rolls_back(h: Harness) {
    h.migrate(&graph(vec![initial()]), Target::Latest)
        .await
        .unwrap();
    h.exec("INSERT INTO polls_question (text) VALUES ('Why?')")
        .await;
    let broken = Migration::new("0002_required")
        .depends_on(APP, "0001_initial")
        .create_model(model("polls_tag").field(Field::new("slug", Type::string(50))))
        .add_field("polls_question", Field::new("required", Type::string(20)));
    let error = h
        .migrate(&graph(vec![initial(), broken]), Target::Latest)
        .await
        .unwrap_err();
    let MigrateError::Statement(failure) = &error else {
        panic!("expected a statement failure, got {error}");
    };
    let message = error.to_string();
    assert_eq!(failure.key, key("0002_required"));
    assert_eq!(failure.operation, "Add field required to polls_question");
    assert!(failure.rolled_back, "{message}");
    assert_mentions(
        &message,
        &[
            "polls.0002_required",
            "Add field required to polls_question",
            "nothing of polls.0002_required was applied",
            "fix:",
        ],
    );
    assert!(!h.has_table("polls_tag").await);
    assert!(!h.has_column("polls_question", "required").await);
    assert_eq!(h.count("polls_question").await, 1);
    assert_eq!(h.applied().await, BTreeSet::from([key("0001_initial")]));
}

/// Rolling back past a `RunSql` without `backwards` is refused before any
/// migration is rolled back.
async fn rollback_past_irreversible_sql_touches_nothing(h: Harness) {
    let seed = Migration::new("0002_seed")
        .depends_on(APP, "0001_initial")
        .run_sql(
            &["INSERT INTO polls_question (text) VALUES ('Seeded?')"],
            None,
        );
    let votes = Migration::new("0003_votes")
        .depends_on(APP, "0002_seed")
        .add_field(
            "polls_question",
            Field::new("votes", Type::Integer).default(0),
        );
    let graph = graph(vec![initial(), seed, votes]);
    h.migrate(&graph, Target::Latest).await.unwrap();

    let error = h
        .migrate(&graph, Target::Zero(APP.to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(error, MigrateError::Irreversible(_)), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[
            "Raw SQL",
            "polls.0002_seed",
            "cannot be reversed",
            "backwards",
        ],
    );
    assert_eq!(h.applied().await.len(), 3, "every migration stays applied");
    assert!(
        h.has_column("polls_question", "votes").await,
        "0003 was not rolled back before the refusal"
    );
    assert_eq!(h.count("polls_question").await, 1);

    // Rolling back to the irreversible migration itself is fine.
    let steps = h
        .migrate(&graph, Target::To(key("0002_seed")))
        .await
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert!(!h.has_column("polls_question", "votes").await);
}

/// The constraints a migration creates carry Kiln's names, and a violation
/// at run time (through SeaORM or raw SQL) names them where the database
/// reports names (PostgreSQL, MariaDB); SQLite names the column instead.
async fn constraint_violations_name_the_constraint(h: Harness) {
    let schema = Migration::new("0002_tags")
        .depends_on(APP, "0001_initial")
        .create_model(model("polls_tag").field(Field::new("slug", Type::string(50)).unique()))
        .create_model(
            model("polls_choice").field(
                Field::new("question_id", Type::BigInteger)
                    .references(ForeignKey::to("polls_question", "id").on_delete(Action::Cascade)),
            ),
        );
    h.migrate(&graph(vec![initial(), schema]), Target::Latest)
        .await
        .unwrap();
    let db = &h.database.db;
    let named = h.backend() != DbBackend::Sqlite;

    // Unique, through SeaORM: a typed error whose text names the constraint.
    let tag = |slug: &str| tag::ActiveModel {
        slug: Set(slug.to_owned()),
        ..Default::default()
    };
    tag("rust").insert(db).await.unwrap();
    let error = tag("rust").insert(db).await.unwrap_err();
    assert!(
        matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{error:?}"
    );
    let text = error.to_string();
    if named {
        assert_mentions(&text, &["uq_polls_tag_slug"]);
    } else {
        assert_mentions(&text, &["UNIQUE", "polls_tag.slug"]);
    }
    // The same through raw SQL.
    let text = h
        .try_exec("INSERT INTO polls_tag (slug) VALUES ('rust')")
        .await
        .unwrap_err()
        .to_string();
    if named {
        assert_mentions(&text, &["uq_polls_tag_slug"]);
    } else {
        assert_mentions(&text, &["polls_tag.slug"]);
    }

    // Foreign key, through SeaORM then raw SQL.
    let error = choice::ActiveModel {
        question_id: Set(999_999),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap_err();
    assert!(
        matches!(
            error.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_))
        ),
        "{error:?}"
    );
    let text = error.to_string();
    if named {
        assert_mentions(&text, &["fk_polls_choice_question_id"]);
    } else {
        assert_mentions(&text, &["FOREIGN KEY"]);
    }
    let text = h
        .try_exec("INSERT INTO polls_choice (question_id) VALUES (999999)")
        .await
        .unwrap_err()
        .to_string();
    if named {
        assert_mentions(&text, &["fk_polls_choice_question_id"]);
    } else {
        assert_mentions(&text, &["FOREIGN KEY"]);
    }
    assert_eq!(h.count("polls_tag").await, 1);
    assert_eq!(h.count("polls_choice").await, 0);
    assert_eq!(h.count(RECORDER_TABLE).await, 2);
}

/// On SQLite, `PRAGMA foreign_keys` is per connection: an executor given a
/// pool of several connections could switch foreign keys off on one and
/// back on on another, leaving the first without them. It refuses, before
/// it runs anything.
#[tokio::test]
async fn sqlite_migrations_refuse_a_pool_of_several_connections() {
    let database = backends::connect_with(DbBackend::Sqlite, backends::Pool::Several)
        .await
        .unwrap();
    let graph = graph(vec![initial()]);
    let executor = Executor::new(&database.db, &graph);
    let steps = executor.plan(&BTreeSet::new(), &Target::Latest).unwrap();
    let error = executor.run(&steps, |_| {}).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::SqlitePoolTooLarge(5)),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &["pool of one connection", "fix:"]);
    let h = Harness { database };
    assert!(!h.has_table(RECORDER_TABLE).await, "nothing ran");
    assert!(!h.has_table("polls_question").await);
}

/// Runs `scenario` on a fresh database of `backend`, or skips it.
async fn run_on<F, Fut>(backend: DbBackend, scenario: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(database) = backends::connect(backend).await else {
        return;
    };
    scenario(Harness { database }).await;
}

/// One `#[tokio::test]` per scenario, in a module per backend.
macro_rules! on_backends {
    ($backend_module:ident, $backend:expr, [$($scenario:ident),* $(,)?]) => {
        mod $backend_module {
            $(#[tokio::test]
            async fn $scenario() {
                super::run_on($backend, super::$scenario).await;
            })*
        }
    };
}

on_backends!(
    sqlite,
    sea_orm::DbBackend::Sqlite,
    [
        edited_migration_stops_migrate_before_anything_runs,
        applied_migration_missing_from_the_code_is_reported,
        failing_second_statement_rolls_back_or_lists_what_stays,
        not_null_field_without_default_on_filled_table_rolls_back,
        rollback_past_irreversible_sql_touches_nothing,
        constraint_violations_name_the_constraint,
    ]
);
on_backends!(
    postgres,
    sea_orm::DbBackend::Postgres,
    [
        edited_migration_stops_migrate_before_anything_runs,
        applied_migration_missing_from_the_code_is_reported,
        failing_second_statement_rolls_back_or_lists_what_stays,
        not_null_field_without_default_on_filled_table_rolls_back,
        rollback_past_irreversible_sql_touches_nothing,
        constraint_violations_name_the_constraint,
    ]
);
// MariaDB commits each DDL statement, and adds a NOT NULL column to a
// table with rows by giving the rows the type's implicit default, so the
// scenario of that failure is not one there.
on_backends!(
    mysql,
    sea_orm::DbBackend::MySql,
    [
        edited_migration_stops_migrate_before_anything_runs,
        applied_migration_missing_from_the_code_is_reported,
        failing_second_statement_rolls_back_or_lists_what_stays,
        rollback_past_irreversible_sql_touches_nothing,
        constraint_violations_name_the_constraint,
    ]
);
