//! Fixtures (`dump` / `load`) against real databases: SQLite, PostgreSQL and
//! MariaDB (see `support/backends.rs` for how each is reached or skipped).
//!
//! The tables come from a hand-built `ProjectState`, created by Kiln's
//! schema editor as a migration would.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/backends.rs"]
pub mod backends;

use backends::TestDatabase;
use kiln::db::fixtures::{self, FixtureError, Selector};
use kiln::db::migrations::{
    Field, ForeignKey, ModelState, Operation, ProjectState, Type, schema_sql,
};
use kiln::db::{ConnectionTrait, DatabaseConnection, DbBackend};
use serde_json::{Value as Json, json};

fn state() -> ProjectState {
    let mut state = ProjectState::default();
    let mut add = |app: &str, model: ModelState| {
        state
            .models
            .insert((app.to_owned(), model.table.clone()), model);
    };
    add(
        "shop",
        ModelState::new("shop_category")
            .field(Field::new("id", Type::BigInteger).auto_increment())
            .field(Field::new("name", Type::string(100)).unique())
            .field(
                Field::new("parent_id", Type::BigInteger)
                    .null()
                    .references(ForeignKey::to("shop_category", "id")),
            )
            .primary_key(&["id"]),
    );
    add(
        "shop",
        ModelState::new("shop_product")
            .field(Field::new("id", Type::BigInteger).auto_increment())
            .field(
                Field::new("category_id", Type::BigInteger)
                    .references(ForeignKey::to("shop_category", "id")),
            )
            .field(Field::new("name", Type::string(200)))
            .field(Field::new("code", Type::Char(Some(8))).null())
            .field(Field::new("description", Type::Text).null())
            .field(Field::new("tiny", Type::TinyInteger).null())
            .field(Field::new("small", Type::SmallInteger).null())
            .field(Field::new("int", Type::Integer).null())
            .field(Field::new("big", Type::BigInteger).null())
            .field(Field::new("utiny", Type::TinyUnsigned).null())
            .field(Field::new("usmall", Type::SmallUnsigned).null())
            .field(Field::new("uint", Type::Unsigned).null())
            .field(Field::new("ubig", Type::BigUnsigned).null())
            .field(Field::new("ratio", Type::Float).null())
            .field(Field::new("precise", Type::Double).null())
            .field(Field::new("price", Type::Decimal(Some((10, 2)))).null())
            .field(Field::new("active", Type::Boolean).null())
            .field(Field::new("release", Type::Date).null())
            .field(Field::new("opens", Type::Time).null())
            .field(Field::new("created", Type::DateTime).null())
            .field(Field::new("updated", Type::TimestampTz).null())
            .field(Field::new("uid", Type::Uuid).null())
            .field(Field::new("meta", Type::Json).null())
            .field(Field::new("meta_b", Type::JsonBinary).null())
            .field(Field::new("blob", Type::Binary).null())
            .field(
                Field::new(
                    "size",
                    Type::Enum {
                        name: "shop_size".to_owned(),
                        variants: vec!["s".to_owned(), "m".to_owned(), "l".to_owned()],
                    },
                )
                .null(),
            )
            .field(Field::new("extra", Type::Custom("varchar(20)".to_owned())).null())
            .primary_key(&["id"]),
    );
    add(
        "tags",
        ModelState::new("tags_label")
            .field(
                Field::new("product_id", Type::BigInteger)
                    .references(ForeignKey::to("shop_product", "id")),
            )
            .field(Field::new("label", Type::string(50)))
            .field(Field::new("weight", Type::Integer).default(1))
            .primary_key(&["product_id", "label"]),
    );
    add(
        "tags",
        ModelState::new("tags_event")
            .field(Field::new("kind", Type::string(20)))
            .field(Field::new("at", Type::DateTime)),
    );
    state
}

