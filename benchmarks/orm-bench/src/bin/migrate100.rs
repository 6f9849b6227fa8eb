//! Times `migrate` of 100 migrations on a fresh database.
//!
//! ```sh
//! cargo run --release -p orm-bench --bin migrate100                 # SQLite, PostgreSQL and MariaDB if reachable
//! cargo run --release -p orm-bench --bin migrate100 -- --runs 5 --json /tmp/migrate.json --backends sqlite
//! ```
//!
//! The 100 migrations are built in memory with `kiln::db::migrations` and
//! look like a project's history: two models, a few hundred rows, then new
//! models, added columns, indexes, renamed columns and altered columns (on
//! SQLite most alterations rebuild the table and copy its rows). Each run
//! starts from an empty database (a temporary SQLite file, a new PostgreSQL
//! schema, a new MariaDB database) and applies all 100 the way
//! `kiln migrate` does: one connection, `Executor::applied`, `plan`, `run`.
//! The figures are the median of the runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kiln::db::DatabaseConfig;
use kiln::db::migrations::{
    Action, Executor, Field, ForeignKey, Graph, Index, Migration, ModelState, Target, Type,
};
use kiln::db::sea_orm::sqlx::{self, Connection};
use serde::Serialize;

const APP: &str = "bench";
const MIGRATIONS: usize = 100;
/// Rows of each of the first two tables, inserted by the second migration.
const SEED_ROWS: usize = 300;

/// What a migration does, for the per-kind breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    CreateModel,
    InsertRows,
    AddField,
    AddIndex,
    RenameField,
    AlterField,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::CreateModel => "create model",
            Self::InsertRows => "insert rows",
            Self::AddField => "add field",
            Self::AddIndex => "add index",
            Self::RenameField => "rename field",
            Self::AlterField => "alter field",
        }
    }
}

/// A column the generator added and may index, rename or alter later.
#[derive(Debug, Clone)]
struct Extra {
    name: String,
    text: bool,
    null: bool,
    indexed: bool,
    length: u32,
}

