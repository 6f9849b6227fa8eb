//! A peer in Kiln's benchmark: TechEmpower's plaintext, json, db, queries,
//! fortunes and updates tests on Cot, written the way Cot's guide teaches
//! (a `Project` with one `App`, `#[model]` structs queried with `query!`
//! through the `Database` extractor, an askama template for the fortunes
//! page, the `#[cot::main]` command line), release mode, `debug = false`,
//! with only the `Server` header added, as TechEmpower's entries do.
//!
//! `benchmarks/run` builds and starts it; by hand, after `benchmarks/db/setup`:
//! `cargo run --release -- -c prod run -l 127.0.0.1:8080` in this folder.
//! `DATABASE_URL` (a `postgresql://` URL) names the database.
//!
//! Cot's `Database` is a sqlx pool opened with `PgPool::connect(url)`: its
//! size is sqlx's default (10 connections), which Cot does not let a
//! project change.

use cot::cli::CliMetadata;
use cot::config::{DatabaseConfig, ProjectConfig};
use cot::db::{Database, Model, model, query};
use cot::html::Html;
use cot::json::Json;
use cot::project::{MiddlewareContext, RegisterAppsContext, RootHandler, RootHandlerBuilder};
use cot::request::extractors::UrlQuery;
use cot::router::{Route, Router};
use cot::{App, AppBuilder, Project, Template};
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;

/// Rows in `world`; ids and random numbers are in `1..=WORLD_ROWS`.
const WORLD_ROWS: i32 = 10_000;
/// TechEmpower's database, created by `benchmarks/db/setup`.
const DEFAULT_DATABASE_URL: &str =
    "postgresql://postgres@127.0.0.1:5432/hello_world?sslmode=disable";

/// TechEmpower's `world` table. Its schema belongs to `benchmarks/db/setup`,
/// so the app has no migrations.
///
/// Cot names the table of every app model `<crate>__<table>`
/// (`cot_bench__world`); only `model_type = "internal"` (meant for Cot's
/// own tables) keeps `table_name` as written, so both models use it to reach
/// the shared tables. It also keeps them out of Cot's migration generator.
#[derive(Debug, Clone, Serialize)]
#[model(model_type = "internal", table_name = "world")]
struct World {
    #[model(primary_key)]
    id: i32,
    #[serde(rename = "randomNumber")]
    randomnumber: i32,
}

#[derive(Debug, Clone)]
#[model(model_type = "internal", table_name = "fortune")]
struct Fortune {
    #[model(primary_key)]
    id: i32,
    message: String,
}

#[derive(Template)]
#[template(path = "fortunes.html")]
struct FortunesTemplate<'a> {
    fortunes: &'a [Fortune],
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// Serialised per request, as TechEmpower requires.
async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

/// A random row of `world`, by its own query.
async fn random_world(db: &Database) -> cot::Result<World> {
    let id = rand::random_range(1..=WORLD_ROWS);
    query!(World, $id == id)
        .get(db)
        .await?
        .ok_or_else(|| cot::Error::internal(format!("world {id} does not exist")))
}

/// N random rows, one query each, one after the other.
async fn random_worlds(db: &Database, count: usize) -> cot::Result<Vec<World>> {
    let mut worlds = Vec::with_capacity(count);
    for _ in 0..count {
        worlds.push(random_world(db).await?);
    }
    Ok(worlds)
}

/// `?queries=N` for the queries and updates tests.
#[derive(Deserialize)]
struct Count {
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

async fn db(db: Database) -> cot::Result<Json<World>> {
    Ok(Json(random_world(&db).await?))
}

async fn queries(db: Database, UrlQuery(count): UrlQuery<Count>) -> cot::Result<Json<Vec<World>>> {
    Ok(Json(random_worlds(&db, count.clamped()).await?))
}

/// Every fortune plus one added at request time, sorted by message, through
/// the (autoescaping) template.
async fn fortunes(db: Database) -> cot::Result<Html> {
    let mut fortunes = Fortune::objects().all(&db).await?;
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_unstable_by(|a, b| a.message.cmp(&b.message));
    let page = FortunesTemplate {
        fortunes: &fortunes,
    }
    .render()?;
    Ok(Html::new(page))
}

/// N random rows, each given a new random number and saved with
/// `Database::update` (its own `UPDATE`).
async fn updates(db: Database, UrlQuery(count): UrlQuery<Count>) -> cot::Result<Json<Vec<World>>> {
    let mut worlds = random_worlds(&db, count.clamped()).await?;
    for world in &mut worlds {
        world.randomnumber = rand::random_range(1..=WORLD_ROWS);
        db.update(world).await?;
    }
    Ok(Json(worlds))
}

struct BenchApp;

impl App for BenchApp {
    fn name(&self) -> &str {
        env!("CARGO_PKG_NAME")
    }

    fn router(&self) -> Router {
        Router::with_urls([
            Route::with_handler("/plaintext", plaintext),
            Route::with_handler("/json", json),
            Route::with_handler("/db", db),
            Route::with_handler("/queries", queries),
            Route::with_handler("/fortunes", fortunes),
            Route::with_handler("/updates", updates),
        ])
    }
}

struct BenchProject;

impl Project for BenchProject {
    fn cli_metadata(&self) -> CliMetadata {
        cot::cli::metadata!()
    }

    /// Production settings (`COT_DEBUG=1` shows Cot's error pages, to
    /// find what failed); the database from `DATABASE_URL`.
    fn config(&self, _config_name: &str) -> cot::Result<ProjectConfig> {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        Ok(ProjectConfig::builder()
            .debug(std::env::var_os("COT_DEBUG").is_some())
            .database(DatabaseConfig::builder().url(url).build())
            .build())
    }

    fn register_apps(&self, apps: &mut AppBuilder, _context: &RegisterAppsContext) {
        apps.register_with_views(BenchApp, "");
    }

    /// Only the `Server` header TechEmpower requires; hyper adds `Date`.
    fn middlewares(
        &self,
        handler: RootHandlerBuilder,
        _context: &MiddlewareContext,
    ) -> RootHandler {
        handler
            .middleware(SetResponseHeaderLayer::overriding(
                cot::http::header::SERVER,
                cot::http::HeaderValue::from_static("cot"),
            ))
            .build()
    }
}

#[cot::main]
fn main() -> impl Project {
    BenchProject
}
