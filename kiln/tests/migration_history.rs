//! A project's migration history, scripted: two apps, `library` and `shop`,
//! whose models change over ten steps. Each step runs the real pipeline as
//! `makemigrations` and `migrate` do, without compiling files: the
//! autodetector compares the models with the replayed migrations (a
//! scripted questioner says yes to the step's renames), the writer names
//! and renders the migration, the graph is rebuilt and the executor applies
//! it on one connection. Rows inserted between steps are checked to survive
//! every step; the schema is checked by the replayed state and by what the
//! database now accepts and rejects. Then the whole history is rolled back
//! to zero, app by app, and applied a second time.
//!
//! It runs on SQLite (a temporary file), PostgreSQL and MariaDB/MySQL; see
//! `support/backends.rs` for the servers and for how an unreachable server
//! skips (or, with `KILN_REQUIRE_BACKENDS=1`, fails).
//!
//! SQL in the checks uses lower-case, unquoted names that every backend
//! reads alike.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot read its own state should stop there"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use backends::TestDatabase;
use kiln::db::migrations::autodetect::{NoInput, Questioner, RenameHints, detect};
use kiln::db::migrations::writer::{migration_name, render_migration};
use kiln::db::migrations::{
    Action, DefaultValue, Direction, Executor, Field, ForeignKey, Graph, Index, Key, MigrateError,
    Migration, ModelState, ProjectState, RECORDER_TABLE, Step, Target, Type,
};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

const LIBRARY: &str = "library";
const SHOP: &str = "shop";
/// The apps in the order the project mounts them.
const APPS: [&str; 2] = [LIBRARY, SHOP];

/// The developer at the keyboard during `makemigrations`: yes to the
/// renames this step makes, no to any other, and never a one-off default
/// (no step adds a NOT NULL field without one).
#[derive(Debug, Default)]
struct Script {
    /// `(old table, new table)`.
    model_renames: Vec<(&'static str, &'static str)>,
    /// `(table, old field, new field)`.
    field_renames: Vec<(&'static str, &'static str, &'static str)>,
    /// The questions asked, as `table.old -> new`.
    asked: Vec<String>,
}

impl Script {
    fn rename_model(old: &'static str, new: &'static str) -> Self {
        Self {
            model_renames: vec![(old, new)],
            ..Self::default()
        }
    }

    fn rename_field(table: &'static str, old: &'static str, new: &'static str) -> Self {
        Self {
            field_renames: vec![(table, old, new)],
            ..Self::default()
        }
    }

    /// Every rename the step makes must have been asked about.
    fn assert_all_asked(&self) {
        let expected = self
            .model_renames
            .iter()
            .map(|(old, new)| format!("{old} -> {new}"))
            .chain(
                self.field_renames
                    .iter()
                    .map(|(table, old, new)| format!("{table}.{old} -> {new}")),
            );
        for question in expected {
            assert!(
                self.asked.contains(&question),
                "the autodetector never asked `{question}`; it asked {:?}",
                self.asked
            );
        }
    }
}

impl Questioner for Script {
    fn rename_model(&mut self, _app: &str, old: &str, new: &str) -> bool {
        self.asked.push(format!("{old} -> {new}"));
        self.model_renames.contains(&(old, new))
    }

    fn rename_field(&mut self, _app: &str, table: &str, old: &str, new: &str) -> bool {
        self.asked.push(format!("{table}.{old} -> {new}"));
        self.field_renames.contains(&(table, old, new))
    }

    fn one_off_default(&mut self, app: &str, table: &str, field: &Field) -> Option<DefaultValue> {
        panic!(
            "no step adds a NOT NULL field without default, yet {app}.{table}.{} asks for one",
            field.name
        )
    }
}

/// The project as it evolves: its migrations (the files `makemigrations`
/// would have written), its models, the database and the rows each table
/// should hold.
struct History {
    database: TestDatabase,
    migrations: BTreeMap<&'static str, Vec<Migration>>,
    models: ProjectState,
    rows: BTreeMap<String, i64>,
}

impl History {
    fn new(database: TestDatabase) -> Self {
        Self {
            database,
            migrations: APPS.iter().map(|&app| (app, Vec::new())).collect(),
            models: ProjectState::default(),
            rows: BTreeMap::new(),
        }
    }

    fn backend(&self) -> DbBackend {
        self.database.backend
    }

    /// Whether the backend enforces `VARCHAR(n)` lengths and integer ranges
    /// (SQLite stores any value in any column).
    fn typed(&self) -> bool {
        self.backend() != DbBackend::Sqlite
    }

