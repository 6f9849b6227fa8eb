//! The fortunes page through Kiln's templates (minijinja and compiled)
//! against hand-written string building, in one run:
//! `cargo bench -p template-bench`. Each iteration
//! clones the 12 rows (as if fetched), adds the request's fortune, sorts,
//! and builds the response.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use template_bench::{
    compiled, hand_written, request, rows_for_request, seed, site, with_template,
};

fn fortunes(c: &mut Criterion) {
    let site = site();
    let request = request();
    let rows = seed();
    let mut group = c.benchmark_group("fortunes");
    group.bench_function("kiln_template", |b| {
        b.iter(|| {
            let rows = rows_for_request(black_box(rows.clone()));
            black_box(with_template(&site, &request, &rows))
        });
    });
    group.bench_function("kiln_compiled", |b| {
        b.iter(|| {
            let rows = rows_for_request(black_box(rows.clone()));
            black_box(compiled(&rows))
        });
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            let rows = rows_for_request(black_box(rows.clone()));
            black_box(hand_written(&rows))
        });
    });
    group.finish();
}

criterion_group!(benches, fortunes);
criterion_main!(benches);