#[derive(Debug, Clone)]
struct Table {
    name: String,
    extras: Vec<Extra>,
    /// The model's own string column and its length, lengthened when no
    /// added column is left to alter.
    text: (&'static str, u32),
}

fn id_field() -> Field {
    Field::new("id", Type::BigInteger).auto_increment()
}

fn author_key() -> Field {
    Field::new("author_id", Type::BigInteger)
        .references(ForeignKey::to("bench_author", "id").on_delete(Action::Cascade))
}

/// The 100 migrations, each depending on the one before, and what each does.
fn migrations() -> Vec<(Migration, Kind)> {
    let mut list = Vec::with_capacity(MIGRATIONS);
    list.push((
        Migration::new("0001_initial")
            .create_model(
                ModelState::new("bench_author")
                    .field(id_field())
                    .field(Field::new("name", Type::string(100)))
                    .field(Field::new("email", Type::string(200)).unique())
                    .primary_key(&["id"]),
            )
            .create_model(
                ModelState::new("bench_book")
                    .field(id_field())
                    .field(Field::new("title", Type::string(200)))
                    .field(Field::new("pages", Type::Integer).default(0))
                    .field(author_key())
                    .primary_key(&["id"])
                    .index(Index::new("ix_bench_book_title", &["title"])),
            ),
        Kind::CreateModel,
    ));
    let authors: Vec<String> = (1..=SEED_ROWS)
        .map(|i| format!("('author {i}', 'author{i}@example.com')"))
        .collect();
    let books: Vec<String> = (1..=SEED_ROWS)
        .map(|i| format!("('book {i}', {}, {})", 100 + i, 1 + (i * 7) % SEED_ROWS))
        .collect();
    let insert_authors = format!(
        "INSERT INTO bench_author (name, email) VALUES {}",
        authors.join(", ")
    );
    let insert_books = format!(
        "INSERT INTO bench_book (title, pages, author_id) VALUES {}",
        books.join(", ")
    );
    list.push((
        Migration::new("0002_seed")
            .depends_on(APP, "0001_initial")
            .run_sql(
                &[&insert_authors, &insert_books],
                Some(&["DELETE FROM bench_book", "DELETE FROM bench_author"]),
            ),
        Kind::InsertRows,
    ));

    let mut tables = vec![
        Table {
            name: "bench_author".to_owned(),
            extras: Vec::new(),
            text: ("name", 100),
        },
        Table {
            name: "bench_book".to_owned(),
            extras: Vec::new(),
            text: ("title", 200),
        },
    ];
    for number in 3..=MIGRATIONS {
        let previous = list
            .last()
            .map(|(m, _): &(Migration, Kind)| m.name.clone())
            .unwrap_or_default();
        let table_count = tables.len();
        let table = &mut tables[number % table_count];
        let base = Migration::new(&format!("{number:04}_step")).depends_on(APP, &previous);
        let (migration, kind) = match number % 8 {
            // A new model that points at authors, every eighth migration,
            // and rows for it in the next.
            0 => {
                let name = format!("bench_item{number}");
                let migration = base.create_model(
                    ModelState::new(&name)
                        .field(id_field())
                        .field(Field::new("label", Type::string(50)))
                        .field(Field::new("created", Type::DateTime).null())
                        .field(author_key())
                        .primary_key(&["id"]),
                );
                tables.push(Table {
                    name,
                    extras: Vec::new(),
                    text: ("label", 50),
                });
                (migration, Kind::CreateModel)
            }
            1 if number > 8 => {
                let name = &tables[tables.len() - 1].name;
                let rows: Vec<String> = (1..=50)
                    .map(|i| format!("('item {i}', {})", 1 + (i * 13) % SEED_ROWS))
                    .collect();
                let insert = format!(
                    "INSERT INTO {name} (label, author_id) VALUES {}",
                    rows.join(", ")
                );
                (
                    base.run_sql(&[&insert], Some(&[&format!("DELETE FROM {name}")])),
                    Kind::InsertRows,
                )
            }
            2 | 5 => {
                let name = format!("n{number}");
                let migration = base.add_field(
                    &table.name,
                    Field::new(&name, Type::Integer).default(number as i64),
                );
                table.extras.push(Extra {
                    name,
                    text: false,
                    null: false,
                    indexed: false,
                    length: 0,
                });
                (migration, Kind::AddField)
            }
            3 => add_text(base, table, number),
            4 => match table.extras.iter_mut().rev().find(|extra| !extra.indexed) {
                Some(extra) => {
                    extra.indexed = true;
                    let index =
                        Index::new(&format!("ix_{}_{}", table.name, extra.name), &[&extra.name]);
                    (base.add_index(&table.name, index), Kind::AddIndex)
                }
                None => {
                    let index = Index::new(&format!("ix_{}_m{number}", table.name), &["id"]);
                    (base.add_index(&table.name, index), Kind::AddIndex)
                }
            },
            // Indexes on the column follow it.
            6 => match table.extras.last_mut() {
                Some(extra) => {
                    let new = format!("{}_r{number}", extra.name);
                    let migration = base.rename_field(&table.name, &extra.name, &new);
                    extra.name = new;
                    (migration, Kind::RenameField)
                }
                None => add_text(base, table, number),
            },
            // Alterations SQLite cannot do in place: a longer string, or
            // NOT NULL with a default for a column that allowed NULL.
            _ => match table.extras.iter_mut().rev().find(|extra| extra.text) {
                Some(extra) => {
                    let field = if extra.null {
                        extra.null = false;
                        Field::new(&extra.name, Type::string(extra.length)).default("")
                    } else {
                        extra.length += 20;
                        Field::new(&extra.name, Type::string(extra.length)).default("")
                    };
                    (base.alter_field(&table.name, field), Kind::AlterField)
                }
                None => {
                    table.text.1 += 20;
                    let field = Field::new(table.text.0, Type::string(table.text.1));
                    (base.alter_field(&table.name, field), Kind::AlterField)
                }
            },
        };
        list.push((migration, kind));
    }
    list
}

fn add_text(base: Migration, table: &mut Table, number: usize) -> (Migration, Kind) {
    let name = format!("s{number}");
    let migration = base.add_field(&table.name, Field::new(&name, Type::string(40)).null());
    table.extras.push(Extra {
        name,
        text: true,
        null: true,
        indexed: false,
        length: 40,
    });
    (migration, Kind::AddField)
}

/// A database that exists for one run.
#[derive(Debug)]
enum Fresh {
    Sqlite(
        #[expect(dead_code, reason = "held only to be removed when the run ends")]
        tempfile::TempDir,
    ),
    Postgres {
        admin: String,
        schema: String,
    },
    Mysql {
        admin: String,
        database: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }
}

async fn admin_exec(backend: Backend, url: &str, sql: &str) -> Result<(), String> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let result = match backend {
        Backend::Postgres => match sqlx::PgConnection::connect(url).await {
            Ok(mut connection) => sqlx::raw_sql(sql).execute(&mut connection).await.map(drop),
            Err(error) => Err(error),
        },
        Backend::Mysql => match sqlx::MySqlConnection::connect(url).await {
            Ok(mut connection) => sqlx::raw_sql(sql).execute(&mut connection).await.map(drop),
            Err(error) => Err(error),
        },
        Backend::Sqlite => Ok(()),
    };
    result.map_err(|error| error.to_string())
}

