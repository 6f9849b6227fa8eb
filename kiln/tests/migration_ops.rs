//! Every migration operation against real databases: the schema editor's
//! SQL runs forwards, the schema is checked by what it now accepts and
//! rejects (with the rows already there kept), then the inverse operation's
//! SQL runs and the schema is checked to be back.
//!
//! Each scenario runs on SQLite (a temporary file), PostgreSQL and
//! MariaDB/MySQL; see `support/backends.rs` (shared with other test files
//! through `#[path]`) for the servers and for how an
//! unreachable server skips (or, with `KILN_REQUIRE_BACKENDS=1`, fails).
//!
//! `KILN_TEST_PRINT_SQL=1` prints the SQL of every migration step.
//!
//! SQL in the checks uses lower-case, unquoted names that every backend
//! reads alike.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot read its own state should stop there"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::future::Future;

use backends::TestDatabase;
use kiln::db::migrations::{
    Action, Field, ForeignKey, Index, ModelState, Operation, ProjectState, SQLITE_AFTER_MIGRATION,
    SQLITE_BEFORE_MIGRATION, SQLITE_CHECK_FOREIGN_KEYS, Type, schema_sql,
};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, TransactionTrait};

const APP: &str = "polls";

/// A test database and the state its schema is in.
struct Harness {
    database: TestDatabase,
    state: ProjectState,
}

/// One operation that ran forwards, with the states around it, so that it
/// can be rolled back.
struct Step {
    operation: Operation,
    before: ProjectState,
    after: ProjectState,
}

impl Harness {
    fn backend(&self) -> DbBackend {
        self.database.backend
    }

    fn is(&self, backend: DbBackend) -> bool {
        self.backend() == backend
    }

    /// Whether the backend enforces `VARCHAR(n)` lengths and integer ranges
    /// (SQLite stores any value in any column).
    fn typed(&self) -> bool {
        !self.is(DbBackend::Sqlite)
    }

    /// Runs `operation` forwards; panics when its SQL fails.
    async fn forwards(&mut self, operation: Operation) -> Step {
        match self.try_forwards(operation).await {
            Ok(step) => step,
            Err(error) => panic!("{error}"),
        }
    }

    /// Runs `operation` forwards; on failure the state stays as it was.
    async fn try_forwards(&mut self, operation: Operation) -> Result<Step, String> {
        let before = self.state.clone();
        let mut after = before.clone();
        operation
            .apply(APP, &mut after)
            .unwrap_or_else(|error| panic!("{operation}: {error}"));
        let sql = schema_sql(&operation, APP, &before, &after, self.backend())
            .unwrap_or_else(|error| panic!("{operation}: {error}"));
        self.migrate(&sql)
            .await
            .map_err(|error| format!("{operation}: {error}"))?;
        self.state = after.clone();
        Ok(Step {
            operation,
            before,
            after,
        })
    }

    /// Rolls `step` back with the SQL of its inverse, from `after` to
    /// `before`. Steps roll back in the reverse order they ran.
    async fn backwards(&mut self, step: Step) {
        assert!(
            self.state == step.after,
            "roll back the latest step first ({})",
            step.operation
        );
        let inverse = step
            .operation
            .inverse(APP, &step.before)
            .unwrap_or_else(|error| panic!("{error}"));
        let mut replayed = step.after.clone();
        inverse
            .apply(APP, &mut replayed)
            .unwrap_or_else(|error| panic!("{inverse}: {error}"));
        // Field order is compared apart: the inverse of RemoveField appends
        // the column at the end, as the database does.
        assert_eq!(
            unordered(&replayed),
            unordered(&step.before),
            "the inverse of {} restores the state",
            step.operation
        );
        let sql = schema_sql(&inverse, APP, &step.after, &step.before, self.backend())
            .unwrap_or_else(|error| panic!("{inverse}: {error}"));
        self.migrate(&sql)
            .await
            .unwrap_or_else(|error| panic!("rolling back {}: {error}", step.operation));
        self.state = step.before;
    }

    /// Runs a migration's statements as the executor does: in a transaction
    /// where DDL is transactional, and on SQLite with foreign keys off
    /// around it and checked before commit.
    async fn migrate(&self, statements: &[String]) -> Result<(), String> {
        let db = &self.database.db;
        let listing = || statements.join(";\n");
        if std::env::var_os("KILN_TEST_PRINT_SQL").is_some() {
            eprintln!("-- {:?}\n{};", self.backend(), listing());
        }
        if self.is(DbBackend::MySql) {
            for statement in statements {
                db.execute_unprepared(statement)
                    .await
                    .map_err(|error| format!("{error}\nin:\n{}", listing()))?;
            }
            return Ok(());
        }
        if self.is(DbBackend::Sqlite) {
            self.exec(SQLITE_BEFORE_MIGRATION).await;
        }
        let outcome = async {
            let transaction = db.begin().await.map_err(|error| error.to_string())?;
            for statement in statements {
                if let Err(error) = transaction.execute_unprepared(statement).await {
                    let _ = transaction.rollback().await;
                    return Err(format!("{error}\nin:\n{}", listing()));
                }
            }
            if self.is(DbBackend::Sqlite) {
                let broken = transaction
                    .query_all_raw(Statement::from_string(
                        DbBackend::Sqlite,
                        SQLITE_CHECK_FOREIGN_KEYS,
                    ))
                    .await
                    .map_err(|error| error.to_string())?;
                if !broken.is_empty() {
                    let _ = transaction.rollback().await;
                    return Err(format!(
                        "{} broken foreign keys after:\n{}",
                        broken.len(),
                        listing()
                    ));
                }
            }
            transaction
                .commit()
                .await
                .map_err(|error| error.to_string())
        }
        .await;
        if self.is(DbBackend::Sqlite) {
            self.exec(SQLITE_AFTER_MIGRATION).await;
        }
        outcome
    }