fn quote(name: &str, backend: DbBackend) -> String {
    match backend {
        DbBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

/// The tables, made by Kiln's schema editor as a migration would.
async fn create_tables(db: &DatabaseConnection, state: &ProjectState) {
    let backend = db.get_database_backend();
    let mut before = ProjectState::default();
    for table in ["shop_category", "shop_product", "tags_label", "tags_event"] {
        let (app, model) = state.find_table(table).unwrap();
        let operation = Operation::CreateModel(model.clone());
        let mut after = before.clone();
        operation.apply(app, &mut after).unwrap();
        for sql in schema_sql(&operation, app, &before, &after, backend).unwrap() {
            db.execute_unprepared(&sql)
                .await
                .unwrap_or_else(|error| panic!("{sql}\n{error}"));
        }
        before = after;
    }
}

async fn with_tables() -> Vec<TestDatabase> {
    let state = state();
    let all = backends::all().await;
    for test in &all {
        create_tables(&test.db, &state).await;
    }
    all
}

/// Rows covering every type, NULLs, unicode, a self reference whose parent
/// comes later in the file, and a composite key; written in the form a
/// dump takes, so a dump must give it back unchanged.
fn sample() -> Json {
    json!([
        {"model": "shop.shop_category", "pk": 1,
         "fields": {"name": "Crème brûlée ☕ 日本語 🎉", "parent_id": 2}},
        {"model": "shop.shop_category", "pk": 2,
         "fields": {"name": "Desserts", "parent_id": null}},
        {"model": "shop.shop_product", "pk": 10,
         "fields": {
            "category_id": 1,
            "name": "Ünïcödé \"quoted\" 'single' \\ back\nline\ttab",
            "code": "ABCDEFGH",
            "description": "A long text with emoji 🍮 and RTL שלום",
            "tiny": -128,
            "small": -32768,
            "int": -2147483648,
            "big": -9223372036854775807_i64,
            "utiny": 255,
            "usmall": 65535,
            "uint": 4294967295_u32,
            "ubig": 1099511627776_u64,
            "ratio": 0.1,
            "precise": 0.30000000000000004,
            "price": "12.50",
            "active": true,
            "release": "2024-02-29",
            "opens": "09:30:15.250",
            "created": "2024-02-29T13:45:30.123456",
            "updated": "2024-02-29T12:45:30.354321Z",
            "uid": "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "meta": {"colors": ["red", "vert"], "nested": {"n": 1, "ok": true, "none": null}, "text": "日本"},
            "meta_b": [1, "two", {"three": 3}],
            "blob": "AAEC/f7/S2lsbg==",
            "size": "m",
            "extra": "custom value"
         }},
        {"model": "shop.shop_product", "pk": 11,
         "fields": {
            "category_id": 2,
            "name": "all nulls",
            "code": null, "description": null, "tiny": null, "small": null, "int": null,
            "big": null, "utiny": null, "usmall": null, "uint": null, "ubig": null,
            "ratio": null, "precise": null, "price": null, "active": null, "release": null,
            "opens": null, "created": null, "updated": null, "uid": null, "meta": null,
            "meta_b": null, "blob": null, "size": null, "extra": null
         }},
        {"model": "shop.shop_product", "pk": 12,
         "fields": {
            "category_id": 2,
            "name": "",
            "code": "12345678",
            "description": "",
            "tiny": 0, "small": 0, "int": 0, "big": 0, "utiny": 0, "usmall": 0, "uint": 0, "ubig": 0,
            "ratio": -2.5, "precise": 1e300, "price": "-0.01", "active": false,
            "release": "1970-01-01", "opens": "00:00:00", "created": "1999-12-31T23:59:59",
            "updated": "2038-01-19T03:14:07Z",
            "uid": "00000000-0000-0000-0000-000000000000",
            "meta": [], "meta_b": {}, "blob": "", "size": "l", "extra": "0"
         }},
        {"model": "tags.tags_label", "pk": {"label": "sweet", "product_id": 10},
         "fields": {"weight": 3}},
        {"model": "tags.tags_label", "pk": {"label": "unicode ✓", "product_id": 10},
         "fields": {"weight": -1}},
        {"model": "tags.tags_event", "pk": null,
         "fields": {"at": "2024-01-01T00:00:00", "kind": "created"}},
        {"model": "tags.tags_event", "pk": null,
         "fields": {"at": "2024-01-02T00:00:00", "kind": "updated"}}
    ])
}

/// The entries of `model` in a dump.
fn entries_of<'a>(dump: &'a Json, model: &str) -> Vec<&'a Json> {
    dump.as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["model"] == model)
        .collect()
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let backend = db.get_database_backend();
    let sql = format!("SELECT COUNT(*) AS n FROM {}", quote(table, backend));
    let row = db
        .query_one_raw(kiln::db::sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn dump_load_dump_round_trips_every_type_exactly() {
    let state = state();
    for source in with_tables().await {
        let name = source.label();
        let report = fixtures::load(&source.db, &state, &sample()).await.unwrap();
        assert_eq!(report.objects, 9, "{name}");
        assert_eq!(report.models["shop.shop_product"], 3, "{name}");

        let first = fixtures::dump(&source.db, &state, &[]).await.unwrap();
        // What was loaded comes back unchanged (the array in dump order).
        let mut expected: Vec<Json> = sample().as_array().unwrap().clone();
        if name == "mysql" {
            // The schema editor's MySQL `datetime`, `time` and `timestamp`
            // keep whole seconds.
            let product = &mut expected[2]["fields"];
            product["created"] = json!("2024-02-29T13:45:30");
            product["opens"] = json!("09:30:15");
            product["updated"] = json!("2024-02-29T12:45:30Z");
        }
        let mut got: Vec<Json> = first.as_array().unwrap().clone();
        let key = |entry: &Json| entry.to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(
                got, expected,
                "{name}: dumped entry differs from the loaded one"
            );
        }
        assert_eq!(got.len(), expected.len(), "{name}");

        // Dependency order: categories, products, then the tags' tables;
        // rows by key.
        let models: Vec<&str> = first
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["model"].as_str().unwrap())
            .collect();
        assert_eq!(
            models,
            [
                "shop.shop_category",
                "shop.shop_category",
                "shop.shop_product",
                "shop.shop_product",
                "shop.shop_product",
                "tags.tags_event",
                "tags.tags_event",
                "tags.tags_label",
                "tags.tags_label",
            ],
            "{name}"
        );
        let categories = entries_of(&first, "shop.shop_category");
        assert_eq!(
            (categories[0]["pk"].clone(), categories[1]["pk"].clone()),
            (json!(1), json!(2))
        );

        // Into an empty database, then dump again.
        let target = backends::connect_with(source.backend, backends::Pool::Several)
            .await
            .unwrap();
        create_tables(&target.db, &state).await;
        fixtures::load(&target.db, &state, &first).await.unwrap();
        let second = fixtures::dump(&target.db, &state, &[]).await.unwrap();
        assert_eq!(
            serde_json::to_string_pretty(&second).unwrap(),
            serde_json::to_string_pretty(&first).unwrap(),
            "{name}: dump -> load -> dump changed the fixture"
        );
        target.finish().await;
        source.finish().await;
    }
}