/// A fresh database and the URL that reaches it.
async fn fresh(backend: Backend, admin: &str, run: usize) -> Result<(Fresh, String), String> {
    let name = format!("kiln_bench_{}_m{run}", std::process::id());
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
            let url = format!("sqlite://{}", dir.path().join("migrate.sqlite3").display());
            Ok((Fresh::Sqlite(dir), url))
        }
        Backend::Postgres => {
            admin_exec(backend, admin, &format!("CREATE SCHEMA {name}")).await?;
            let separator = if admin.contains('?') { '&' } else { '?' };
            let url = format!("{admin}{separator}options[search_path]={name}");
            Ok((
                Fresh::Postgres {
                    admin: admin.to_owned(),
                    schema: name,
                },
                url,
            ))
        }
        Backend::Mysql => {
            admin_exec(backend, admin, &format!("CREATE DATABASE {name}")).await?;
            let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
            let url = format!("{base}/{name}");
            Ok((
                Fresh::Mysql {
                    admin: admin.to_owned(),
                    database: name,
                },
                url,
            ))
        }
    }
}

async fn drop_fresh(fresh: Fresh) {
    let result = match &fresh {
        Fresh::Sqlite(_) => Ok(()),
        Fresh::Postgres { admin, schema } => {
            admin_exec(
                Backend::Postgres,
                admin,
                &format!("DROP SCHEMA {schema} CASCADE"),
            )
            .await
        }
        Fresh::Mysql { admin, database } => {
            admin_exec(Backend::Mysql, admin, &format!("DROP DATABASE {database}")).await
        }
    };
    if let Err(error) = result {
        eprintln!("migrate100: could not drop the run's database: {error}");
    }
}

/// One run: the time to build the graph, to read the recorder and plan,
/// and to apply each migration.
#[derive(Debug)]
struct Run {
    graph: Duration,
    total: Duration,
    steps: Vec<Duration>,
}