    async fn try_exec(&self, sql: &str) -> Result<(), String> {
        self.database
            .db
            .execute_unprepared(sql)
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    async fn exec(&self, sql: &str) {
        if let Err(error) = self.try_exec(sql).await {
            panic!("`{sql}` failed on {:?}: {error}", self.backend());
        }
    }

    async fn rejects(&self, sql: &str) {
        assert!(
            self.try_exec(sql).await.is_err(),
            "`{sql}` was accepted on {:?}",
            self.backend()
        );
    }

    async fn row(&self, sql: &str) -> QueryResult {
        self.database
            .db
            .query_one_raw(Statement::from_string(self.backend(), sql))
            .await
            .unwrap_or_else(|error| panic!("`{sql}` failed on {:?}: {error}", self.backend()))
            .unwrap_or_else(|| panic!("`{sql}` returned no row"))
    }

    /// The first column of the first row, as an integer whatever its width.
    async fn int(&self, sql: &str) -> Option<i64> {
        let row = self.row(sql).await;
        if let Ok(value) = row.try_get_by_index::<Option<i64>>(0) {
            return value;
        }
        if let Ok(value) = row.try_get_by_index::<Option<i32>>(0) {
            return value.map(i64::from);
        }
        if let Ok(value) = row.try_get_by_index::<Option<i16>>(0) {
            return value.map(i64::from);
        }
        if let Ok(value) = row.try_get_by_index::<Option<i8>>(0) {
            return value.map(i64::from);
        }
        if let Ok(value) = row.try_get_by_index::<Option<bool>>(0) {
            return value.map(i64::from);
        }
        panic!("`{sql}` returned no integer")
    }

    async fn text(&self, sql: &str) -> Option<String> {
        self.row(sql)
            .await
            .try_get_by_index::<Option<String>>(0)
            .unwrap_or_else(|error| panic!("`{sql}` returned no text: {error}"))
    }

    async fn count(&self, table: &str) -> i64 {
        self.int(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap_or_default()
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

    async fn has_index(&self, name: &str) -> bool {
        let sql = match self.backend() {
            DbBackend::Sqlite => {
                format!(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
                )
            }
            DbBackend::Postgres => format!(
                "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = '{name}'"
            ),
            _ => format!(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = '{name}'"
            ),
        };
        self.int(&sql).await.unwrap_or_default() > 0
    }

    /// Whether a named constraint exists; `None` on SQLite, whose
    /// constraint names are never looked up.
    async fn has_constraint(&self, name: &str) -> Option<bool> {
        let schema = match self.backend() {
            DbBackend::Sqlite => return None,
            DbBackend::Postgres => "current_schema()",
            _ => "DATABASE()",
        };
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.table_constraints WHERE constraint_schema = {schema} AND constraint_name = '{name}'"
        );
        Some(self.int(&sql).await.unwrap_or_default() > 0)
    }

    async fn assert_constraint(&self, name: &str, exists: bool) {
        if let Some(found) = self.has_constraint(name).await {
            assert_eq!(found, exists, "constraint {name} on {:?}", self.backend());
        }
    }

    /// Whether PostgreSQL has the enum type `name` in the test's schema.
    async fn has_pg_type(&self, name: &str) -> bool {
        let sql = format!(
            "SELECT COUNT(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE n.nspname = current_schema() AND t.typname = '{name}'"
        );
        self.int(&sql).await.unwrap_or_default() > 0
    }
}

/// `state` with every model's fields sorted by name.
fn unordered(state: &ProjectState) -> ProjectState {
    let mut state = state.clone();
    for model in state.models.values_mut() {
        model.fields.sort_by(|a, b| a.name.cmp(&b.name));
    }
    state
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
    scenario(Harness {
        database,
        state: ProjectState::default(),
    })
    .await;
}

/// One `#[tokio::test]` per scenario and backend, in modules `sqlite`,
/// `postgres` and `mysql`.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $scenario() {
                super::run_on(sea_orm::DbBackend::Sqlite, super::$scenario).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $scenario() {
                super::run_on(sea_orm::DbBackend::Postgres, super::$scenario).await;
            })*
        }
        mod mysql {
            $(#[tokio::test]
            async fn $scenario() {
                super::run_on(sea_orm::DbBackend::MySql, super::$scenario).await;
            })*
        }
    };
}

on_every_backend!(
    create_and_delete_model_with_indexes,
    composite_primary_key_join_table_with_two_foreign_keys,
    rename_model_referenced_by_foreign_key,
    add_field_fills_existing_rows,
    add_not_null_field_without_default_fails_on_filled_table,
    remove_field_and_restore_it,
    alter_field_type_length_null_default_unique_key_and_enum,
    rename_field_used_by_index_and_foreign_key,
    add_and_remove_unique_index_over_two_columns,
    foreign_key_on_delete_cascade_and_set_null,
    alter_field_to_auto_increment_continues_after_existing_keys,
    run_sql_forwards_and_backwards,
);

fn id() -> Field {
    Field::new("id", Type::BigInteger).auto_increment()
}

fn key_to(table: &str) -> ForeignKey {
    ForeignKey::to(table, "id")
}

fn model(table: &str) -> ModelState {
    ModelState::new(table).field(id()).primary_key(&["id"])
}

fn enum_type(name: &str, variants: &[&str]) -> Type {
    Type::Enum {
        name: name.to_owned(),
        variants: variants.iter().map(|&variant| variant.to_owned()).collect(),
    }
}

