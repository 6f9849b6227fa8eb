//! Kiln's query helpers against real databases: SQLite, PostgreSQL and
//! MariaDB (see `support/backends.rs` for how each is reached or skipped).

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/backends.rs"]
pub mod backends;

use std::str::FromStr;
use std::sync::LazyLock;

use backends::TestDatabase;
use kiln::db::prelude::*;
use kiln::db::sea_orm::Schema;
use kiln::db::{
    DatabaseConnection, PageLink, Paginator, SqlErr, atomic, bulk_create, get_object_or_404,
    get_or_create, update_or_create,
};

pub mod question {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "q_question")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub text: String,
        #[sea_orm(unique)]
        pub code: Option<String>,
        pub votes: i32,
        pub score: i64,
        pub weight: f64,
        #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
        pub price: Decimal,
        pub day: Date,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A model whose inserts wait for each other, so that two `get_or_create`
/// calls both miss the row before either inserts it.
pub mod racer {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "q_racer")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub origin: String,
    }

    #[async_trait::async_trait]
    impl ActiveModelBehavior for ActiveModel {
        async fn before_save<C>(self, _db: &C, insert: bool) -> Result<Self, DbErr>
        where
            C: ConnectionTrait,
        {
            if insert {
                super::RACE.wait().await;
            }
            Ok(self)
        }
    }
}

static RACE: LazyLock<tokio::sync::Barrier> = LazyLock::new(|| tokio::sync::Barrier::new(2));

pub mod bulk {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "q_bulk")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub a: i32,
        pub b: String,
        pub c: f64,
        pub d: bool,
        pub e: i64,
        pub f: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

async fn create_table<E: EntityTrait>(db: &DatabaseConnection, entity: E) {
    let schema = Schema::new(db.get_database_backend());
    db.execute(&schema.create_table_from_entity(entity))
        .await
        .unwrap();
}

/// Every backend with the `q_question` table.
async fn with_questions() -> Vec<TestDatabase> {
    let all = backends::all().await;
    for test in &all {
        create_table(&test.db, question::Entity).await;
    }
    all
}

fn question(text: &str, votes: i32) -> question::ActiveModel {
    question::ActiveModel {
        text: Set(text.to_owned()),
        votes: Set(votes),
        score: Set(i64::from(votes) * 1_000_000_000),
        weight: Set(f64::from(votes) / 4.0),
        price: Set(Decimal::new(i64::from(votes) * 125, 2)),
        day: Set(Date::from_ymd_opt(2024, 1, 1).unwrap() + chrono_days(votes)),
        ..Default::default()
    }
}

fn chrono_days(days: i32) -> kiln::db::sea_orm::sea_query::prelude::chrono::Duration {
    kiln::db::sea_orm::sea_query::prelude::chrono::Duration::days(days.into())
}

fn by_text(text: &str) -> question::ActiveModel {
    question::ActiveModel {
        text: Set(text.to_owned()),
        ..Default::default()
    }
}

async fn insert_questions(db: &DatabaseConnection, count: i32) {
    let rows = (1..=count).map(|n| question(&format!("Q{n:03}"), n));
    bulk_create(db, rows, None).await.unwrap();
}