    // --- the models -----------------------------------------------------

    fn declare(&mut self, app: &str, model: ModelState) {
        self.models
            .models
            .insert((app.to_owned(), model.table.clone()), model);
    }

    fn undeclare(&mut self, app: &str, table: &str) {
        self.models
            .models
            .remove(&(app.to_owned(), table.to_owned()))
            .unwrap_or_else(|| panic!("no model {app}.{table} to remove"));
    }

    fn model_mut(&mut self, app: &str, table: &str) -> &mut ModelState {
        self.models
            .models
            .get_mut(&(app.to_owned(), table.to_owned()))
            .unwrap_or_else(|| panic!("no model {app}.{table}"))
    }

    fn field_mut(&mut self, app: &str, table: &str, column: &str) -> &mut Field {
        self.model_mut(app, table)
            .fields
            .iter_mut()
            .find(|field| field.name == column)
            .unwrap_or_else(|| panic!("no field {table}.{column}"))
    }

    // --- makemigrations and migrate --------------------------------------

    /// The graph of the migrations written so far, as the project builds it.
    fn graph(&self) -> Graph {
        let apps = APPS
            .iter()
            .filter(|app| !self.migrations[*app].is_empty())
            .map(|&app| (app.to_owned(), self.migrations[app].clone()))
            .collect();
        Graph::new(apps).unwrap_or_else(|error| panic!("{error}"))
    }

    /// `makemigrations`: detects what changed between the migrations and
    /// the models, and writes one migration per changed app, named by the
    /// writer and depending on the app's latest migration and on the latest
    /// of each app it needs, as `commands.rs` does. Returns them as
    /// `(app, migration)`, in the order they were written.
    fn makemigrations(&mut self, mut script: Script) -> Vec<(String, Migration)> {
        let graph = self.graph();
        let recorded = graph
            .final_state()
            .unwrap_or_else(|error| panic!("{error}"));
        let changes = detect(&recorded, &self.models, &mut script, &RenameHints::new())
            .unwrap_or_else(|error| panic!("{error}"));
        script.assert_all_asked();
        assert!(!changes.is_empty(), "the step changed no model");

        let mut latest: BTreeMap<String, String> = graph
            .apps()
            .filter_map(|app| Some((app.to_owned(), graph.leaves(app).pop()?.1)))
            .collect();
        let mut written = Vec::new();
        for app in changes.app_order() {
            let app_changes = &changes.apps[app];
            let existing = self
                .migrations
                .get_mut(app)
                .unwrap_or_else(|| panic!("changes for an unknown app `{app}`"));
            let number = u32::try_from(existing.len() + 1).unwrap();
            let name = migration_name(number, &app_changes.operations);
            let mut migration = Migration::new(&name);
            if let Some(previous) = latest.get(app) {
                migration = migration.depends_on(app, previous);
            }
            for dependency in &app_changes.dependencies {
                if let Some(previous) = latest.get(dependency) {
                    migration = migration.depends_on(dependency, previous);
                }
            }
            migration.operations.clone_from(&app_changes.operations);
            let file = render_migration(&migration, SystemTime::now())
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(
                file.contains(&format!("Migration::new(\"{name}\")")),
                "the file of {app}.{name} builds another migration:\n{file}"
            );
            for (dep_app, dep_name) in &migration.dependencies {
                assert!(
                    file.contains(&format!(".depends_on(\"{dep_app}\", \"{dep_name}\")")),
                    "the file of {app}.{name} lacks its dependency on {dep_app}.{dep_name}:\n{file}"
                );
            }
            existing.push(migration.clone());
            latest.insert(app.to_owned(), name);
            written.push((app.to_owned(), migration));
        }

        // The migrations now replay into exactly the models (field order
        // aside), and a second run finds nothing to do.
        let graph = self.graph();
        let replayed = graph
            .final_state()
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            unordered(&replayed),
            unordered(&self.models),
            "the migrations replay into the models"
        );
        let again = detect(&replayed, &self.models, &mut NoInput, &RenameHints::new()).unwrap();
        assert!(again.is_empty(), "a second makemigrations finds {again:?}");
        written
    }

    /// `migrate` to `target`: checks the recorded history against the
    /// code, plans and runs. Returns the steps it ran.
    async fn migrate(&self, target: Target) -> Result<Vec<Step>, MigrateError> {
        let graph = self.graph();
        let executor = Executor::new(&self.database.db, &graph);
        let applied = executor.applied().await?;
        executor.check_history(&applied)?;
        let steps = executor.plan(&applied, &target)?;
        executor.run(&steps, |_| {}).await?;
        Ok(steps)
    }