async fn create_and_delete_model_with_indexes(mut h: Harness) {
    let question = model("polls_question")
        .field(Field::new("code", Type::string(10)))
        .field(Field::new("lang", Type::string(5)).default("en"))
        .field(Field::new("slug", Type::string(50)).unique())
        .field(Field::new("votes", Type::Integer).default(0))
        .field(
            Field::new("status", enum_type("polls_status", &["draft", "published"]))
                .default("draft"),
        )
        .field(Field::new("pub_date", Type::DateTime).null())
        .index(Index::new("polls_question_votes", &["votes"]))
        .index(Index::new("polls_question_code_lang", &["code", "lang"]).unique());
    let create = h.forwards(Operation::CreateModel(question)).await;

    h.exec("INSERT INTO polls_question (code, slug) VALUES ('a', 'a')")
        .await;
    assert_eq!(h.int("SELECT id FROM polls_question").await, Some(1));
    assert_eq!(h.int("SELECT votes FROM polls_question").await, Some(0));
    assert_eq!(
        h.text("SELECT lang FROM polls_question").await.as_deref(),
        Some("en")
    );
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_question WHERE status = 'draft'")
            .await,
        Some(1)
    );
    h.rejects("INSERT INTO polls_question (code, slug) VALUES ('b', 'a')")
        .await;
    h.rejects("INSERT INTO polls_question (code, slug) VALUES ('a', 'b')")
        .await;
    h.rejects("INSERT INTO polls_question (code, slug) VALUES (NULL, 'c')")
        .await;
    h.exec("INSERT INTO polls_question (code, lang, slug) VALUES ('a', 'fr', 'c')")
        .await;
    if h.typed() {
        h.rejects("INSERT INTO polls_question (code, slug, status) VALUES ('z', 'z', 'bogus')")
            .await;
    }
    assert!(h.has_index("polls_question_votes").await);
    assert!(h.has_index("polls_question_code_lang").await);
    if h.is(DbBackend::Postgres) {
        assert!(h.has_pg_type("polls_status").await);
    }

    let delete = h
        .forwards(Operation::DeleteModel {
            table: "polls_question".to_owned(),
        })
        .await;
    assert!(!h.has_table("polls_question").await);
    assert!(!h.has_index("polls_question_votes").await);
    assert!(!h.has_index("polls_question_code_lang").await);
    if h.is(DbBackend::Postgres) {
        assert!(!h.has_pg_type("polls_status").await);
    }

    h.backwards(delete).await;
    assert_eq!(h.count("polls_question").await, 0);
    assert!(h.has_index("polls_question_votes").await);
    assert!(h.has_index("polls_question_code_lang").await);
    h.exec("INSERT INTO polls_question (code, slug) VALUES ('a', 'a')")
        .await;
    h.rejects("INSERT INTO polls_question (code, slug) VALUES ('a', 'b')")
        .await;
    h.rejects("INSERT INTO polls_question (code, slug) VALUES ('b', 'a')")
        .await;

    h.backwards(create).await;
    assert!(!h.has_table("polls_question").await);
    if h.is(DbBackend::Postgres) {
        assert!(!h.has_pg_type("polls_status").await);
    }
}

async fn composite_primary_key_join_table_with_two_foreign_keys(mut h: Harness) {
    let tag = h
        .forwards(Operation::CreateModel(
            model("polls_tag").field(Field::new("name", Type::string(50))),
        ))
        .await;
    let article = h
        .forwards(Operation::CreateModel(
            model("polls_article").field(Field::new("title", Type::string(100))),
        ))
        .await;
    let join = h
        .forwards(Operation::CreateModel(
            ModelState::new("polls_article_tags")
                .field(
                    Field::new("article_id", Type::BigInteger)
                        .references(key_to("polls_article").on_delete(Action::Cascade)),
                )
                .field(
                    Field::new("tag_id", Type::BigInteger)
                        .references(key_to("polls_tag").on_delete(Action::Cascade)),
                )
                .primary_key(&["article_id", "tag_id"]),
        ))
        .await;

    h.exec("INSERT INTO polls_tag (id, name) VALUES (1, 'x'), (2, 'y')")
        .await;
    h.exec("INSERT INTO polls_article (id, title) VALUES (1, 'a'), (2, 'b')")
        .await;
    h.exec("INSERT INTO polls_article_tags (article_id, tag_id) VALUES (1, 1), (1, 2), (2, 1)")
        .await;
    h.rejects("INSERT INTO polls_article_tags (article_id, tag_id) VALUES (1, 1)")
        .await;
    h.rejects("INSERT INTO polls_article_tags (article_id, tag_id) VALUES (3, 1)")
        .await;
    h.rejects("INSERT INTO polls_article_tags (article_id, tag_id) VALUES (2, 3)")
        .await;
    h.rejects("INSERT INTO polls_article_tags (article_id, tag_id) VALUES (NULL, 2)")
        .await;
    h.exec("DELETE FROM polls_article WHERE id = 1").await;
    assert_eq!(h.count("polls_article_tags").await, 1);
    h.exec("DELETE FROM polls_tag WHERE id = 1").await;
    assert_eq!(h.count("polls_article_tags").await, 0);

    h.backwards(join).await;
    assert!(!h.has_table("polls_article_tags").await);
    assert_eq!(h.count("polls_article").await, 1);
    h.backwards(article).await;
    h.backwards(tag).await;
    assert!(!h.has_table("polls_article").await);
    assert!(!h.has_table("polls_tag").await);
}

