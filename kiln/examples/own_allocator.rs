//! A program that keeps its own global allocator: `#[kiln::main]` would
//! install Kiln's (mimalloc) beside it, and two global allocators do not
//! compile, so this example building is the test of
//! `global_allocator = false`.

use kiln::prelude::*;

#[global_allocator]
static ALLOCATOR: std::alloc::System = std::alloc::System;

#[kiln::main(global_allocator = false)]
fn main() -> Project {
    kiln::project!().route(
        "/",
        "index",
        get(|| async { "Hello from the system allocator" }),
    )
}