    /// `makemigrations` then `migrate`: the new migrations, and only they,
    /// are applied; every table keeps its rows.
    async fn step(&mut self, script: Script) -> Vec<(String, Migration)> {
        let written = self.makemigrations(script);
        let steps = self
            .migrate(Target::Latest)
            .await
            .unwrap_or_else(|error| panic!("on {:?}: {error}", self.backend()));
        let expected: Vec<Step> = written
            .iter()
            .map(|(app, migration)| Step {
                key: (app.clone(), migration.name.clone()),
                direction: Direction::Apply,
            })
            .collect();
        assert_eq!(steps, expected, "migrate applies the new migrations");
        self.assert_applied_everything().await;
        self.assert_rows().await;
        written
    }

    async fn applied(&self) -> BTreeSet<Key> {
        let graph = self.graph();
        Executor::new(&self.database.db, &graph)
            .applied()
            .await
            .unwrap()
    }

    async fn assert_applied_everything(&self) {
        let all: BTreeSet<Key> = self
            .migrations
            .iter()
            .flat_map(|(app, migrations)| {
                migrations
                    .iter()
                    .map(|migration| ((*app).to_owned(), migration.name.clone()))
            })
            .collect();
        assert_eq!(self.applied().await, all);
    }

    // --- rows -----------------------------------------------------------

    /// Runs an `INSERT` of one row into `table` and counts it.
    async fn insert(&mut self, table: &str, sql: &str) {
        self.exec(sql).await;
        *self.rows.entry(table.to_owned()).or_default() += 1;
    }

    /// Runs a statement that removes `count` rows of `table`.
    async fn delete(&mut self, table: &str, count: i64, sql: &str) {
        self.exec(sql).await;
        *self.rows.entry(table.to_owned()).or_default() -= count;
    }

    /// The table was renamed: its rows go with it.
    fn rename_rows(&mut self, old: &str, new: &str) {
        let count = self.rows.remove(old).unwrap_or_default();
        self.rows.insert(new.to_owned(), count);
    }

    /// Every table holds the rows it should.
    async fn assert_rows(&self) {
        for (table, expected) in &self.rows {
            assert_eq!(
                self.count(table).await,
                *expected,
                "rows of {table} on {:?}",
                self.backend()
            );
        }
    }

    // --- SQL ------------------------------------------------------------

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

    async fn rejects(&self, sql: &str) -> String {
        match self.try_exec(sql).await {
            Ok(()) => panic!("`{sql}` was accepted on {:?}", self.backend()),
            Err(error) => error,
        }
    }

    async fn rows_of(&self, sql: &str) -> Vec<QueryResult> {
        self.database
            .db
            .query_all_raw(Statement::from_string(self.backend(), sql))
            .await
            .unwrap_or_else(|error| panic!("`{sql}` failed on {:?}: {error}", self.backend()))
    }

    /// The first column of the first row, as an integer whatever its width.
    async fn int(&self, sql: &str) -> Option<i64> {
        let rows = self.rows_of(sql).await;
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("`{sql}` returned no row"));
        integer(row, 0).unwrap_or_else(|| panic!("`{sql}` returned no integer"))
    }

    async fn text(&self, sql: &str) -> Option<String> {
        let rows = self.rows_of(sql).await;
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("`{sql}` returned no row"));
        row.try_get_by_index::<Option<String>>(0)
            .unwrap_or_else(|error| panic!("`{sql}` returned no text: {error}"))
    }

    async fn count(&self, table: &str) -> i64 {
        self.int(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap_or_default()
    }

    async fn id_of(&self, table: &str, column: &str, value: &str) -> i64 {
        self.int(&format!(
            "SELECT id FROM {table} WHERE {column} = '{value}'"
        ))
        .await
        .unwrap_or_else(|| panic!("no {table} with {column} = {value}"))
    }

    async fn has_column(&self, table: &str, column: &str) -> bool {
        self.try_exec(&format!("SELECT {column} FROM {table} WHERE 1 = 0"))
            .await
            .is_ok()
    }

    /// The tables of the test's database, sorted.
    async fn tables(&self) -> Vec<String> {
        let sql = match self.backend() {
            DbBackend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            DbBackend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
            _ => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() ORDER BY table_name"
            }
        };
        self.rows_of(sql)
            .await
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect()
    }
}