async fn rename_model_referenced_by_foreign_key(mut h: Harness) {
    h.forwards(Operation::CreateModel(
        model("polls_country").field(Field::new("name", Type::string(50))),
    ))
    .await;
    h.forwards(Operation::CreateModel(
        model("polls_author")
            .field(Field::new("name", Type::string(50)).unique())
            .field(
                Field::new("country_id", Type::BigInteger)
                    .null()
                    .references(key_to("polls_country")),
            ),
    ))
    .await;
    h.forwards(Operation::CreateModel(
        model("polls_book")
            .field(Field::new("author_id", Type::BigInteger).references(key_to("polls_author")))
            .field(Field::new("title", Type::string(50))),
    ))
    .await;
    h.exec("INSERT INTO polls_country (id, name) VALUES (1, 'fr')")
        .await;
    h.exec("INSERT INTO polls_author (id, name, country_id) VALUES (1, 'hugo', 1)")
        .await;
    h.exec("INSERT INTO polls_book (id, author_id, title) VALUES (1, 1, 'les mis')")
        .await;

    let rename = h
        .forwards(Operation::RenameModel {
            old: "polls_author".to_owned(),
            new: "polls_writer".to_owned(),
        })
        .await;
    assert!(!h.has_table("polls_author").await);
    assert_eq!(
        h.text("SELECT name FROM polls_writer").await.as_deref(),
        Some("hugo")
    );
    // book -> writer: a key to a missing writer is refused.
    h.rejects("INSERT INTO polls_book (id, author_id, title) VALUES (2, 99, 'x')")
        .await;
    h.exec("INSERT INTO polls_book (id, author_id, title) VALUES (2, 1, 'x')")
        .await;
    // writer <- book: a referenced writer cannot go.
    h.rejects("DELETE FROM polls_writer WHERE id = 1").await;
    // writer's own key and unique constraint survive, under new names.
    h.rejects("INSERT INTO polls_writer (id, name, country_id) VALUES (2, 'zola', 99)")
        .await;
    h.rejects("INSERT INTO polls_writer (id, name) VALUES (2, 'hugo')")
        .await;
    h.assert_constraint("fk_polls_writer_country_id", true)
        .await;
    h.assert_constraint("fk_polls_author_country_id", false)
        .await;
    h.assert_constraint("uq_polls_writer_name", true).await;
    h.assert_constraint("uq_polls_author_name", false).await;
    h.assert_constraint("fk_polls_book_author_id", true).await;

    // Later operations find the renamed constraints (on SQLite, rebuild a
    // table that another references).
    let mut name = h
        .state
        .model(APP, "polls_writer")
        .unwrap()
        .get_field("name")
        .unwrap()
        .clone();
    name.unique = false;
    let not_unique = h
        .forwards(Operation::AlterField {
            table: "polls_writer".to_owned(),
            field: name,
        })
        .await;
    h.exec("INSERT INTO polls_writer (id, name) VALUES (2, 'hugo')")
        .await;
    h.exec("DELETE FROM polls_writer WHERE id = 2").await;
    h.rejects("INSERT INTO polls_book (id, author_id, title) VALUES (3, 99, 'x')")
        .await;
    h.rejects("DELETE FROM polls_writer WHERE id = 1").await;
    let no_country = h
        .forwards(Operation::RemoveField {
            table: "polls_writer".to_owned(),
            column: "country_id".to_owned(),
        })
        .await;
    assert!(!h.has_column("polls_writer", "country_id").await);
    h.assert_constraint("fk_polls_writer_country_id", false)
        .await;

    h.backwards(no_country).await;
    h.rejects("UPDATE polls_writer SET country_id = 99 WHERE id = 1")
        .await;
    h.exec("UPDATE polls_writer SET country_id = 1 WHERE id = 1")
        .await;
    h.backwards(not_unique).await;
    h.rejects("INSERT INTO polls_writer (id, name) VALUES (2, 'hugo')")
        .await;

    h.backwards(rename).await;
    assert!(!h.has_table("polls_writer").await);
    assert_eq!(h.count("polls_author").await, 1);
    assert_eq!(h.count("polls_book").await, 2);
    h.rejects("INSERT INTO polls_book (id, author_id, title) VALUES (3, 99, 'x')")
        .await;
    h.rejects("DELETE FROM polls_author WHERE id = 1").await;
    h.rejects("INSERT INTO polls_author (id, name, country_id) VALUES (2, 'zola', 99)")
        .await;
    h.rejects("INSERT INTO polls_author (id, name) VALUES (2, 'hugo')")
        .await;
    h.assert_constraint("fk_polls_author_country_id", true)
        .await;
    h.assert_constraint("uq_polls_author_name", true).await;
    h.assert_constraint("fk_polls_writer_country_id", false)
        .await;
}

async fn items(h: &mut Harness) {
    h.forwards(Operation::CreateModel(model("polls_owner")))
        .await;
    h.forwards(Operation::CreateModel(
        model("polls_item").field(Field::new("name", Type::string(20))),
    ))
    .await;
    h.exec("INSERT INTO polls_owner (id) VALUES (1), (2)").await;
    h.exec("INSERT INTO polls_item (id, name) VALUES (1, 'one'), (2, 'two')")
        .await;
}

fn add(field: Field) -> Operation {
    Operation::AddField {
        table: "polls_item".to_owned(),
        field,
    }
}

