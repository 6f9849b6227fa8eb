//! Kiln's ORM path against hand-written sqlx on PostgreSQL, with criterion.
//!
//! ```sh
//! cargo bench -p orm-bench --bench orm                  # criterion, both groups
//! ORM_BENCH_ORDER=sqlx-first cargo bench -p orm-bench --bench orm
//! ORM_BENCH_PAIRED=/tmp/paired.json ORM_BENCH_PAIRED_ONLY=1 cargo bench -p orm-bench --bench orm
//! ```
//!
//! Two groups, `one` (TechEmpower's single query) and `twenty` (its
//! multiple queries at `?queries=20`), each with a `kiln` and a `sqlx`
//! function on the same Tokio multi-thread runtime and pools of the same
//! size. Criterion runs one function after the other, so on a shared
//! machine a change of load between them shows as a difference;
//! `ORM_BENCH_ORDER` swaps which runs first, and `benchmarks/orm-bench/run`
//! alternates it between rounds. `ORM_BENCH_PAIRED=FILE` adds a paired
//! measurement after criterion's: short blocks of each side back to back,
//! the order swapped every block, wall and process CPU time per operation,
//! written to FILE as JSON; `ORM_BENCH_PAIRED_ONLY=1` skips criterion.
//!
//! `ORM_BENCH_ONLY=kiln|sqlx ORM_BENCH_SCENARIO=one|twenty ORM_BENCH_OPS=N`
//! runs N operations of one side and nothing else, for callgrind
//! (`benchmarks/orm-bench/run` counts instructions per operation with it).
//!
//! PostgreSQL is `ORM_BENCH_POSTGRES_URL` or
//! `postgres://postgres@127.0.0.1:5432/test`; when it cannot be reached the
//! bench prints a `SKIPPED` line and exits with 0.

use std::time::{Duration, Instant};

use criterion::Criterion;
use orm_bench::{Fixture, FixtureError, Ids, POSTGRES_URL, QueryError};
use serde::Serialize;
use tokio::runtime::Runtime;

/// Which side each group runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    KilnFirst,
    SqlxFirst,
}

impl Order {
    fn from_env() -> Self {
        match std::env::var("ORM_BENCH_ORDER").as_deref() {
            Ok("sqlx-first") => Self::SqlxFirst,
            _ => Self::KilnFirst,
        }
    }

    fn sides(self) -> [Side; 2] {
        match self {
            Self::KilnFirst => [Side::Kiln, Side::Sqlx],
            Self::SqlxFirst => [Side::Sqlx, Side::Kiln],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Kiln,
    Sqlx,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Kiln => "kiln",
            Self::Sqlx => "sqlx",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    One,
    Twenty,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::Twenty => "twenty",
        }
    }
}

/// The ids of one operation, drawn before its future is built, by the same
/// generator for both sides.
#[derive(Debug, Clone, Copy)]
enum Input {
    One(i32),
    Twenty([i32; orm_bench::QUERIES]),
}

impl Scenario {
    fn draw(self, ids: &mut Ids) -> Input {
        match self {
            Self::One => Input::One(ids.next_id()),
            Self::Twenty => Input::Twenty(ids.twenty()),
        }
    }
}

/// One operation of `side`: the query (or the 20) and the JSON.
async fn operation(fixture: &Fixture, side: Side, input: Input) -> Vec<u8> {
    let result = match (side, input) {
        (Side::Kiln, Input::One(id)) => orm_bench::kiln_one(&fixture.kiln, id).await,
        (Side::Sqlx, Input::One(id)) => orm_bench::sqlx_one(&fixture.sqlx, id).await,
        (Side::Kiln, Input::Twenty(ids)) => orm_bench::kiln_twenty(&fixture.kiln, ids).await,
        (Side::Sqlx, Input::Twenty(ids)) => orm_bench::sqlx_twenty(&fixture.sqlx, ids).await,
    };
    result.unwrap_or_else(|error: QueryError| panic!("orm-bench: a query failed: {error}"))
}