/// A column as an integer, whatever width the backend returns.
fn integer(row: &QueryResult, index: usize) -> Option<Option<i64>> {
    if let Ok(value) = row.try_get_by_index::<Option<i64>>(index) {
        return Some(value);
    }
    if let Ok(value) = row.try_get_by_index::<Option<i32>>(index) {
        return Some(value.map(i64::from));
    }
    if let Ok(value) = row.try_get_by_index::<Option<i16>>(index) {
        return Some(value.map(i64::from));
    }
    None
}

/// `state` with every model's fields and indexes sorted by name: the order
/// of columns is not part of what a migration promises.
fn unordered(state: &ProjectState) -> ProjectState {
    let mut state = state.clone();
    for model in state.models.values_mut() {
        model.fields.sort_by(|a, b| a.name.cmp(&b.name));
        model.indexes.sort_by(|a, b| a.name.cmp(&b.name));
    }
    state
}

fn model(table: &str) -> ModelState {
    ModelState::new(table)
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .primary_key(&["id"])
}

fn key_to(table: &str) -> ForeignKey {
    ForeignKey::to(table, "id")
}

fn names(written: &[(String, Migration)]) -> Vec<String> {
    written
        .iter()
        .map(|(app, migration)| format!("{app}.{}", migration.name))
        .collect()
}

fn operations(written: &[(String, Migration)]) -> Vec<String> {
    written
        .iter()
        .flat_map(|(_, migration)| migration.operations.iter().map(ToString::to_string))
        .collect()
}

/// A name longer than `VARCHAR(100)` and shorter than `VARCHAR(200)`.
fn long_name() -> String {
    "L".repeat(150)
}