async fn add_field_fills_existing_rows(mut h: Harness) {
    items(&mut h).await;

    let note = h.forwards(add(Field::new("note", Type::Text).null())).await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_item WHERE note IS NULL")
            .await,
        Some(2)
    );

    let score = h
        .forwards(add(Field::new("score", Type::Integer).default(7)))
        .await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_item WHERE score = 7")
            .await,
        Some(2)
    );
    h.exec("INSERT INTO polls_item (id, name) VALUES (3, 'three')")
        .await;
    assert_eq!(
        h.int("SELECT score FROM polls_item WHERE id = 3").await,
        Some(7)
    );
    h.rejects("INSERT INTO polls_item (id, name, score) VALUES (4, 'four', NULL)")
        .await;

    let label = h
        .forwards(add(Field::new("label", Type::string(20)).default("it's")))
        .await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_item WHERE label = 'it''s'")
            .await,
        Some(3)
    );

    let active = h
        .forwards(add(Field::new("active", Type::Boolean).default(true)))
        .await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_item WHERE active = TRUE")
            .await,
        Some(3)
    );

    let code = h
        .forwards(add(Field::new("code", Type::string(10)).null().unique()))
        .await;
    h.exec("UPDATE polls_item SET code = 'x' WHERE id = 1")
        .await;
    h.rejects("UPDATE polls_item SET code = 'x' WHERE id = 2")
        .await;

    let owner = h
        .forwards(add(Field::new("owner_id", Type::BigInteger)
            .null()
            .references(key_to("polls_owner").on_delete(Action::SetNull))))
        .await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_item WHERE owner_id IS NULL")
            .await,
        Some(3)
    );
    h.rejects("UPDATE polls_item SET owner_id = 99 WHERE id = 1")
        .await;
    h.exec("UPDATE polls_item SET owner_id = 1 WHERE id = 1")
        .await;
    h.exec("UPDATE polls_item SET owner_id = 2 WHERE id = 2")
        .await;
    h.exec("DELETE FROM polls_owner WHERE id = 1").await;
    assert_eq!(
        h.int("SELECT owner_id FROM polls_item WHERE id = 1").await,
        None
    );
    assert_eq!(
        h.int("SELECT owner_id FROM polls_item WHERE id = 2").await,
        Some(2)
    );

    for (step, column) in [
        (owner, "owner_id"),
        (code, "code"),
        (active, "active"),
        (label, "label"),
        (score, "score"),
        (note, "note"),
    ] {
        h.backwards(step).await;
        assert!(
            !h.has_column("polls_item", column).await,
            "{column} is gone"
        );
        assert_eq!(h.count("polls_item").await, 3);
        assert_eq!(
            h.text("SELECT name FROM polls_item WHERE id = 2")
                .await
                .as_deref(),
            Some("two")
        );
    }
    // The owner can go now that nothing references it.
    h.exec("DELETE FROM polls_owner WHERE id = 2").await;
}

async fn add_not_null_field_without_default_fails_on_filled_table(mut h: Harness) {
    h.forwards(Operation::CreateModel(model("polls_empty")))
        .await;
    let required = h
        .forwards(Operation::AddField {
            table: "polls_empty".to_owned(),
            field: Field::new("required", Type::Integer),
        })
        .await;
    h.rejects("INSERT INTO polls_empty (id) VALUES (1)").await;
    h.backwards(required).await;

    items(&mut h).await;
    let outcome = h
        .try_forwards(add(Field::new("required", Type::Integer)))
        .await;
    if h.is(DbBackend::MySql) {
        // MySQL fills the rows with the type's implicit default (0) rather
        // than failing; the editor adds nothing of its own.
        let step = outcome.expect("MySQL adds the column");
        assert_eq!(
            h.int("SELECT COUNT(*) FROM polls_item WHERE required = 0")
                .await,
            Some(2)
        );
        h.backwards(step).await;
    } else {
        let error = outcome
            .err()
            .expect("the database refuses NULLs in existing rows");
        assert!(error.to_lowercase().contains("null"), "{error}");
        assert!(!h.has_column("polls_item", "required").await);
        assert_eq!(h.count("polls_item").await, 2);
    }
}

async fn remove_field_and_restore_it(mut h: Harness) {
    items(&mut h).await;
    h.forwards(add(Field::new("note", Type::Text).null())).await;
    h.forwards(add(Field::new("code", Type::string(10)).null().unique()))
        .await;
    h.forwards(add(Field::new("owner_id", Type::BigInteger)
        .null()
        .references(key_to("polls_owner"))))
        .await;
    h.exec("UPDATE polls_item SET note = 'n', code = 'c1', owner_id = 1 WHERE id = 1")
        .await;

    for column in ["note", "code", "owner_id"] {
        let step = h
            .forwards(Operation::RemoveField {
                table: "polls_item".to_owned(),
                column: column.to_owned(),
            })
            .await;
        assert!(
            !h.has_column("polls_item", column).await,
            "{column} is gone"
        );
        assert_eq!(h.count("polls_item").await, 2);
        assert_eq!(
            h.text("SELECT name FROM polls_item WHERE id = 1")
                .await
                .as_deref(),
            Some("one")
        );
        h.backwards(step).await;
        assert!(h.has_column("polls_item", column).await, "{column} is back");
        assert_eq!(h.count("polls_item").await, 2);
    }
    h.exec("UPDATE polls_item SET code = 'x' WHERE id = 1")
        .await;
    h.rejects("UPDATE polls_item SET code = 'x' WHERE id = 2")
        .await;
    h.rejects("UPDATE polls_item SET owner_id = 99 WHERE id = 2")
        .await;
    h.exec("UPDATE polls_item SET owner_id = 2 WHERE id = 2")
        .await;
    h.rejects("DELETE FROM polls_owner WHERE id = 2").await;
}

fn alter(field: Field) -> Operation {
    alter_on("polls_measure", field)
}

fn alter_on(table: &str, field: Field) -> Operation {
    Operation::AlterField {
        table: table.to_owned(),
        field,
    }
}