async fn run_once(backend: Backend, admin: &str, run: usize) -> Result<Run, String> {
    let (fresh, url) = fresh(backend, admin, run).await?;
    let result = async {
        let started = Instant::now();
        let graph = Graph::new(vec![(
            APP.to_owned(),
            migrations()
                .into_iter()
                .map(|(migration, _)| migration)
                .collect(),
        )])
        .map_err(|error| error.to_string())?;
        let graph_time = started.elapsed();
        // As `kiln migrate` connects: one connection, because SQLite's
        // `PRAGMA foreign_keys` is per connection.
        let config = DatabaseConfig {
            name: kiln::db::DEFAULT_DATABASE.to_owned(),
            url,
            max_connections: 1,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        };
        let db = config.connect().await.map_err(|error| error.to_string())?;
        let started = Instant::now();
        let executor = Executor::new(&db, &graph);
        let applied = executor
            .applied()
            .await
            .map_err(|error| error.to_string())?;
        executor
            .check_history(&applied)
            .map_err(|error| error.to_string())?;
        let steps = executor
            .plan(&applied, &Target::Latest)
            .map_err(|error| error.to_string())?;
        if steps.len() != MIGRATIONS {
            return Err(format!(
                "planned {} migrations, not {MIGRATIONS}",
                steps.len()
            ));
        }
        let mut times = Vec::with_capacity(MIGRATIONS);
        executor
            .run(&steps, |progress| times.push(progress.elapsed))
            .await
            .map_err(|error| error.to_string())?;
        let total = started.elapsed();
        let _ = db.close().await;
        Ok(Run {
            graph: graph_time,
            total,
            steps: times,
        })
    }
    .await;
    drop_fresh(fresh).await;
    result
}

#[derive(Debug, Serialize)]
struct KindSummary {
    kind: Kind,
    count: usize,
    /// Sum over migrations of this kind of each one's median time, ms.
    total_ms: f64,
    mean_ms: f64,
}

#[derive(Debug, Serialize)]
struct BackendSummary {
    backend: &'static str,
    runs: usize,
    skipped: Option<String>,
    /// Apply all 100, including reading the recorder and planning: median, ms.
    total_ms_median: f64,
    total_ms_min: f64,
    total_ms_max: f64,
    per_migration_ms_median_total: f64,
    /// Median over migrations of each migration's median time, ms.
    per_migration_ms_median: f64,
    slowest_ms: f64,
    slowest: String,
    graph_ms_median: f64,
    by_kind: Vec<KindSummary>,
    totals_ms: Vec<f64>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

fn summarise(backend: Backend, runs: &[Run]) -> BackendSummary {
    let kinds: Vec<(String, Kind)> = migrations()
        .into_iter()
        .map(|(migration, kind)| (migration.name, kind))
        .collect();
    let totals: Vec<f64> = runs.iter().map(|run| ms(run.total)).collect();
    let step_medians: Vec<f64> = (0..MIGRATIONS)
        .map(|i| median(&runs.iter().map(|run| ms(run.steps[i])).collect::<Vec<_>>()))
        .collect();
    let mut by_kind: BTreeMap<Kind, (usize, f64)> = BTreeMap::new();
    for ((_, kind), time) in kinds.iter().zip(&step_medians) {
        let entry = by_kind.entry(*kind).or_default();
        entry.0 += 1;
        entry.1 += time;
    }
    let (slowest_index, slowest_ms) = step_medians
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::NAN));
    let total_median = median(&totals);
    BackendSummary {
        backend: backend.name(),
        runs: runs.len(),
        skipped: None,
        total_ms_median: total_median,
        total_ms_min: totals.iter().copied().fold(f64::INFINITY, f64::min),
        total_ms_max: totals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        per_migration_ms_median_total: total_median / MIGRATIONS as f64,
        per_migration_ms_median: median(&step_medians),
        slowest_ms,
        slowest: kinds
            .get(slowest_index)
            .map(|(name, kind)| format!("{name} ({})", kind.name()))
            .unwrap_or_default(),
        graph_ms_median: median(&runs.iter().map(|run| ms(run.graph)).collect::<Vec<_>>()),
        by_kind: by_kind
            .into_iter()
            .map(|(kind, (count, total))| KindSummary {
                kind,
                count,
                total_ms: total,
                mean_ms: total / count as f64,
            })
            .collect(),
        totals_ms: totals,
    }
}