/// Ten steps of two apps' models, each applied with its rows checked, then
/// rolled back to zero and applied again.
async fn scripted_history(database: TestDatabase) {
    let mut h = History::new(database);

    // 1. Two models, one referencing the other with ON DELETE CASCADE.
    h.declare(
        LIBRARY,
        model("library_author").field(Field::new("name", Type::string(100))),
    );
    h.declare(
        LIBRARY,
        model("library_book")
            .field(Field::new("title", Type::string(200)))
            .field(
                Field::new("author_id", Type::BigInteger)
                    .references(key_to("library_author").on_delete(Action::Cascade)),
            ),
    );
    let written = h.step(Script::default()).await;
    assert_eq!(names(&written), ["library.0001_initial"]);
    assert_eq!(
        operations(&written),
        ["Create model library_author", "Create model library_book"],
        "the referenced model is created first"
    );
    for name in ["Ursula", "Terry", "Gone"] {
        h.insert(
            "library_author",
            &format!("INSERT INTO library_author (name) VALUES ('{name}')"),
        )
        .await;
    }
    let ursula = h.id_of("library_author", "name", "Ursula").await;
    let terry = h.id_of("library_author", "name", "Terry").await;
    let gone = h.id_of("library_author", "name", "Gone").await;
    for (title, author) in [("Earthsea", ursula), ("Mort", terry), ("Tehanu", ursula)] {
        h.insert(
            "library_book",
            &format!("INSERT INTO library_book (title, author_id) VALUES ('{title}', {author})"),
        )
        .await;
    }
    h.exec(&format!(
        "INSERT INTO library_book (title, author_id) VALUES ('Lost', {gone})"
    ))
    .await;
    // Deleting the author takes their book with it (CASCADE).
    h.delete(
        "library_author",
        1,
        &format!("DELETE FROM library_author WHERE id = {gone}"),
    )
    .await;
    h.assert_rows().await;
    h.rejects("INSERT INTO library_book (title, author_id) VALUES ('Orphan', 999999)")
        .await;
    if h.typed() {
        h.rejects(&format!(
            "INSERT INTO library_author (name) VALUES ('{}')",
            long_name()
        ))
        .await;
    }

    // 2. A NOT NULL field with a default, on a table with rows.
    h.model_mut(LIBRARY, "library_book")
        .fields
        .push(Field::new("pages", Type::Integer).default(0));
    let written = h.step(Script::default()).await;
    assert_eq!(names(&written), ["library.0002_add_pages_to_library_book"]);
    assert_eq!(
        h.int("SELECT COUNT(*) FROM library_book WHERE pages = 0")
            .await,
        Some(3),
        "existing rows take the default"
    );
    h.insert(
        "library_book",
        &format!(
            "INSERT INTO library_book (title, author_id, pages) VALUES ('Wyrd Sisters', {terry}, 300)"
        ),
    )
    .await;
    if h.typed() {
        h.rejects(&format!(
            "INSERT INTO library_book (title, author_id, pages) VALUES ('Huge', {terry}, 5000000000)"
        ))
        .await;
    }

    // 3. A field renamed (the developer says yes): the values stay.
    h.field_mut(LIBRARY, "library_book", "title").name = "name".to_owned();
    let written = h
        .step(Script::rename_field("library_book", "title", "name"))
        .await;
    assert_eq!(
        names(&written),
        ["library.0003_rename_library_book_title_to_name"]
    );
    assert_eq!(
        written[0].1.operations.len(),
        1,
        "a rename, not drop and add"
    );
    assert_eq!(
        h.text("SELECT name FROM library_book WHERE pages = 300")
            .await
            .as_deref(),
        Some("Wyrd Sisters")
    );
    assert!(!h.has_column("library_book", "title").await);

    // 4. Types altered: a wider integer, a longer string; values stay.
    h.field_mut(LIBRARY, "library_book", "pages").ty = Type::BigInteger;
    h.field_mut(LIBRARY, "library_author", "name").ty = Type::string(200);
    let written = h.step(Script::default()).await;
    assert_eq!(
        operations(&written),
        [
            "Alter field name on library_author",
            "Alter field pages on library_book"
        ]
    );
    assert!(
        written[0].1.name.starts_with("0004_"),
        "{}",
        written[0].1.name
    );
    assert_eq!(
        h.int("SELECT pages FROM library_book WHERE name = 'Wyrd Sisters'")
            .await,
        Some(300)
    );
    assert_eq!(
        h.text(&format!(
            "SELECT name FROM library_author WHERE id = {terry}"
        ))
        .await
        .as_deref(),
        Some("Terry")
    );
    h.insert(
        "library_book",
        &format!(
            "INSERT INTO library_book (name, author_id, pages) VALUES ('Huge', {terry}, 5000000000)"
        ),
    )
    .await;
    assert_eq!(
        h.int("SELECT pages FROM library_book WHERE name = 'Huge'")
            .await,
        Some(5_000_000_000)
    );
    h.insert(
        "library_author",
        &format!(
            "INSERT INTO library_author (name) VALUES ('{}')",
            long_name()
        ),
    )
    .await;

    // 5. A second app with a key to the first: a cross-app dependency.
    h.declare(
        SHOP,
        model("shop_order")
            .field(Field::new("book_id", Type::BigInteger).references(key_to("library_book")))
            .field(Field::new("quantity", Type::Integer).default(1))
            .field(Field::new("status", Type::string(20)).null()),
    );
    let written = h.step(Script::default()).await;
    assert_eq!(names(&written), ["shop.0001_initial"]);
    let library_leaf = h.migrations[LIBRARY].last().unwrap().name.clone();
    assert_eq!(
        written[0].1.dependencies,
        [(LIBRARY.to_owned(), library_leaf)],
        "the shop's first migration runs after the library's latest"
    );
    // `migrate library` still finds the library's latest migration.
    assert_eq!(
        h.migrate(Target::AppLatest(LIBRARY.to_owned()))
            .await
            .unwrap(),
        []
    );
    let earthsea = h.id_of("library_book", "name", "Earthsea").await;
    let mort = h.id_of("library_book", "name", "Mort").await;
    h.insert(
        "shop_order",
        &format!(
            "INSERT INTO shop_order (book_id, quantity, status) VALUES ({earthsea}, 2, 'paid')"
        ),
    )
    .await;
    h.insert(
        "shop_order",
        &format!("INSERT INTO shop_order (book_id) VALUES ({mort})"),
    )
    .await;
    assert_eq!(
        h.int(&format!(
            "SELECT quantity FROM shop_order WHERE book_id = {mort}"
        ))
        .await,
        Some(1)
    );
    h.rejects("INSERT INTO shop_order (book_id) VALUES (999999)")
        .await;
    // NO ACTION: a book with orders cannot be deleted.
    h.rejects(&format!("DELETE FROM library_book WHERE id = {mort}"))
        .await;

    // 6. A many-to-many join table: composite key, two keys, a new model.
    h.declare(
        LIBRARY,
        model("library_tag").field(Field::new("slug", Type::string(50))),
    );
    h.declare(
        LIBRARY,
        ModelState::new("library_book_tags")
            .field(
                Field::new("book_id", Type::BigInteger)
                    .references(key_to("library_book").on_delete(Action::Cascade)),
            )
            .field(
                Field::new("tag_id", Type::BigInteger)
                    .references(key_to("library_tag").on_delete(Action::Cascade)),
            )
            .primary_key(&["book_id", "tag_id"]),
    );
    let written = h.step(Script::default()).await;
    assert_eq!(
        operations(&written),
        ["Create model library_tag", "Create model library_book_tags"]
    );
    assert_eq!(
        names(&written),
        ["library.0005_create_library_tag_library_book_tags"]
    );
    for slug in ["fantasy", "humour"] {
        h.insert(
            "library_tag",
            &format!("INSERT INTO library_tag (slug) VALUES ('{slug}')"),
        )
        .await;
    }
    let fantasy = h.id_of("library_tag", "slug", "fantasy").await;
    let humour = h.id_of("library_tag", "slug", "humour").await;
    for (book, tag) in [(earthsea, fantasy), (mort, fantasy), (mort, humour)] {
        h.insert(
            "library_book_tags",
            &format!("INSERT INTO library_book_tags (book_id, tag_id) VALUES ({book}, {tag})"),
        )
        .await;
    }
    h.rejects(&format!(
        "INSERT INTO library_book_tags (book_id, tag_id) VALUES ({mort}, {humour})"
    ))
    .await;
    h.rejects(&format!(
        "INSERT INTO library_book_tags (book_id, tag_id) VALUES ({mort}, 999999)"
    ))
    .await;

    // 7. A model renamed (the developer says yes): the key from the books
    //    follows the table and is still enforced.
    h.undeclare(LIBRARY, "library_author");
    h.declare(
        LIBRARY,
        model("library_writer").field(Field::new("name", Type::string(200))),
    );
    h.field_mut(LIBRARY, "library_book", "author_id")
        .foreign_key = Some(key_to("library_writer").on_delete(Action::Cascade));
    h.rename_rows("library_author", "library_writer");
    let written = h
        .step(Script::rename_model("library_author", "library_writer"))
        .await;
    assert_eq!(
        names(&written),
        ["library.0006_rename_library_author_to_library_writer"]
    );
    assert_eq!(
        written[0].1.operations.len(),
        1,
        "a rename, not drop and create"
    );
    assert!(!h.tables().await.contains(&"library_author".to_owned()));
    assert_eq!(
        h.text(&format!(
            "SELECT name FROM library_writer WHERE id = {ursula}"
        ))
        .await
        .as_deref(),
        Some("Ursula")
    );
    h.rejects("INSERT INTO library_book (name, author_id) VALUES ('Orphan', 999999)")
        .await;
    h.insert(
        "library_book",
        &format!("INSERT INTO library_book (name, author_id) VALUES ('Small Gods', {terry})"),
    )
    .await;

    // 8. A unique index over two columns.
    h.model_mut(LIBRARY, "library_book")
        .indexes
        .push(Index::new("library_book_author_name_uniq", &["author_id", "name"]).unique());
    let written = h.step(Script::default()).await;
    assert_eq!(
        names(&written),
        ["library.0007_add_library_book_author_name_uniq"]
    );
    let error = h
        .rejects(&format!(
            "INSERT INTO library_book (name, author_id) VALUES ('Mort', {terry})"
        ))
        .await;
    if h.typed() {
        assert!(
            error.contains("library_book_author_name_uniq"),
            "the error names the index: {error}"
        );
    }
    // The same title by another author is fine.
    h.insert(
        "library_book",
        &format!("INSERT INTO library_book (name, author_id) VALUES ('Mort', {ursula})"),
    )
    .await;

    // 9. NULL to NOT NULL with a default (existing NULLs take it), and a
    //    field made unique; in two apps at once.
    h.insert(
        "shop_order",
        &format!("INSERT INTO shop_order (book_id, status) VALUES ({earthsea}, NULL)"),
    )
    .await;
    let status = h.field_mut(SHOP, "shop_order", "status");
    status.null = false;
    status.default = Some("new".into());
    h.field_mut(LIBRARY, "library_tag", "slug").unique = true;
    let written = h.step(Script::default()).await;
    assert_eq!(
        names(&written),
        [
            "library.0008_alter_slug_on_library_tag",
            "shop.0002_alter_status_on_shop_order"
        ]
    );
    assert_eq!(
        written[1].1.dependencies,
        [(SHOP.to_owned(), "0001_initial".to_owned())],
        "no new key to another app, so no new cross-app dependency"
    );
    assert_eq!(
        h.int("SELECT COUNT(*) FROM shop_order WHERE status IS NULL")
            .await,
        Some(0)
    );
    assert_eq!(
        h.int("SELECT COUNT(*) FROM shop_order WHERE status = 'new'")
            .await,
        Some(2),
        "the NULL rows took the default"
    );
    assert_eq!(
        h.int("SELECT COUNT(*) FROM shop_order WHERE status = 'paid'")
            .await,
        Some(1)
    );
    h.rejects(&format!(
        "INSERT INTO shop_order (book_id, status) VALUES ({mort}, NULL)"
    ))
    .await;
    h.insert(
        "shop_order",
        &format!("INSERT INTO shop_order (book_id) VALUES ({mort})"),
    )
    .await;
    let error = h
        .rejects("INSERT INTO library_tag (slug) VALUES ('fantasy')")
        .await;
    if h.typed() {
        assert!(error.contains("uq_library_tag_slug"), "{error}");
    }

    // 10. A field dropped, and a model dropped with the join table that
    //     references it.
    h.model_mut(LIBRARY, "library_book")
        .fields
        .retain(|field| field.name != "pages");
    h.undeclare(LIBRARY, "library_book_tags");
    h.undeclare(LIBRARY, "library_tag");
    h.rows.remove("library_book_tags");
    h.rows.remove("library_tag");
    let written = h.step(Script::default()).await;
    assert_eq!(
        operations(&written),
        [
            "Remove field pages from library_book",
            "Delete model library_book_tags",
            "Delete model library_tag"
        ],
        "the join table goes before the table it references"
    );
    assert!(!h.has_column("library_book", "pages").await);
    assert_eq!(
        h.tables().await,
        [
            RECORDER_TABLE,
            "library_book",
            "library_writer",
            "shop_order"
        ]
    );
    assert_eq!(h.count(RECORDER_TABLE).await, 11);

    roll_back_to_zero(&mut h).await;
    migrate_again(&mut h).await;
}