async fn alter_field_type_length_null_default_unique_key_and_enum(mut h: Harness) {
    let status = |variants: &[&str]| {
        Field::new("status", enum_type("polls_measure_status", variants)).default("a")
    };
    h.forwards(Operation::CreateModel(model("polls_ref"))).await;
    h.forwards(Operation::CreateModel(
        model("polls_measure")
            .field(Field::new("amount", Type::Integer))
            .field(Field::new("label", Type::string(5)).null())
            .field(Field::new("level", Type::Integer).null())
            .field(Field::new("ref_id", Type::BigInteger).null())
            .field(status(&["a", "b"])),
    ))
    .await;
    h.exec("INSERT INTO polls_ref (id) VALUES (1), (2)").await;
    h.exec("INSERT INTO polls_measure (id, amount, label, level) VALUES (1, 1, 'abc', NULL), (2, 2, NULL, 3)")
        .await;

    // Integer -> BigInteger keeps the values.
    let wider = h
        .forwards(alter(Field::new("amount", Type::BigInteger)))
        .await;
    assert_eq!(
        h.int("SELECT amount FROM polls_measure WHERE id = 2").await,
        Some(2)
    );
    h.exec("INSERT INTO polls_measure (id, amount) VALUES (9, 5000000000)")
        .await;
    assert_eq!(
        h.int("SELECT amount FROM polls_measure WHERE id = 9").await,
        Some(5_000_000_000)
    );
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;
    h.backwards(wider).await;
    assert_eq!(
        h.int("SELECT amount FROM polls_measure WHERE id = 2").await,
        Some(2)
    );
    if h.typed() {
        h.rejects("INSERT INTO polls_measure (id, amount) VALUES (9, 5000000000)")
            .await;
    }

    // A longer max length.
    let longer = h
        .forwards(alter(Field::new("label", Type::string(20)).null()))
        .await;
    assert_eq!(
        h.text("SELECT label FROM polls_measure WHERE id = 1")
            .await
            .as_deref(),
        Some("abc")
    );
    h.exec("INSERT INTO polls_measure (id, amount, label) VALUES (9, 0, 'abcdefghij')")
        .await;
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;
    h.backwards(longer).await;
    if h.typed() {
        h.rejects("INSERT INTO polls_measure (id, amount, label) VALUES (9, 0, 'abcdefghij')")
            .await;
    }

    // NULL -> NOT NULL with a default: NULLs take the default.
    let required = h
        .forwards(alter(Field::new("level", Type::Integer).default(9)))
        .await;
    assert_eq!(
        h.int("SELECT level FROM polls_measure WHERE id = 1").await,
        Some(9)
    );
    assert_eq!(
        h.int("SELECT level FROM polls_measure WHERE id = 2").await,
        Some(3)
    );
    h.rejects("INSERT INTO polls_measure (id, amount, level) VALUES (9, 0, NULL)")
        .await;
    h.exec("INSERT INTO polls_measure (id, amount) VALUES (9, 0)")
        .await;
    assert_eq!(
        h.int("SELECT level FROM polls_measure WHERE id = 9").await,
        Some(9)
    );
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;
    h.backwards(required).await;
    h.exec("INSERT INTO polls_measure (id, amount) VALUES (9, 0)")
        .await;
    assert_eq!(
        h.int("SELECT level FROM polls_measure WHERE id = 9").await,
        None
    );
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;

    // A default where there was none.
    let defaulted = h
        .forwards(alter(Field::new("amount", Type::Integer).default(5)))
        .await;
    h.exec("INSERT INTO polls_measure (id) VALUES (9)").await;
    assert_eq!(
        h.int("SELECT amount FROM polls_measure WHERE id = 9").await,
        Some(5)
    );
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;
    h.backwards(defaulted).await;
    h.rejects("INSERT INTO polls_measure (id) VALUES (9)").await;

    // Unique.
    let unique = h
        .forwards(alter(Field::new("label", Type::string(5)).null().unique()))
        .await;
    h.rejects("INSERT INTO polls_measure (id, amount, label) VALUES (9, 0, 'abc')")
        .await;
    h.assert_constraint("uq_polls_measure_label", true).await;
    h.backwards(unique).await;
    h.assert_constraint("uq_polls_measure_label", false).await;
    h.exec("INSERT INTO polls_measure (id, amount, label) VALUES (9, 0, 'abc')")
        .await;
    h.exec("DELETE FROM polls_measure WHERE id = 9").await;

    // A foreign key on an existing column.
    let keyed = h
        .forwards(alter(
            Field::new("ref_id", Type::BigInteger)
                .null()
                .references(key_to("polls_ref").on_delete(Action::Cascade)),
        ))
        .await;
    h.rejects("UPDATE polls_measure SET ref_id = 99 WHERE id = 1")
        .await;
    h.exec("UPDATE polls_measure SET ref_id = 1 WHERE id = 1")
        .await;
    h.exec("DELETE FROM polls_ref WHERE id = 1").await;
    assert_eq!(h.count("polls_measure").await, 1);
    h.backwards(keyed).await;
    h.exec("UPDATE polls_measure SET ref_id = 99 WHERE id = 2")
        .await;
    h.exec("DELETE FROM polls_ref WHERE id = 2").await;

    // An enum gains a value (on PostgreSQL, by replacing its type).
    let more = h.forwards(alter(status(&["a", "b", "c"]))).await;
    h.exec("INSERT INTO polls_measure (id, amount, status) VALUES (9, 0, 'c')")
        .await;
    h.exec("INSERT INTO polls_measure (id, amount) VALUES (10, 0)")
        .await;
    assert_eq!(
        h.int("SELECT COUNT(*) FROM polls_measure WHERE id = 10 AND status = 'a'")
            .await,
        Some(1)
    );
    h.exec("DELETE FROM polls_measure WHERE id IN (9, 10)")
        .await;
    h.backwards(more).await;
    if h.typed() {
        h.rejects("INSERT INTO polls_measure (id, amount, status) VALUES (9, 0, 'c')")
            .await;
    }
    h.exec("INSERT INTO polls_measure (id, amount, status) VALUES (9, 0, 'b')")
        .await;
    if h.is(DbBackend::Postgres) {
        assert!(h.has_pg_type("polls_measure_status").await);
        assert!(!h.has_pg_type("polls_measure_status__new").await);
    }
    assert_eq!(h.count("polls_measure").await, 2);
}

