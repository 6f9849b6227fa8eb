//! The program's memory allocator.
//!
//! `#[kiln::main]` makes [`Allocator`] the global allocator of the program
//! it writes: [mimalloc](https://github.com/microsoft/mimalloc) with the
//! `mimalloc` feature (on by default), the system's without it.
//! `Project::main()` leaves the allocator to the program.
//!
//! Why not the system's: a request moves between the runtime's worker
//! threads, so memory allocated on one thread is often freed on another.
//! glibc's allocator then locks the other thread's arena (under load, a
//! `futex` wait: 0.69 per database request), and allocations above its
//! per-thread cache (a database query's futures are several KiB) make it
//! consolidate its free lists. On the TechEmpower benchmark the database
//! routes served 6–7 % more requests a second (cached queries 18 % or
//! more) for about 2 MiB more peak memory; plaintext was 4 % slower,
//! its 99th percentile latency about 1 ms higher.
//! The measurements: docs/internals/decisions.md, section 14.
//!
//! A program with its own `#[global_allocator]` opts out with
//! `#[kiln::main(global_allocator = false)]`.

/// The allocator `#[kiln::main]` installs; a unit struct, so the name is
/// also its value (`static A: Allocator = Allocator;`).
#[cfg(feature = "mimalloc")]
pub use mimalloc::MiMalloc as Allocator;

/// The allocator `#[kiln::main]` installs; a unit struct, so the name is
/// also its value (`static A: Allocator = Allocator;`).
#[cfg(not(feature = "mimalloc"))]
pub use std::alloc::System as Allocator;