/// Rolls the shop back, then the library (dependents first), and checks
/// that only the empty recorder table is left.
async fn roll_back_to_zero(h: &mut History) {
    let steps = h.migrate(Target::Zero(SHOP.to_owned())).await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|step| (step.key.1.as_str(), step.direction))
            .collect::<Vec<_>>(),
        [
            ("0002_alter_status_on_shop_order", Direction::Rollback),
            ("0001_initial", Direction::Rollback)
        ]
    );
    h.rows.remove("shop_order");
    assert!(!h.tables().await.contains(&"shop_order".to_owned()));
    h.assert_rows().await;

    // The library's rollback undoes steps 10 to 6 (the tag tables come
    // back empty and go again; the writers are authors again) before it
    // reaches step 4, whose `VARCHAR(200)` to `VARCHAR(100)` the long name does not
    // fit: typed databases refuse, and what was rolled back stays so.
    h.rename_rows("library_writer", "library_author");
    if h.typed() {
        let error = h
            .migrate(Target::Zero(LIBRARY.to_owned()))
            .await
            .expect_err("the long name does not fit VARCHAR(100)");
        let MigrateError::Statement(failure) = &error else {
            panic!("expected a statement failure, got {error}");
        };
        assert_eq!(failure.key.0, LIBRARY);
        assert!(failure.key.1.starts_with("0004_"), "{error}");
        let message = error.to_string();
        assert!(message.contains("library.0004_"), "{message}");
        assert!(message.contains("fix:"), "{message}");
        if h.backend() == DbBackend::Postgres {
            assert!(failure.rolled_back, "{message}");
        } else {
            // MySQL: the pages column went back to INT before the name
            // failed, and stays so.
            assert!(!failure.rolled_back, "{message}");
            assert_eq!(failure.already_applied.len(), 1, "{message}");
            assert!(message.contains("stay applied"), "{message}");
        }
        let applied = h.applied().await;
        let library: Vec<&str> = applied.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(library.len(), 4, "0001 to 0004 stay applied: {library:?}");
        assert!(library.iter().all(|name| name <= &"0004_~"), "{library:?}");
        h.assert_rows().await;
        h.exec(&format!(
            "UPDATE library_author SET name = 'Anonymous' WHERE name = '{}'",
            long_name()
        ))
        .await;
    }
    let steps = h
        .migrate(Target::Zero(LIBRARY.to_owned()))
        .await
        .unwrap_or_else(|error| panic!("on {:?}: {error}", h.backend()));
    assert!(
        steps
            .iter()
            .all(|step| step.key.0 == LIBRARY && step.direction == Direction::Rollback),
        "{steps:?}"
    );
    assert_eq!(
        steps.last().map(|step| step.key.1.as_str()),
        Some("0001_initial")
    );
    assert_eq!(h.tables().await, [RECORDER_TABLE], "every table is gone");
    assert_eq!(h.count(RECORDER_TABLE).await, 0);
    assert!(h.applied().await.is_empty());
    h.rows.clear();
}