#[tokio::test]
async fn dump_selects_apps_and_tables() {
    let state = state();
    for test in with_tables().await {
        fixtures::load(&test.db, &state, &sample()).await.unwrap();
        let tags = fixtures::dump(&test.db, &state, &["tags".parse().unwrap()])
            .await
            .unwrap();
        assert_eq!(tags.as_array().unwrap().len(), 4, "{}", test.label());
        let one = fixtures::dump(
            &test.db,
            &state,
            &[Selector::Model {
                app: "shop".into(),
                table: "shop_category".into(),
            }],
        )
        .await
        .unwrap();
        assert_eq!(entries_of(&one, "shop.shop_category").len(), 2);
        assert_eq!(one.as_array().unwrap().len(), 2);

        let error = fixtures::dump(&test.db, &state, &["shop.nope".parse().unwrap()])
            .await
            .unwrap_err();
        assert!(matches!(error, FixtureError::Selection { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("shop.shop_category, shop.shop_product"),
            "{error}"
        );
        let error = fixtures::dump(&test.db, &state, &["blog".parse().unwrap()])
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("use one of: shop, tags"),
            "{error}"
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn a_failing_entry_loads_nothing_and_names_entry_model_field_and_fix() {
    let state = state();
    let tables = ["shop_category", "shop_product", "tags_label", "tags_event"];
    for test in with_tables().await {
        let db = &test.db;
        let name = test.label();
        let with = |index: usize, entry: Json| {
            let mut fixture = sample();
            fixture.as_array_mut().unwrap()[index] = entry;
            fixture
        };

        // A foreign key to a missing row: the database refuses entry 5
        // after the rows before it went in; all are rolled back.
        let dangling = with(
            5,
            json!({"model": "tags.tags_label", "pk": {"label": "x", "product_id": 999}, "fields": {}}),
        );
        let error = fixtures::load(db, &state, &dangling).await.unwrap_err();
        match &error {
            FixtureError::Constraint { index, model, .. } => {
                assert_eq!((*index, model.as_str()), (5, "tags.tags_label"), "{name}");
            }
            other => panic!("{name}: expected a constraint error, got {other}"),
        }
        assert!(
            error.to_string().contains("add it to the fixture"),
            "{name}: {error}"
        );
        for table in tables {
            assert_eq!(count(db, table).await, 0, "{name}: {table} kept rows");
        }

        // A duplicate key.
        let duplicate = with(
            4,
            json!({"model": "shop.shop_product", "pk": 10, "fields": {"category_id": 2, "name": "again"}}),
        );
        let error = fixtures::load(db, &state, &duplicate).await.unwrap_err();
        assert!(
            matches!(error, FixtureError::Constraint { index: 4, .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("exists already"), "{error}");
        for table in tables {
            assert_eq!(count(db, table).await, 0, "{name}: {table} kept rows");
        }

        // Checked before anything is inserted.
        let unknown_model = with(
            3,
            json!({"model": "shop.shop_prodcut", "pk": 1, "fields": {}}),
        );
        let error = fixtures::load(db, &state, &unknown_model)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, FixtureError::UnknownModel { index: 3, model, .. } if model == "shop.shop_prodcut"),
            "{error}"
        );
        assert!(error.to_string().contains("shop.shop_product"), "{error}");
        let wrong_app = with(
            3,
            json!({"model": "shop.tags_event", "pk": null, "fields": {}}),
        );
        let error = fixtures::load(db, &state, &wrong_app).await.unwrap_err();
        assert!(
            error.to_string().contains("belongs to app `tags`"),
            "{error}"
        );

        let unknown_field = with(
            2,
            json!({"model": "shop.shop_product", "pk": 10, "fields": {"category_id": 1, "name": "x", "colour": "red"}}),
        );
        let error = fixtures::load(db, &state, &unknown_field)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, FixtureError::UnknownField { index: 2, field, .. } if field == "colour"),
            "{error}"
        );
        assert!(error.to_string().contains("active, big, blob"), "{error}");

        for (field, value, expected) in [
            ("int", json!("12"), "expected an integer"),
            ("tiny", json!(300), "out of range"),
            ("price", json!("twelve"), "expected a decimal string"),
            ("active", json!(1), "expected a boolean"),
            ("release", json!("29/02/2024"), "expected an ISO 8601 date"),
            ("uid", json!("not-a-uuid"), "expected a UUID string"),
            ("blob", json!("***"), "expected a base64 string"),
            ("size", json!("xl"), "expected one of s, m, l"),
            ("name", json!(null), "NOT NULL"),
        ] {
            let entry = json!({"model": "shop.shop_product", "pk": 10,
                               "fields": {"category_id": 1, "name": "x", field: value}});
            let error = fixtures::load(db, &state, &with(2, entry))
                .await
                .unwrap_err();
            match &error {
                FixtureError::InvalidValue {
                    index,
                    model,
                    field: got,
                    ..
                } => {
                    assert_eq!(
                        (*index, model.as_str(), got.as_str()),
                        (2, "shop.shop_product", field)
                    );
                }
                other => panic!("{name}: {field}: expected an invalid value, got {other}"),
            }
            let message = error.to_string();
            assert!(message.contains(expected), "{field}: {message}");
            assert!(message.contains("fix: "), "{message}");
        }

        let error = fixtures::load(db, &state, &json!({"model": "x"}))
            .await
            .unwrap_err();
        assert!(
            matches!(error, FixtureError::Format { index: None, .. }),
            "{error}"
        );
        let error = fixtures::load(db, &state, &with(0, json!({"pk": 1})))
            .await
            .unwrap_err();
        assert!(
            matches!(error, FixtureError::Format { index: Some(0), .. }),
            "{error}"
        );
        for table in tables {
            assert_eq!(count(db, table).await, 0, "{name}: {table} kept rows");
        }

        // The fixture still loads as a whole afterwards.
        assert_eq!(
            fixtures::load(db, &state, &sample()).await.unwrap().objects,
            9
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn loading_moves_sequences_past_the_loaded_keys() {
    let state = state();
    for test in with_tables().await {
        let db = &test.db;
        fixtures::load(db, &state, &sample()).await.unwrap();
        // The next row numbered by the database does not collide with a
        // loaded key (PostgreSQL's sequence was reset; MySQL and SQLite
        // follow the largest key by themselves).
        let backend = db.get_database_backend();
        db.execute_unprepared(&format!(
            "INSERT INTO {} ({}) VALUES ('after the fixture')",
            quote("shop_category", backend),
            quote("name", backend)
        ))
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", test.label()));
        // Auto-increment keys may be left out of a fixture too.
        let without_key = json!([
            {"model": "shop.shop_category", "pk": null, "fields": {"name": "numbered"}},
            {"model": "shop.shop_category", "fields": {"name": "numbered too"}}
        ]);
        fixtures::load(db, &state, &without_key).await.unwrap();
        let dump = fixtures::dump(&test.db, &state, &["shop.shop_category".parse().unwrap()])
            .await
            .unwrap();
        let keys: Vec<i64> = dump
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["pk"].as_i64().unwrap())
            .collect();
        assert_eq!(keys, [1, 2, 3, 4, 5], "{}", test.label());
        test.finish().await;
    }
}

#[tokio::test]
async fn composite_keys_may_be_lists_and_missing_keys_are_refused() {
    let state = state();
    for test in with_tables().await {
        let db = &test.db;
        let mut fixture = sample();
        let entries = fixture.as_array_mut().unwrap();
        entries[5] = json!({"model": "tags.tags_label", "pk": [10, "sweet"], "fields": {}});
        fixtures::load(db, &state, &fixture).await.unwrap();
        let dump = fixtures::dump(db, &state, &["tags.tags_label".parse().unwrap()])
            .await
            .unwrap();
        assert_eq!(
            dump[0],
            json!({"model": "tags.tags_label", "pk": {"product_id": 10, "label": "sweet"}, "fields": {"weight": 1}}),
            "{}: a left-out field takes the column default",
            test.label()
        );
        let missing = json!([{"model": "tags.tags_label", "pk": null, "fields": {"label": "x"}}]);
        let error = fixtures::load(db, &state, &missing).await.unwrap_err();
        assert!(
            matches!(&error, FixtureError::InvalidValue { field, .. } if field == "product_id"),
            "{error}"
        );
        test.finish().await;
    }
}