#[tokio::test]
async fn get_object_or_404_finds_the_row_or_answers_404_naming_the_table() {
    for test in with_questions().await {
        let db = &test.db;
        let saved = question("What's new?", 1).insert(db).await.unwrap();
        let found = get_object_or_404(question::Entity::find_by_id(saved.id), db)
            .await
            .unwrap();
        assert_eq!(found, saved, "{}", test.label());

        let missing = get_object_or_404(question::Entity::find_by_id(saved.id + 1), db)
            .await
            .unwrap_err();
        assert_eq!(missing.status(), 404, "{}", test.label());
        assert_eq!(
            missing.public_message(),
            Some("No q_question matches the given query.")
        );

        question("Another", 1).insert(db).await.unwrap();
        let several = get_object_or_404(
            question::Entity::find().filter(question::Column::Votes.eq(1)),
            db,
        )
        .await
        .unwrap_err();
        assert_eq!(several.status(), 500, "{}", test.label());
        assert!(
            several
                .to_string()
                .contains("more than one row of `q_question`"),
            "{several}"
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn paginator_follows_djangos_page_rules() {
    for test in with_questions().await {
        let db = &test.db;
        let name = test.label();
        let ordered = || question::Entity::find().order_by_asc(question::Column::Id);

        // Empty: page 1 exists, with no items, unless empty first pages are refused.
        let empty = Paginator::new(ordered(), 10).page(db, 1).await.unwrap();
        assert_eq!((empty.count, empty.num_pages), (0, 1), "{name}");
        assert!(empty.items.is_empty() && !empty.has_next() && !empty.has_previous());
        assert_eq!((empty.start_index(), empty.end_index()), (0, 0));
        let refused = Paginator::new(ordered(), 10)
            .allow_empty_first_page(false)
            .page(db, 1)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 404, "{name}");

        insert_questions(db, 23).await;
        let paginator = Paginator::new(ordered(), 10);
        let first = paginator.page(db, 1).await.unwrap();
        assert_eq!((first.count, first.num_pages), (23, 3), "{name}");
        assert_eq!(first.items[0].text, "Q001");
        assert_eq!(first.next_page_number(), Some(2));
        assert_eq!(first.previous_page_number(), None);
        let last = paginator.page(db, 3).await.unwrap();
        let texts: Vec<&str> = last.items.iter().map(|q| q.text.as_str()).collect();
        assert_eq!(texts, ["Q021", "Q022", "Q023"], "{name}");
        assert_eq!((last.start_index(), last.end_index()), (21, 23));
        assert!(!last.has_next() && last.has_previous());
        assert_eq!(last.page_range(), 1..=3);

        for (param, message) in [
            (Some("4"), "Invalid page (4): That page contains no results"),
            (
                Some("0"),
                "Invalid page (0): That page number is less than 1",
            ),
            (
                Some("two"),
                "Invalid page (two): That page number is not an integer",
            ),
            (
                Some("-1"),
                "Invalid page (-1): That page number is not an integer",
            ),
        ] {
            let error = paginator.page_from_param(db, param).await.unwrap_err();
            assert_eq!(error.status(), 404, "{name} {param:?}");
            assert_eq!(error.public_message(), Some(message), "{name}");
        }
        assert_eq!(paginator.page_from_param(db, None).await.unwrap().number, 1);
        assert_eq!(
            paginator
                .page_from_param(db, Some("last"))
                .await
                .unwrap()
                .number,
            3
        );

        // Orphans: the 3 rows of a third page join the second.
        let with_orphans = Paginator::new(ordered(), 10).orphans(3);
        let last = with_orphans.page(db, 2).await.unwrap();
        assert_eq!((last.num_pages, last.items.len()), (2, 13), "{name}");
        assert_eq!(last.items.last().unwrap().text, "Q023");
        assert_eq!((last.start_index(), last.end_index()), (11, 23));
        assert_eq!(with_orphans.page(db, 3).await.unwrap_err().status(), 404);
        // Two orphans are not enough to drop a page of three.
        let fewer = Paginator::new(ordered(), 10).orphans(2);
        assert_eq!(fewer.page(db, 3).await.unwrap().items.len(), 3, "{name}");

        // A filtered query pages its own rows.
        let filtered = Paginator::new(ordered().filter(question::Column::Votes.gt(20)), 2);
        let page = filtered.page(db, 2).await.unwrap();
        assert_eq!((page.count, page.num_pages, page.items.len()), (3, 2, 1));

        let many = Paginator::new(ordered(), 1).page(db, 12).await.unwrap();
        let links: Vec<String> = many
            .elided_page_range(2, 1)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(links.join(" "), "1 … 10 11 12 13 14 … 23", "{name}");
        assert_eq!(many.elided_page_range(3, 2)[2], PageLink::Ellipsis);
        test.finish().await;
    }
}

#[tokio::test]
async fn get_or_create_creates_once_then_gets() {
    for test in with_questions().await {
        let db = &test.db;
        let defaults = || question("ignored text", 7);
        let (created, was_created) = get_or_create(db, by_text("Unique?"), defaults())
            .await
            .unwrap();
        assert!(was_created, "{}", test.label());
        // The filter's columns and the defaults make the new row.
        assert_eq!((created.text.as_str(), created.votes), ("ignored text", 7));
        let (again, was_created) = get_or_create(db, by_text("ignored text"), defaults())
            .await
            .unwrap();
        assert!(!was_created, "{}", test.label());
        assert_eq!(again, created);
        assert_eq!(question::Entity::find().count(db).await.unwrap(), 1);

        // A NULL in the lookup matches NULL, as Django's `code=None`.
        let null_code = question::ActiveModel {
            code: Set(None),
            ..Default::default()
        };
        let (found, was_created) = get_or_create(db, null_code, question("x", 1))
            .await
            .unwrap();
        assert!(!was_created);
        assert_eq!(found.id, created.id);

        let error = get_or_create(
            db,
            <question::ActiveModel as Default>::default(),
            defaults(),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("sets no column"), "{error}");
        test.finish().await;
    }
}

#[tokio::test]
async fn get_or_create_in_a_transaction_survives_a_failed_insert() {
    // On PostgreSQL a failed statement aborts the transaction around it;
    // get_or_create's savepoint keeps the caller's transaction usable.
    for test in with_questions().await {
        let db = &test.db;
        let mut taken = question("first", 1);
        taken.code = Set(Some("taken".to_owned()));
        taken.insert(db).await.unwrap();

        let name = test.label();
        atomic(db, |tx| {
            Box::pin(async move {
                let mut clash = question("second", 2);
                clash.code = Set(Some("taken".to_owned()));
                let error = get_or_create(tx, by_text("second"), clash)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
                    "{name}: {error}"
                );
                question("third", 3).insert(tx).await?;
                Ok::<_, DbErr>(())
            })
        })
        .await
        .unwrap();
        let texts: Vec<String> = question::Entity::find()
            .order_by_asc(question::Column::Id)
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|q| q.text)
            .collect();
        assert_eq!(texts, ["first", "third"], "{name}");
        test.finish().await;
    }
}

