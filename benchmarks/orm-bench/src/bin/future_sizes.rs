//! Prints the sizes of the futures each side builds per query, which is
//! where callgrind finds Kiln's path spends its extra instructions: a large
//! future is moved (memcpy) into its box on every call.
//!
//! ```sh
//! cargo run --release -p orm-bench --bin future_sizes
//! ```
//!
//! Needs PostgreSQL as the bench does (`ORM_BENCH_POSTGRES_URL`); prints a
//! `SKIPPED` line without it.

use kiln::db::ConnectionTrait;
use kiln::db::prelude::*;
use kiln::db::sea_orm::{DbBackend, Statement, sqlx};
use orm_bench::{Fixture, POSTGRES_URL, world};

fn main() {
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("future_sizes: cannot start a Tokio runtime");
        std::process::exit(1);
    };
    let url = std::env::var("ORM_BENCH_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.to_owned());
    runtime.block_on(async {
        let fixture = match Fixture::create(&url).await {
            Ok(fixture) => fixture,
            Err(error) => {
                println!("SKIPPED: future_sizes: {error}");
                return;
            }
        };
        let db = &fixture.kiln;
        let one = world::Entity::find_by_id(1).one(db);
        println!("kiln: `find_by_id(id).one(&db)` future: {} bytes", size_of_val(&one));
        drop(one);
        let raw = db.query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT 1"));
        println!(
            "kiln: `DatabaseConnection::query_one_raw` future: {} bytes, boxed; the box holds {} bytes",
            size_of_val(&raw),
            size_of_val(&*raw)
        );
        drop(raw);
        let fetch = sqlx::query_as::<_, (i32, i32)>("SELECT id, randomnumber FROM world WHERE id = $1")
            .bind(1)
            .fetch_optional(&fixture.sqlx);
        println!(
            "sqlx: `query_as(..).bind(id).fetch_optional(&pool)` future: {} bytes",
            size_of_val(&fetch)
        );
        drop(fetch);
        fixture.drop_schema().await;
    });
}
