//! Kiln's side of the benchmark: TechEmpower's plaintext, json, db,
//! queries, cached queries, fortunes and updates tests, written the way
//! Kiln's docs teach (an app with SeaORM models, the `Db` and `Cache`
//! extractors, a compiled template for the fortunes page, a hot page, and
//! settings in `kiln.toml`)
//! and served through Kiln's full
//! default middleware stack (request id, access log, compression, panic
//! catching, timeouts, body limit).
//!
//! `benchmarks/run` starts the release build in production mode; by hand,
//! after `benchmarks/db/setup`:
//! `KILN_DEBUG=false KILN_SECRET_KEY=$(openssl rand -hex 32) KILN_ALLOWED_HOSTS='["127.0.0.1"]' cargo run --release -p kiln-bench`,
//! then `curl -i http://127.0.0.1:8000/queries?queries=5`.

use kiln::cache::Cache;
use kiln::db::Db;
use kiln::db::prelude::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use kiln::deps::axum::http::HeaderValue;
use kiln::deps::tower_http::set_header::SetResponseHeaderLayer;
use kiln::prelude::*;
use kiln::templates::render;

mod models;

use models::{fortune, world};

async fn plaintext() -> &'static str {
    "Hello, World!"
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// TechEmpower requires the object to be serialised per request, as `Json` does.
async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

/// A random row of `world`, by its own query.
async fn random_world(db: &Db) -> Result<world::Model, Error> {
    let id = rand::random_range(1..=world::ROWS);
    world::Entity::find_by_id(id)
        .one(&**db)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("world {id} does not exist")))
}

/// `?queries=N` for the queries and updates tests, `?count=N` for cached
/// queries.
#[derive(Deserialize)]
struct Count {
    #[serde(alias = "count")]
    queries: Option<String>,
}

impl Count {
    /// TechEmpower's rule: clamped to 1..=500; missing, empty or not a
    /// number means 1.
    fn clamped(&self) -> usize {
        let n = self
            .queries
            .as_deref()
            .and_then(|raw| raw.parse::<i64>().ok())
            .unwrap_or(1)
            .clamp(1, 500);
        usize::try_from(n).unwrap_or(1)
    }
}

/// N random rows, one query each (TechEmpower counts the queries: no
/// `IN (...)`). They run one after the other, as a view would write it.
async fn random_worlds(db: &Db, count: usize) -> Result<Vec<world::Model>, Error> {
    let mut worlds = Vec::with_capacity(count);
    for _ in 0..count {
        worlds.push(random_world(db).await?);
    }
    Ok(worlds)
}

async fn single_query(db: Db) -> Result<Json<world::Model>, Error> {
    Ok(Json(random_world(&db).await?))
}

async fn queries(db: Db, Query(count): Query<Count>) -> Result<Json<Vec<world::Model>>, Error> {
    Ok(Json(random_worlds(&db, count.clamped()).await?))
}