async fn rename_field_used_by_index_and_foreign_key(mut h: Harness) {
    let rename = |table: &str, old: &str, new: &str| Operation::RenameField {
        table: table.to_owned(),
        old: old.to_owned(),
        new: new.to_owned(),
    };
    h.forwards(Operation::CreateModel(
        model("polls_author").field(Field::new("name", Type::string(50))),
    ))
    .await;
    h.forwards(Operation::CreateModel(
        model("polls_book")
            .field(
                Field::new("author_id", Type::BigInteger)
                    .references(key_to("polls_author").on_delete(Action::Cascade)),
            )
            .field(Field::new("title", Type::string(50)))
            .field(Field::new("isbn", Type::string(20)).unique())
            .index(Index::new("polls_book_title_author", &["title", "author_id"]).unique()),
    ))
    .await;
    h.exec("INSERT INTO polls_author (id, name) VALUES (1, 'hugo')")
        .await;
    h.exec("INSERT INTO polls_book (id, author_id, title, isbn) VALUES (1, 1, 't', 'i1')")
        .await;

    let title = h.forwards(rename("polls_book", "title", "name")).await;
    assert!(!h.has_column("polls_book", "title").await);
    assert_eq!(
        h.text("SELECT name FROM polls_book").await.as_deref(),
        Some("t")
    );
    assert!(h.has_index("polls_book_title_author").await);
    h.rejects("INSERT INTO polls_book (id, author_id, name, isbn) VALUES (2, 1, 't', 'i2')")
        .await;

    let author = h
        .forwards(rename("polls_book", "author_id", "writer_id"))
        .await;
    assert_eq!(h.int("SELECT writer_id FROM polls_book").await, Some(1));
    h.rejects("INSERT INTO polls_book (id, writer_id, name, isbn) VALUES (2, 99, 'u', 'i2')")
        .await;
    h.assert_constraint("fk_polls_book_writer_id", true).await;
    h.assert_constraint("fk_polls_book_author_id", false).await;

    let isbn = h.forwards(rename("polls_book", "isbn", "code")).await;
    h.rejects("INSERT INTO polls_book (id, writer_id, name, code) VALUES (2, 1, 'u', 'i1')")
        .await;
    h.assert_constraint("uq_polls_book_code", true).await;
    h.assert_constraint("uq_polls_book_isbn", false).await;

    // The column a key of another table points to.
    let pk = h.forwards(rename("polls_author", "id", "pk")).await;
    assert_eq!(h.int("SELECT pk FROM polls_author").await, Some(1));
    h.rejects("INSERT INTO polls_book (id, writer_id, name, code) VALUES (2, 99, 'u', 'i2')")
        .await;
    h.exec("INSERT INTO polls_author (pk, name) VALUES (2, 'zola')")
        .await;
    h.exec("INSERT INTO polls_book (id, writer_id, name, code) VALUES (2, 2, 'u', 'i2')")
        .await;

    // Later operations find the renamed constraints.
    let book = h.state.model(APP, "polls_book").unwrap().clone();
    let mut writer = book.get_field("writer_id").unwrap().clone();
    writer.foreign_key = None;
    let unkeyed = h
        .forwards(Operation::AlterField {
            table: "polls_book".to_owned(),
            field: writer,
        })
        .await;
    h.assert_constraint("fk_polls_book_writer_id", false).await;
    h.exec("INSERT INTO polls_book (id, writer_id, name, code) VALUES (3, 99, 'v', 'i3')")
        .await;
    h.exec("DELETE FROM polls_book WHERE id = 3").await;
    let mut code = book.get_field("code").unwrap().clone();
    code.unique = false;
    let not_unique = h
        .forwards(Operation::AlterField {
            table: "polls_book".to_owned(),
            field: code,
        })
        .await;
    h.assert_constraint("uq_polls_book_code", false).await;
    h.exec("INSERT INTO polls_book (id, writer_id, name, code) VALUES (3, 1, 'v', 'i1')")
        .await;
    h.exec("DELETE FROM polls_book WHERE id = 3").await;

    for step in [not_unique, unkeyed, pk, isbn, author, title] {
        h.backwards(step).await;
    }
    assert_eq!(h.count("polls_book").await, 2);
    assert_eq!(
        h.text("SELECT title FROM polls_book WHERE id = 1")
            .await
            .as_deref(),
        Some("t")
    );
    assert_eq!(
        h.int("SELECT author_id FROM polls_book WHERE id = 2").await,
        Some(2)
    );
    h.rejects("INSERT INTO polls_book (id, author_id, title, isbn) VALUES (3, 99, 'v', 'i3')")
        .await;
    h.rejects("INSERT INTO polls_book (id, author_id, title, isbn) VALUES (3, 1, 'v', 'i1')")
        .await;
    h.rejects("INSERT INTO polls_book (id, author_id, title, isbn) VALUES (3, 1, 't', 'i3')")
        .await;
    h.assert_constraint("fk_polls_book_author_id", true).await;
    h.assert_constraint("uq_polls_book_isbn", true).await;
    h.exec("DELETE FROM polls_author WHERE id = 1").await;
    assert_eq!(h.count("polls_book").await, 1);
}