/// The whole history again, on the empty database: every migration
/// applies, in dependency order, and the final schema enforces what the
/// models say.
async fn migrate_again(h: &mut History) {
    let steps = h
        .migrate(Target::Latest)
        .await
        .unwrap_or_else(|error| panic!("on {:?}: {error}", h.backend()));
    assert_eq!(steps.len(), 11);
    let position = |app: &str, prefix: &str| {
        steps
            .iter()
            .position(|step| step.key.0 == app && step.key.1.starts_with(prefix))
            .unwrap()
    };
    assert!(position(SHOP, "0001") > position(LIBRARY, "0004"));
    h.assert_applied_everything().await;
    assert_eq!(
        h.tables().await,
        [
            RECORDER_TABLE,
            "library_book",
            "library_writer",
            "shop_order"
        ]
    );

    h.insert(
        "library_writer",
        "INSERT INTO library_writer (name) VALUES ('Ursula')",
    )
    .await;
    let ursula = h.id_of("library_writer", "name", "Ursula").await;
    h.insert(
        "library_book",
        &format!("INSERT INTO library_book (name, author_id) VALUES ('Earthsea', {ursula})"),
    )
    .await;
    let earthsea = h.id_of("library_book", "name", "Earthsea").await;
    h.insert(
        "shop_order",
        &format!("INSERT INTO shop_order (book_id) VALUES ({earthsea})"),
    )
    .await;
    assert_eq!(
        h.text("SELECT status FROM shop_order").await.as_deref(),
        Some("new")
    );
    h.rejects("INSERT INTO library_book (name, author_id) VALUES ('Orphan', 999999)")
        .await;
    h.rejects(&format!(
        "INSERT INTO library_book (name, author_id) VALUES ('Earthsea', {ursula})"
    ))
    .await;
    h.rejects("INSERT INTO shop_order (book_id) VALUES (999999)")
        .await;
    h.assert_rows().await;
    // Nothing is left to detect or to apply.
    assert!(h.migrate(Target::Latest).await.unwrap().is_empty());
}