/// N random rows through the cache (`kiln::cache`, in process by the
/// default `cache` setting): one `get_many` for all of them; the rows it
/// does not hold yet are read in one query and stored with `set_many`.
async fn cached_queries(
    db: Db,
    cache: Cache,
    Query(count): Query<Count>,
) -> Result<Json<Vec<world::Model>>, Error> {
    let ids: Vec<i32> = (0..count.clamped())
        .map(|_| rand::random_range(1..=world::ROWS))
        .collect();
    let keys: Vec<String> = ids.iter().map(|id| format!("world:{id}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut found = cache.get_many::<world::Model>(&key_refs).await?;
    let missing: Vec<i32> = ids
        .iter()
        .zip(&found)
        .filter(|(_, world)| world.is_none())
        .map(|(id, _)| *id)
        .collect();
    if !missing.is_empty() {
        let rows = world::Entity::find()
            .filter(world::Column::Id.is_in(missing))
            .all(&*db)
            .await
            .map_err(Error::internal)?;
        let entries: Vec<(String, world::Model)> = rows
            .into_iter()
            .map(|row| (format!("world:{}", row.id), row))
            .collect();
        cache.set_many(&entries, None).await?;
        for (id, slot) in ids.iter().zip(&mut found) {
            if slot.is_none() {
                *slot = entries
                    .iter()
                    .find(|(_, row)| row.id == *id)
                    .map(|(_, row)| row.clone());
            }
        }
    }
    let worlds = found
        .into_iter()
        .zip(&keys)
        .map(|(world, key)| world.ok_or_else(|| Error::not_found(format!("{key} does not exist"))))
        .collect::<Result<_, _>>()?;
    Ok(Json(worlds))
}

/// The fortunes page: `templates/fortunes.html` compiled into Rust at build
/// time (autoescaped), as the docs teach for hot pages. The struct is also
/// the minijinja context of [`fortunes_minijinja`], from the same file.
#[kiln::template(path = "fortunes.html")]
#[derive(Serialize)]
struct FortunesPage {
    fortunes: Vec<fortune::Model>,
}

/// Every fortune plus one added at request time, sorted by message.
async fn sorted_fortunes(db: &Db) -> Result<Vec<fortune::Model>, Error> {
    let mut fortunes = fortune::Entity::find()
        .all(&**db)
        .await
        .map_err(Error::internal)?;
    fortunes.push(fortune::Model {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_unstable_by(|a, b| a.message.cmp(&b.message));
    Ok(fortunes)
}

/// The fortunes test: the page through the compiled template.
async fn fortunes(db: Db) -> Result<FortunesPage, Error> {
    Ok(FortunesPage {
        fortunes: sorted_fortunes(&db).await?,
    })
}

/// The same page through minijinja (`kiln::templates::render`, the engine
/// for pages that are not hot), not part of the benchmark:
/// `curl http://127.0.0.1:8000/fortunes-minijinja`. It spells the escaped
/// characters as Django does (`&lt;`); askama's are numeric (`&#60;`).
async fn fortunes_minijinja(parts: Parts, db: Db) -> Result<Response, Error> {
    let page = FortunesPage {
        fortunes: sorted_fortunes(&db).await?,
    };
    render(&parts, "fortunes.html", page)
}

/// N random rows, each given a new random number and saved with its own
/// `UPDATE` (the ORM's `ActiveModel::update`).
async fn updates(db: Db, Query(count): Query<Count>) -> Result<Json<Vec<world::Model>>, Error> {
    let worlds = random_worlds(&db, count.clamped()).await?;
    let mut updated = Vec::with_capacity(worlds.len());
    for world in worlds {
        let mut row = world.into_active_model();
        row.randomnumber = Set(rand::random_range(1..=world::ROWS));
        updated.push(row.update(&*db).await.map_err(Error::internal)?);
    }
    Ok(Json(updated))
}

/// The app holding TechEmpower's two tables.
fn hello_world() -> App {
    App::new("hello_world")
        .model::<world::Entity>()
        .model::<fortune::Entity>()
        .route("/db", "db", get(single_query))
        .route("/queries", "queries", get(queries))
        .route("/cached-queries", "cached_queries", get(cached_queries))
        .route("/fortunes", "fortunes", get(fortunes))
        .route(
            "/fortunes-minijinja",
            "fortunes_minijinja",
            get(fortunes_minijinja),
        )
        .route("/updates", "updates", get(updates))
}

#[kiln::main]
fn main() -> Project {
    kiln::project!()
        .templates(kiln::templates_dir!("templates"))
        .route("/plaintext", "plaintext", get(plaintext))
        .route("/json", "json", get(json))
        .mount("/", hello_world())
        .layer(SetResponseHeaderLayer::overriding(
            header::SERVER,
            HeaderValue::from_static("kiln"),
        ))
}

#[cfg(test)]
mod tests {
    use super::{Count, FortunesPage, fortune};
    use kiln::prelude::*;

    /// Both engines render `templates/fortunes.html` from the same rows to
    /// the same page, up to the spelling of the escaped characters.
    #[test]
    fn the_compiled_and_minijinja_fortunes_pages_agree() {
        let page = FortunesPage {
            fortunes: vec![
                fortune::Model {
                    id: 11,
                    message: "<script>alert(\"x\");</script>".to_owned(),
                },
                fortune::Model {
                    id: 12,
                    message: "フレームワークのベンチマーク".to_owned(),
                },
            ],
        };
        let compiled = kiln::templates::compiled::render(&page).unwrap();
        assert!(
            compiled.contains(
                "<tr><td>11</td><td>&#60;script&#62;alert(&#34;x&#34;);&#60;/script&#62;</td></tr>"
            ),
            "{compiled}"
        );
        // This build has no SQLite (the default `database_url`); nothing connects.
        let settings = Settings::from_toml(
            "secret_key = \"test-only-secret-key-0123456789abcdef\"\n\
             database_url = \"postgres://postgres@127.0.0.1:5432/hello_world\"",
        )
        .unwrap();
        let (site, _) = Project::new("t")
            .templates(kiln::templates_dir!("templates"))
            .build(settings)
            .unwrap();
        let minijinja = site
            .templates()
            .render_to_string("fortunes.html", &page)
            .unwrap();
        let normalised = compiled
            .replace("&#60;", "&lt;")
            .replace("&#62;", "&gt;")
            .replace("&#34;", "&quot;");
        assert_eq!(normalised, minijinja);
    }

    #[test]
    fn the_query_count_is_clamped_as_techempower_requires() {
        let count = |raw: Option<&str>| {
            Count {
                queries: raw.map(str::to_owned),
            }
            .clamped()
        };
        assert_eq!(count(Some("2")), 2);
        assert_eq!(count(Some("0")), 1);
        assert_eq!(count(Some("-3")), 1);
        assert_eq!(count(Some("501")), 500);
        assert_eq!(count(Some("99999999999999999999")), 1);
        assert_eq!(count(Some("foo")), 1);
        assert_eq!(count(Some("")), 1);
        assert_eq!(count(None), 1);
        let cached: Count = kiln::deps::serde_json::from_str(r#"{"count": "7"}"#).unwrap();
        assert_eq!(cached.clamped(), 7);
    }
}