fn skipped(backend: Backend, reason: String) -> BackendSummary {
    BackendSummary {
        backend: backend.name(),
        runs: 0,
        skipped: Some(reason),
        total_ms_median: f64::NAN,
        total_ms_min: f64::NAN,
        total_ms_max: f64::NAN,
        per_migration_ms_median_total: f64::NAN,
        per_migration_ms_median: f64::NAN,
        slowest_ms: f64::NAN,
        slowest: String::new(),
        graph_ms_median: f64::NAN,
        by_kind: Vec::new(),
        totals_ms: Vec::new(),
    }
}

#[derive(Debug)]
struct Args {
    runs: usize,
    json: Option<String>,
    backends: Vec<Backend>,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        runs: 5,
        json: None,
        backends: vec![Backend::Sqlite, Backend::Postgres, Backend::Mysql],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => {
                parsed.runs = value()?
                    .parse()
                    .map_err(|_| "--runs needs a number".to_owned())?;
            }
            "--json" => parsed.json = Some(value()?),
            "--backends" => {
                parsed.backends = value()?
                    .split(',')
                    .map(|name| match name {
                        "sqlite" => Ok(Backend::Sqlite),
                        "postgres" => Ok(Backend::Postgres),
                        "mysql" | "mariadb" => Ok(Backend::Mysql),
                        other => Err(format!(
                            "unknown backend `{other}` (sqlite, postgres, mysql)"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--help" | "-h" => {
                return Err("usage: migrate100 [--runs N] [--json FILE] [--backends sqlite,postgres,mysql]\n  PostgreSQL and MariaDB: ORM_BENCH_POSTGRES_URL, ORM_BENCH_MYSQL_URL".to_owned());
            }
            other => return Err(format!("unknown argument `{other}`; see --help")),
        }
    }
    Ok(parsed)
}

async fn measure(backend: Backend, runs: usize) -> BackendSummary {
    let admin = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => std::env::var("ORM_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| orm_bench::POSTGRES_URL.to_owned()),
        Backend::Mysql => {
            std::env::var("ORM_BENCH_MYSQL_URL").unwrap_or_else(|_| orm_bench::MYSQL_URL.to_owned())
        }
    };
    if backend != Backend::Sqlite
        && let Err(error) = admin_exec(backend, &admin, "SELECT 1").await
    {
        let reason = format!("{} cannot be reached at {admin}: {error}", backend.name());
        eprintln!("SKIPPED: migrate100 on {reason}");
        return skipped(backend, reason);
    }
    let mut results = Vec::with_capacity(runs);
    for run in 0..runs {
        match run_once(backend, &admin, run).await {
            Ok(result) => {
                eprintln!(
                    "migrate100: {} run {}: {:.1} ms for {MIGRATIONS} migrations",
                    backend.name(),
                    run + 1,
                    ms(result.total)
                );
                results.push(result);
            }
            Err(error) => {
                eprintln!(
                    "migrate100: {} run {} failed: {error}",
                    backend.name(),
                    run + 1
                );
                return skipped(backend, format!("failed: {error}"));
            }
        }
    }
    summarise(backend, &results)
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("migrate100: cannot start a Tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    let summaries: Vec<BackendSummary> = args
        .backends
        .iter()
        .map(|&backend| runtime.block_on(measure(backend, args.runs)))
        .collect();
    let mut failed = false;
    for summary in &summaries {
        match &summary.skipped {
            Some(reason) => {
                failed |= reason.starts_with("failed");
                println!("{}: SKIPPED ({reason})", summary.backend);
            }
            None => println!(
                "{}: {MIGRATIONS} migrations in {:.1} ms (median of {}; min {:.1}, max {:.1}), {:.2} ms per migration; slowest {} at {:.1} ms",
                summary.backend,
                summary.total_ms_median,
                summary.runs,
                summary.total_ms_min,
                summary.total_ms_max,
                summary.per_migration_ms_median_total,
                summary.slowest,
                summary.slowest_ms
            ),
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summaries).unwrap_or_default();
        if let Err(error) = std::fs::write(path, json) {
            eprintln!("migrate100: cannot write {path}: {error}");
            std::process::exit(1);
        }
    }
    if failed {
        std::process::exit(1);
    }
}