fn bench_group(c: &mut Criterion, runtime: &Runtime, fixture: &Fixture, scenario: Scenario) {
    let mut group = c.benchmark_group(scenario.name());
    for side in Order::from_env().sides() {
        group.bench_function(side.name(), |b| {
            let mut ids = Ids::new(0x5EED);
            b.to_async(runtime)
                .iter(|| operation(fixture, side, scenario.draw(&mut ids)));
        });
    }
    group.finish();
}

/// One block of the paired run: `count` operations of one side.
#[derive(Debug, Clone, Copy, Serialize)]
struct Block {
    wall_ns_per_op: f64,
    cpu_ns_per_op: Option<f64>,
}

#[derive(Debug, Serialize)]
struct PairedScenario {
    scenario: &'static str,
    ops_per_block: u32,
    blocks: usize,
    kiln_wall_ns_median: f64,
    sqlx_wall_ns_median: f64,
    /// Median over blocks of kiln's wall time over sqlx's in the same pair.
    wall_ratio_median: f64,
    kiln_cpu_ns_median: Option<f64>,
    sqlx_cpu_ns_median: Option<f64>,
    cpu_ratio_median: Option<f64>,
    kiln: Vec<Block>,
    sqlx: Vec<Block>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

fn run_block(
    runtime: &Runtime,
    fixture: &Fixture,
    side: Side,
    scenario: Scenario,
    count: u32,
    ids: &mut Ids,
) -> Block {
    runtime.block_on(async {
        let cpu_before = orm_bench::process_cpu_ns();
        let started = Instant::now();
        for _ in 0..count {
            let input = scenario.draw(ids);
            std::hint::black_box(operation(fixture, side, input).await);
        }
        let wall = started.elapsed();
        let cpu = cpu_before
            .zip(orm_bench::process_cpu_ns())
            .map(|(before, after)| after.saturating_sub(before) as f64 / f64::from(count));
        Block {
            wall_ns_per_op: wall.as_nanos() as f64 / f64::from(count),
            cpu_ns_per_op: cpu,
        }
    })
}

/// Blocks of each side back to back, the order swapped every pair, so that
/// both sides see the same load; the ratio is taken within each pair.
fn paired(
    runtime: &Runtime,
    fixture: &Fixture,
    scenario: Scenario,
    blocks: usize,
    block_time: Duration,
) -> PairedScenario {
    let mut ids = Ids::new(0xB10C);
    // Calibrate the block length on the sqlx side, after a warm-up of both.
    for side in [Side::Kiln, Side::Sqlx] {
        run_block(runtime, fixture, side, scenario, 200, &mut ids);
    }
    let probe = run_block(runtime, fixture, Side::Sqlx, scenario, 500, &mut ids);
    let ops_per_block =
        (block_time.as_nanos() as f64 / probe.wall_ns_per_op).clamp(20.0, 1e6) as u32;
    let mut kiln = Vec::with_capacity(blocks);
    let mut sqlx = Vec::with_capacity(blocks);
    for block in 0..blocks {
        let order = if block % 2 == 0 {
            Order::KilnFirst
        } else {
            Order::SqlxFirst
        };
        for side in order.sides() {
            let measured = run_block(runtime, fixture, side, scenario, ops_per_block, &mut ids);
            match side {
                Side::Kiln => kiln.push(measured),
                Side::Sqlx => sqlx.push(measured),
            }
        }
    }
    let wall =
        |blocks: &[Block]| median(&mut blocks.iter().map(|b| b.wall_ns_per_op).collect::<Vec<_>>());
    let cpu = |blocks: &[Block]| {
        blocks
            .iter()
            .map(|b| b.cpu_ns_per_op)
            .collect::<Option<Vec<_>>>()
            .map(|mut values| median(&mut values))
    };
    let mut wall_ratios: Vec<f64> = kiln
        .iter()
        .zip(&sqlx)
        .map(|(k, s)| k.wall_ns_per_op / s.wall_ns_per_op)
        .collect();
    let cpu_ratios: Option<Vec<f64>> = kiln
        .iter()
        .zip(&sqlx)
        .map(|(k, s)| Some(k.cpu_ns_per_op? / s.cpu_ns_per_op?))
        .collect();
    PairedScenario {
        scenario: scenario.name(),
        ops_per_block,
        blocks,
        kiln_wall_ns_median: wall(&kiln),
        sqlx_wall_ns_median: wall(&sqlx),
        wall_ratio_median: median(&mut wall_ratios),
        kiln_cpu_ns_median: cpu(&kiln),
        sqlx_cpu_ns_median: cpu(&sqlx),
        cpu_ratio_median: cpu_ratios.map(|mut ratios| median(&mut ratios)),
        kiln,
        sqlx,
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `ORM_BENCH_ONLY=kiln|sqlx`, `ORM_BENCH_SCENARIO=one|twenty` and
/// `ORM_BENCH_OPS=N`: run N operations of one side instead of timing.
fn only() -> Option<(Side, Scenario, u32)> {
    let side = match std::env::var("ORM_BENCH_ONLY").ok()?.as_str() {
        "kiln" => Side::Kiln,
        "sqlx" => Side::Sqlx,
        other => panic!("ORM_BENCH_ONLY={other}: expected kiln or sqlx"),
    };
    let scenario = match std::env::var("ORM_BENCH_SCENARIO").as_deref() {
        Ok("twenty") => Scenario::Twenty,
        _ => Scenario::One,
    };
    Some((side, scenario, env_number("ORM_BENCH_OPS", 1000)))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // criterion runs each function once as a test.
    let timing = args.iter().any(|arg| arg == "--bench");
    let paired_only = std::env::var("ORM_BENCH_PAIRED_ONLY").is_ok_and(|value| value == "1");

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("orm-bench: cannot start a Tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    let url = std::env::var("ORM_BENCH_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.to_owned());
    let fixture = match runtime.block_on(Fixture::create(&url)) {
        Ok(fixture) => fixture,
        Err(FixtureError::Unreachable(problem)) => {
            let line = format!(
                "SKIPPED: orm bench: PostgreSQL cannot be reached ({problem}); start it or set ORM_BENCH_POSTGRES_URL"
            );
            eprintln!("{line}");
            println!("{line}");
            return;
        }
        Err(error @ FixtureError::Failed(_)) => {
            eprintln!("orm-bench: cannot set up the world table: {error}");
            std::process::exit(1);
        }
    };

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some((side, scenario, ops)) = only() {
            // For counting instructions under callgrind: a fixed number of
            // operations of one side and nothing else.
            let mut ids = Ids::new(0xCA11);
            runtime.block_on(async {
                for _ in 0..ops {
                    let input = scenario.draw(&mut ids);
                    std::hint::black_box(operation(&fixture, side, input).await);
                }
            });
            return;
        }
        if !paired_only {
            let mut criterion = Criterion::default().configure_from_args();
            bench_group(&mut criterion, &runtime, &fixture, Scenario::One);
            bench_group(&mut criterion, &runtime, &fixture, Scenario::Twenty);
            criterion.final_summary();
        }
        if let (true, Ok(path)) = (timing || paired_only, std::env::var("ORM_BENCH_PAIRED")) {
            let blocks = env_number("ORM_BENCH_PAIRED_BLOCKS", 30);
            let block_time = Duration::from_millis(env_number("ORM_BENCH_PAIRED_BLOCK_MS", 250));
            let results: Vec<PairedScenario> = [Scenario::One, Scenario::Twenty]
                .into_iter()
                .map(|scenario| {
                    let result = paired(&runtime, &fixture, scenario, blocks, block_time);
                    println!(
                        "paired {}: kiln {:.1} µs, sqlx {:.1} µs per op, kiln/sqlx {:.3} (wall); cpu kiln/sqlx {}",
                        result.scenario,
                        result.kiln_wall_ns_median / 1e3,
                        result.sqlx_wall_ns_median / 1e3,
                        result.wall_ratio_median,
                        result
                            .cpu_ratio_median
                            .map_or_else(|| "n/a".to_owned(), |ratio| format!("{ratio:.3}")),
                    );
                    result
                })
                .collect();
            let json = serde_json::to_string_pretty(&results).unwrap_or_default();
            if let Err(error) = std::fs::write(&path, json) {
                eprintln!("orm-bench: cannot write {path}: {error}");
            }
        }
    }));
    runtime.block_on(fixture.drop_schema());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
