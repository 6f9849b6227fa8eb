//! The baseline of Kiln's benchmark: TechEmpower's plaintext, json, db,
//! queries, cached queries, fortunes and updates tests on bare axum and
//! sqlx, with nothing but the `Server` header every entry must send.
//!
//! `benchmarks/run` starts it; by hand, after `benchmarks/db/setup`:
//! `cargo run --release -p axum-bench -- 127.0.0.1:8080`, then
//! `curl -i http://127.0.0.1:8080/queries?queries=5`. `DATABASE_URL` and
//! `DATABASE_POOL_SIZE` change the database and the pool's size.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::OnceCell;
use tower_http::set_header::SetResponseHeaderLayer;

/// Listens here when no address is given.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// TechEmpower's database, created by `benchmarks/db/setup`.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/hello_world?sslmode=disable";
/// The same pool size as Kiln's entry (`kiln-bench/kiln.toml`).
const DEFAULT_POOL_SIZE: u32 = 8;
/// Rows in `world`; ids and random numbers are in `1..=WORLD_ROWS`.
const WORLD_ROWS: i32 = 10_000;

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

#[derive(Clone, Copy, Serialize, sqlx::FromRow)]
struct World {
    id: i32,
    #[serde(rename = "randomNumber")]
    randomnumber: i32,
}

#[derive(sqlx::FromRow)]
struct Fortune {
    id: i32,
    message: String,
}

/// A database error: logged, and a 500 without details for the client.
struct DbError(sqlx::Error);

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        eprintln!("database error: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response()
    }
}

/// A random row of `world`, by its own query (sqlx prepares the statement
/// once per connection and caches it).
async fn random_world(pool: &PgPool) -> Result<World, sqlx::Error> {
    sqlx::query_as("SELECT id, randomnumber FROM world WHERE id = $1")
        .bind(rand::random_range(1..=WORLD_ROWS))
        .fetch_one(pool)
        .await
}

/// N random rows, one query each, one after the other.
async fn random_worlds(pool: &PgPool, count: usize) -> Result<Vec<World>, sqlx::Error> {
    let mut worlds = Vec::with_capacity(count);
    for _ in 0..count {
        worlds.push(random_world(pool).await?);
    }
    Ok(worlds)
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

async fn db(State(pool): State<PgPool>) -> Result<Json<World>, DbError> {
    Ok(Json(random_world(&pool).await?))
}

async fn queries(
    State(pool): State<PgPool>,
    Query(count): Query<Count>,
) -> Result<Json<Vec<World>>, DbError> {
    Ok(Json(random_worlds(&pool, count.clamped()).await?))
}

/// The server's state: the pool, and the whole `world` table for cached
/// queries.
#[derive(Clone)]
struct AppState {
    pool: PgPool,
    worlds: Arc<OnceCell<Vec<World>>>,
}

impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

/// N random rows from an in-memory copy of the table, as TechEmpower's
/// Rust entries do: every row read in one query on first use (so that
/// plaintext and json need no database), then indexed by id.
async fn cached_queries(
    State(state): State<AppState>,
    Query(count): Query<Count>,
) -> Result<Json<Vec<World>>, DbError> {
    let worlds = state
        .worlds
        .get_or_try_init(|| async {
            sqlx::query_as::<_, World>("SELECT id, randomnumber FROM world ORDER BY id")
                .fetch_all(&state.pool)
                .await
        })
        .await?;
    let picked = (0..count.clamped())
        .filter_map(|_| {
            let id = rand::random_range(1..=WORLD_ROWS);
            usize::try_from(id - 1)
                .ok()
                .and_then(|index| worlds.get(index))
                .copied()
        })
        .collect();
    Ok(Json(picked))
}

/// Every fortune plus one added at request time, sorted by message, written
/// by hand into one string.
async fn fortunes(State(pool): State<PgPool>) -> Result<Html<String>, DbError> {
    let mut fortunes: Vec<Fortune> = sqlx::query_as("SELECT id, message FROM fortune")
        .fetch_all(&pool)
        .await?;
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_unstable_by(|a, b| a.message.cmp(&b.message));
    let mut html = String::with_capacity(1600);
    html.push_str("<!doctype html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>");
    for fortune in &fortunes {
        // Writing to a String cannot fail.
        let _ = write!(html, "<tr><td>{}</td><td>", fortune.id);
        escape_into(&mut html, &fortune.message);
        html.push_str("</td></tr>");
    }
    html.push_str("</table></body></html>");
    Ok(Html(html))
}

/// HTML-escapes `text` onto `html`, copying unescaped runs whole.
fn escape_into(html: &mut String, text: &str) {
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        html.push_str(&text[start..i]);
        html.push_str(entity);
        start = i + 1;
    }
    html.push_str(&text[start..]);
}

/// N random rows, each given a new random number and saved with its own
/// `UPDATE`.
async fn updates(
    State(pool): State<PgPool>,
    Query(count): Query<Count>,
) -> Result<Json<Vec<World>>, DbError> {
    let mut worlds = random_worlds(&pool, count.clamped()).await?;
    for world in &mut worlds {
        world.randomnumber = rand::random_range(1..=WORLD_ROWS);
        sqlx::query("UPDATE world SET randomnumber = $1 WHERE id = $2")
            .bind(world.randomnumber)
            .bind(world.id)
            .execute(&pool)
            .await?;
    }
    Ok(Json(worlds))
}

/// `VAR` parsed, or `default` when it is not set.
fn env_or<T: std::str::FromStr>(var: &str, default: T) -> std::io::Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(var) {
        Ok(raw) => raw
            .parse()
            .map_err(|error| std::io::Error::other(format!("{var}=`{raw}` is invalid: {error}"))),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|error| {
            std::io::Error::other(format!(
                "`{arg}` is not an address such as {DEFAULT_ADDR}: {error}"
            ))
        })?,
        None => DEFAULT_ADDR.parse().map_err(std::io::Error::other)?,
    };
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let pool_size = env_or("DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE)?;
    // Connected on first use, as Kiln's pool is, so that plaintext and json
    // need no database.
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .min_connections(pool_size)
        .connect_lazy(&url)
        .map_err(|error| std::io::Error::other(format!("DATABASE_URL `{url}`: {error}")))?;
    let app = Router::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/db", get(db))
        .route("/queries", get(queries))
        .route("/cached-queries", get(cached_queries))
        .route("/fortunes", get(fortunes))
        .route("/updates", get(updates))
        .with_state(AppState {
            pool,
            worlds: Arc::new(OnceCell::new()),
        })
        .layer(SetResponseHeaderLayer::overriding(
            header::SERVER,
            HeaderValue::from_static("axum"),
        ));
    // Kiln's server sets TCP_NODELAY on every connection; the baseline does
    // the same (as axum's docs suggest) so that the comparison is of the
    // stacks, not of a socket option.
    let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    eprintln!("axum-bench listening on http://{addr}/");
    axum::serve(listener, app).await
}