/// A migration of another app that depends on an app's latest migration
/// leaves it the latest: the next migration of the app depends on it, and
/// a second latest one is still a conflict.
#[test]
fn a_dependency_from_another_app_does_not_hide_the_latest_migration() {
    let library = vec![
        Migration::new("0001_initial").create_model(model("library_book")),
        Migration::new("0002_pages")
            .depends_on(LIBRARY, "0001_initial")
            .add_field(
                "library_book",
                Field::new("pages", Type::Integer).default(0),
            ),
    ];
    let shop =
        vec![
            Migration::new("0001_initial")
                .depends_on(LIBRARY, "0002_pages")
                .create_model(model("shop_order").field(
                    Field::new("book_id", Type::BigInteger).references(key_to("library_book")),
                )),
        ];
    let apps = vec![
        (LIBRARY.to_owned(), library.clone()),
        (SHOP.to_owned(), shop.clone()),
    ];
    let graph = Graph::new(apps).unwrap();
    assert_eq!(
        graph.leaves(LIBRARY),
        [(LIBRARY.to_owned(), "0002_pages".to_owned())]
    );

    let mut forked = library;
    forked.push(Migration::new("0003_other").depends_on(LIBRARY, "0001_initial"));
    let error =
        Graph::new(vec![(LIBRARY.to_owned(), forked), (SHOP.to_owned(), shop)]).unwrap_err();
    assert!(
        error.to_string().contains("makemigrations --merge"),
        "{error}"
    );
}

async fn run_on(backend: DbBackend) {
    let Some(database) = backends::connect(backend).await else {
        return;
    };
    scripted_history(database).await;
}

#[tokio::test]
async fn sqlite_scripted_history_applies_rolls_back_and_applies_again() {
    run_on(DbBackend::Sqlite).await;
}

#[tokio::test]
async fn postgres_scripted_history_applies_rolls_back_and_applies_again() {
    run_on(DbBackend::Postgres).await;
}

#[tokio::test]
async fn mysql_scripted_history_applies_rolls_back_and_applies_again() {
    run_on(DbBackend::MySql).await;
}
