//! Authenticated against anonymous requests through the full Kiln stack,
//! and one argon2id check, with criterion, in one run:
//!
//! ```sh
//! cargo bench -p auth-bench
//! ```
//!
//! `anonymous_page` and `authenticated_page` send `GET /polls/` of the
//! showcase through its router and middleware (in-process, no socket) on
//! a Tokio multi-thread runtime; the second carries a session cookie, so
//! it adds the session row lookup and the user load. Criterion's time per
//! request converts to requests per second of one client (1 s / time).
//! `argon2_verify_default_params` is one `verify_blocking` of a correct
//! password: the CPU cost of a login.

use criterion::Criterion;

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("auth-bench: cannot start a Tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("auth-bench: cannot create a temporary folder: {error}");
            std::process::exit(1);
        }
    };
    let fixture = runtime.block_on(auth_bench::Fixture::create(dir.path()));
    let (hasher, params) = auth_bench::default_hasher();
    println!("auth-bench: password hasher: {params}");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("auth");
    group.bench_function("anonymous_page", |b| {
        b.to_async(&runtime)
            .iter(|| fixture.anonymous.get(auth_bench::PAGE).send());
    });
    group.bench_function("authenticated_page", |b| {
        b.to_async(&runtime)
            .iter(|| fixture.authenticated.get(auth_bench::PAGE).send());
    });
    group.bench_function("argon2_verify_default_params", |b| {
        b.iter(|| hasher.verify_blocking(auth_bench::PASSWORD, &fixture.hash));
    });
    group.finish();
    criterion.final_summary();
    // The clients close their pools before the folder is deleted.
    drop(fixture);
    drop(dir);
}