async fn add_and_remove_unique_index_over_two_columns(mut h: Harness) {
    h.forwards(Operation::CreateModel(
        model("polls_vote")
            .field(Field::new("poll", Type::Integer))
            .field(Field::new("voter", Type::string(20))),
    ))
    .await;
    h.exec("INSERT INTO polls_vote (poll, voter) VALUES (1, 'ann'), (1, 'bob'), (2, 'ann')")
        .await;
    let index = || Index::new("polls_vote_poll_voter", &["poll", "voter"]).unique();

    let added = h
        .forwards(Operation::AddIndex {
            table: "polls_vote".to_owned(),
            index: index(),
        })
        .await;
    assert!(h.has_index("polls_vote_poll_voter").await);
    h.rejects("INSERT INTO polls_vote (poll, voter) VALUES (1, 'ann')")
        .await;
    h.exec("INSERT INTO polls_vote (poll, voter) VALUES (2, 'bob')")
        .await;

    let removed = h
        .forwards(Operation::RemoveIndex {
            table: "polls_vote".to_owned(),
            name: "polls_vote_poll_voter".to_owned(),
        })
        .await;
    assert!(!h.has_index("polls_vote_poll_voter").await);
    h.exec("INSERT INTO polls_vote (poll, voter) VALUES (1, 'ann')")
        .await;
    h.exec("DELETE FROM polls_vote WHERE id = (SELECT m FROM (SELECT MAX(id) AS m FROM polls_vote) AS latest)")
        .await;
    h.backwards(removed).await;
    assert!(h.has_index("polls_vote_poll_voter").await);
    h.rejects("INSERT INTO polls_vote (poll, voter) VALUES (1, 'ann')")
        .await;

    h.backwards(added).await;
    assert!(!h.has_index("polls_vote_poll_voter").await);
    h.exec("INSERT INTO polls_vote (poll, voter) VALUES (1, 'ann')")
        .await;
    assert_eq!(h.count("polls_vote").await, 5);
}

async fn foreign_key_on_delete_cascade_and_set_null(mut h: Harness) {
    h.forwards(Operation::CreateModel(model("polls_parent")))
        .await;
    let child = || {
        Field::new("parent_id", Type::BigInteger)
            .null()
            .references(key_to("polls_parent").on_delete(Action::Cascade))
    };
    h.forwards(Operation::CreateModel(model("polls_child").field(child())))
        .await;
    h.exec("INSERT INTO polls_parent (id) VALUES (1), (2), (3)")
        .await;
    h.exec("INSERT INTO polls_child (id, parent_id) VALUES (1, 1), (2, 2), (3, 3)")
        .await;

    h.exec("DELETE FROM polls_parent WHERE id = 1").await;
    assert_eq!(h.count("polls_child").await, 2);

    let mut set_null = child();
    if let Some(key) = &mut set_null.foreign_key {
        key.on_delete = Action::SetNull;
    }
    let changed = h
        .forwards(Operation::AlterField {
            table: "polls_child".to_owned(),
            field: set_null,
        })
        .await;
    h.exec("DELETE FROM polls_parent WHERE id = 2").await;
    assert_eq!(h.count("polls_child").await, 2);
    assert_eq!(
        h.int("SELECT parent_id FROM polls_child WHERE id = 2")
            .await,
        None
    );
    h.rejects("UPDATE polls_child SET parent_id = 99 WHERE id = 2")
        .await;

    h.backwards(changed).await;
    h.exec("DELETE FROM polls_parent WHERE id = 3").await;
    assert_eq!(h.count("polls_child").await, 1);
    h.rejects("UPDATE polls_child SET parent_id = 99 WHERE id = 2")
        .await;
}

async fn alter_field_to_auto_increment_continues_after_existing_keys(mut h: Harness) {
    h.forwards(Operation::CreateModel(
        ModelState::new("polls_ticket")
            .field(Field::new("id", Type::BigInteger))
            .field(Field::new("seat", Type::string(5)))
            .primary_key(&["id"]),
    ))
    .await;
    h.exec("INSERT INTO polls_ticket (id, seat) VALUES (1, 'a'), (7, 'b')")
        .await;
    if h.typed() {
        // SQLite's INTEGER PRIMARY KEY numbers rows either way.
        h.rejects("INSERT INTO polls_ticket (seat) VALUES ('c')")
            .await;
    }

    let numbered = h
        .forwards(alter_on(
            "polls_ticket",
            Field::new("id", Type::BigInteger).auto_increment(),
        ))
        .await;
    h.exec("INSERT INTO polls_ticket (seat) VALUES ('c')").await;
    assert_eq!(
        h.int("SELECT id FROM polls_ticket WHERE seat = 'c'").await,
        Some(8)
    );
    assert_eq!(h.count("polls_ticket").await, 3);

    h.backwards(numbered).await;
    if h.typed() {
        h.rejects("INSERT INTO polls_ticket (seat) VALUES ('d')")
            .await;
    }
    h.exec("INSERT INTO polls_ticket (id, seat) VALUES (20, 'd')")
        .await;
    assert_eq!(h.count("polls_ticket").await, 4);
}

async fn run_sql_forwards_and_backwards(mut h: Harness) {
    let raw = h
        .forwards(Operation::RunSql {
            forwards: vec![
                "CREATE TABLE polls_raw (id INTEGER PRIMARY KEY, v INTEGER)".to_owned(),
                "INSERT INTO polls_raw (id, v) VALUES (1, 10)".to_owned(),
            ],
            backwards: Some(vec!["DROP TABLE polls_raw".to_owned()]),
        })
        .await;
    assert_eq!(h.int("SELECT v FROM polls_raw").await, Some(10));
    h.backwards(raw).await;
    assert!(!h.has_table("polls_raw").await);
}