#[tokio::test]
async fn racing_get_or_create_calls_make_exactly_one_row() {
    for test in backends::all().await {
        create_table(&test.db, racer::Entity).await;
        let other = test.connect_again().await;
        let race = |db: DatabaseConnection, origin: &'static str| {
            tokio::spawn(async move {
                get_or_create(
                    &db,
                    racer::ActiveModel {
                        name: Set("shared".to_owned()),
                        ..Default::default()
                    },
                    racer::ActiveModel {
                        origin: Set(origin.to_owned()),
                        ..Default::default()
                    },
                )
                .await
            })
        };
        let one = race(test.db.clone(), "one");
        let two = race(other.clone(), "two");
        let (one, one_created) = one.await.unwrap().unwrap();
        let (two, two_created) = two.await.unwrap().unwrap();
        assert_eq!(one, two, "{}: both calls return the same row", test.label());
        assert!(
            one_created ^ two_created,
            "{}: exactly one call creates ({one_created}, {two_created})",
            test.label()
        );
        assert_eq!(racer::Entity::find().count(&test.db).await.unwrap(), 1);
        other.close().await.unwrap();
        test.finish().await;
    }
}

#[tokio::test]
async fn update_or_create_updates_the_match_or_creates_it() {
    for test in with_questions().await {
        let db = &test.db;
        let name = test.label();
        let votes = |votes: i32| question::ActiveModel {
            votes: Set(votes),
            ..question("ignored", votes)
        };
        let filter = || by_text("Tally");
        let mut defaults = votes(1);
        defaults.text = NotSet;
        let (created, was_created) = update_or_create(db, filter(), defaults.clone())
            .await
            .unwrap();
        assert!(was_created, "{name}");
        assert_eq!((created.text.as_str(), created.votes), ("Tally", 1));

        let (updated, was_created) = update_or_create(
            db,
            filter(),
            question::ActiveModel {
                votes: Set(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(!was_created, "{name}");
        assert_eq!((updated.id, updated.votes), (created.id, 5));
        assert_eq!(updated.weight, created.weight, "untouched columns stay");
        let stored = question::Entity::find_by_id(created.id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.votes, 5, "{name}");
        assert_eq!(question::Entity::find().count(db).await.unwrap(), 1);

        // Empty defaults: found, nothing to change.
        let (same, was_created) =
            update_or_create(db, filter(), <question::ActiveModel as Default>::default())
                .await
                .unwrap();
        assert!(!was_created);
        assert_eq!(same, stored);
        test.finish().await;
    }
}

#[tokio::test]
async fn bulk_create_splits_rows_into_batches_under_the_parameter_limit() {
    const ROWS: i32 = 40_000;
    for test in backends::all().await {
        let db = &test.db;
        create_table(db, bulk::Entity).await;
        let rows = (0..ROWS).map(|n| bulk::ActiveModel {
            a: Set(n),
            b: Set(format!("row {n} ✓")),
            c: Set(f64::from(n) / 8.0),
            d: Set(n % 2 == 0),
            e: Set(i64::from(n) << 32),
            // Set on some rows only: NULL on the others.
            f: if n % 3 == 0 {
                Set(Some(n.to_string()))
            } else {
                NotSet
            },
            ..Default::default()
        });
        // 6 columns x 40,000 rows = 240,000 parameters: several statements
        // on every backend.
        let inserted = bulk_create(db, rows, None).await.unwrap();
        assert_eq!(inserted, 40_000, "{}", test.label());
        assert_eq!(bulk::Entity::find().count(db).await.unwrap(), 40_000);
        let last = bulk::Entity::find()
            .filter(bulk::Column::A.eq(ROWS - 1))
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.b, format!("row {} ✓", ROWS - 1));
        assert_eq!(last.e, i64::from(ROWS - 1) << 32);
        assert_eq!(last.f, Some((ROWS - 1).to_string()), "{}", test.label());
        let nulls = bulk::Entity::find()
            .filter(bulk::Column::F.is_null())
            .count(db)
            .await
            .unwrap();
        assert_eq!(nulls, 26_666, "{}", test.label());

        // An explicit batch size above the limit is lowered, and a failing
        // batch leaves nothing behind.
        let clash = (0..10).map(|n| bulk::ActiveModel {
            id: Set(if n == 9 { 1 } else { 100_000 + i64::from(n) }),
            a: Set(n),
            b: Set(String::new()),
            c: Set(0.0),
            d: Set(false),
            e: Set(0),
            f: NotSet,
        });
        assert!(bulk_create(db, clash, Some(1_000_000)).await.is_err());
        assert_eq!(bulk::Entity::find().count(db).await.unwrap(), 40_000);
        assert_eq!(
            bulk_create(db, Vec::<bulk::ActiveModel>::new(), None)
                .await
                .unwrap(),
            0
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn aggregates_return_the_asked_type_on_every_backend() {
    for test in with_questions().await {
        let db = &test.db;
        let name = test.label();
        let all = question::Entity::find;
        let nothing = || all().filter(question::Column::Votes.gt(1000));

        let empty_sum: Option<i64> = nothing().sum(question::Column::Votes, db).await.unwrap();
        assert_eq!(empty_sum, None, "{name}");
        assert!(!all().exists(db).await.unwrap());

        insert_questions(db, 4).await; // votes 1..=4
        assert!(all().exists(db).await.unwrap());
        assert_eq!(all().count(db).await.unwrap(), 4);

        let votes: Option<i64> = all().sum(question::Column::Votes, db).await.unwrap();
        assert_eq!(votes, Some(10), "{name}: SUM(integer)");
        let score: Option<i64> = all().sum(question::Column::Score, db).await.unwrap();
        assert_eq!(score, Some(10_000_000_000), "{name}: SUM(bigint)");
        let score: Option<Decimal> = all().sum(question::Column::Score, db).await.unwrap();
        assert_eq!(score, Some(Decimal::from(10_000_000_000_i64)), "{name}");
        let weight: Option<f64> = all().sum(question::Column::Weight, db).await.unwrap();
        assert_eq!(weight, Some(2.5), "{name}: SUM(double)");
        let price: Option<Decimal> = all().sum(question::Column::Price, db).await.unwrap();
        assert_eq!(
            price,
            Decimal::from_str("12.50").ok(),
            "{name}: SUM(decimal)"
        );
        let average: Option<f64> = all().avg(question::Column::Votes, db).await.unwrap();
        assert_eq!(average, Some(2.5), "{name}: AVG(integer)");
        let least: Option<i32> = all().min(question::Column::Votes, db).await.unwrap();
        assert_eq!(least, Some(1), "{name}");
        let most: Option<i64> = all().max(question::Column::Score, db).await.unwrap();
        assert_eq!(most, Some(4_000_000_000), "{name}");
        let first: Option<String> = all().min(question::Column::Text, db).await.unwrap();
        assert_eq!(first.as_deref(), Some("Q001"), "{name}");
        let latest: Option<Date> = all().max(question::Column::Day, db).await.unwrap();
        assert_eq!(latest, Date::from_ymd_opt(2024, 1, 5), "{name}");

        // Order and limit are the query's: the two highest votes.
        let top_two: Option<i64> = all()
            .order_by_desc(question::Column::Votes)
            .limit(2)
            .sum(question::Column::Votes, db)
            .await
            .unwrap();
        assert_eq!(top_two, Some(7), "{name}");
        let filtered: Option<i32> = all()
            .filter(question::Column::Votes.lt(3))
            .max(question::Column::Votes, db)
            .await
            .unwrap();
        assert_eq!(filtered, Some(2), "{name}");
        test.finish().await;
    }
}

#[tokio::test]
async fn atomic_rolls_back_a_failed_inner_block_and_keeps_the_outer_work() {
    for test in with_questions().await {
        let db = &test.db;
        let name = test.label();
        atomic(db, |tx| {
            Box::pin(async move {
                question("outer before", 1).insert(tx).await?;
                let inner: Result<(), kiln::Error> = atomic(tx, |tx| {
                    Box::pin(async move {
                        question("inner", 2).insert(tx).await?;
                        Err(kiln::Error::bad_request("rolled back"))
                    })
                })
                .await;
                assert_eq!(inner.unwrap_err().status(), 400);
                // A nested block that succeeds stays.
                atomic(tx, |tx| {
                    Box::pin(async move {
                        question("inner kept", 3).insert(tx).await?;
                        Ok::<_, kiln::Error>(())
                    })
                })
                .await?;
                question("outer after", 4).insert(tx).await?;
                Ok::<_, kiln::Error>(())
            })
        })
        .await
        .unwrap();
        let texts = |db: &DatabaseConnection| {
            let db = db.clone();
            async move {
                question::Entity::find()
                    .order_by_asc(question::Column::Id)
                    .all(&db)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|q| q.text)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            texts(db).await,
            ["outer before", "inner kept", "outer after"],
            "{name}"
        );

        // An outer error undoes everything, nested blocks included.
        let failed: Result<(), DbErr> = atomic(db, |tx| {
            Box::pin(async move {
                question("doomed", 5).insert(tx).await?;
                atomic(tx, |tx| {
                    Box::pin(async move {
                        question("doomed too", 6).insert(tx).await?;
                        Ok::<_, DbErr>(())
                    })
                })
                .await?;
                question("outer before", 7).insert(tx).await?; // unique violation
                Ok(())
            })
        })
        .await;
        assert!(
            matches!(
                failed.unwrap_err().sql_err(),
                Some(SqlErr::UniqueConstraintViolation(_))
            ),
            "{name}"
        );
        assert_eq!(texts(db).await.len(), 3, "{name}");
        test.finish().await;
    }
}

/// The `Db` extractor's future sits inline in the future of every handler
/// that takes one, which axum moves into a box on each request: SeaORM's
/// connect future (run once per database) must stay out of it: with it
/// inline the future was 8,736 bytes in a debug build, without it 240.
#[test]
fn the_db_extractor_future_stays_small() {
    use kiln::deps::axum::extract::FromRequestParts;
    let (mut parts, ()) = kiln::deps::axum::http::Request::new(()).into_parts();
    let future = kiln::db::Db::from_request_parts(&mut parts, &());
    let size = std::mem::size_of_val(&future);
    assert!(size <= 512, "the Db extractor's future is {size} bytes");
}

/// `kiln::db::Connection` (what `Db` holds) runs statements on the sqlx pool
/// itself rather than through SeaORM's `DatabaseConnection`: the rows, the
/// counts and the errors must be what SeaORM gives.
#[tokio::test]
async fn kiln_connection_reads_writes_and_fails_as_seaorm_does_on_every_backend() {
    use kiln::db::{Connection, TransactionTrait};
    for test in with_questions().await {
        let name = test.label();
        let seaorm = &test.db;
        let db = Connection::from(seaorm.clone());

        // Inserts (RETURNING on PostgreSQL and SQLite, last insert id on MariaDB).
        let first = question("first", 1).insert(&db).await.unwrap();
        let second = question("second", 2).insert(&db).await.unwrap();
        assert_ne!(first.id, second.id, "{name}");

        // One row, a missing row, every row: the same as SeaORM's own path.
        let found = question::Entity::find_by_id(second.id)
            .one(&db)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&second), "{name}");
        let missing = question::Entity::find_by_id(second.id + 100)
            .one(&db)
            .await
            .unwrap();
        assert_eq!(missing, None, "{name}");
        let ordered = question::Entity::find().order_by_asc(question::Column::Id);
        let through_kiln = ordered.clone().all(&db).await.unwrap();
        assert_eq!(through_kiln, ordered.all(seaorm).await.unwrap(), "{name}");
        assert_eq!(through_kiln, [first.clone(), second.clone()], "{name}");

        // Statements without rows report the rows they touched.
        let updated = question::Entity::update_many()
            .col_expr(
                question::Column::Votes,
                kiln::db::sea_orm::sea_query::Expr::value(7),
            )
            .filter(question::Column::Votes.lt(5))
            .exec(&db)
            .await
            .unwrap();
        assert_eq!(updated.rows_affected, 2, "{name}");

        // A constraint violation is still recognisable (get_or_create relies on it)...
        let duplicate = question("first", 3).insert(&db).await.unwrap_err();
        assert!(
            matches!(
                duplicate.sql_err(),
                Some(SqlErr::UniqueConstraintViolation(_))
            ),
            "{name}: {duplicate:?}"
        );
        let (existing, created) = get_or_create(&db, by_text("first"), question("first", 9))
            .await
            .unwrap();
        assert!(!created && existing.id == first.id, "{name}");
        // ...and a broken statement is a query error naming the problem.
        let broken = db
            .query_all_raw(kiln::db::sea_orm::Statement::from_string(
                test.backend,
                "SELECT * FROM no_such_table",
            ))
            .await
            .unwrap_err();
        assert!(matches!(broken, DbErr::Query(_)), "{name}: {broken:?}");
        assert!(
            broken.to_string().contains("no_such_table"),
            "{name}: {broken}"
        );

        // Transactions are SeaORM's: a rolled-back insert leaves nothing.
        let tx = db.begin().await.unwrap();
        question("rolled back", 4).insert(&tx).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            question::Entity::find().count(&db).await.unwrap(),
            2,
            "{name}"
        );
        test.finish().await;
    }
}
