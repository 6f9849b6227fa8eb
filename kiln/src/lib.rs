//! # Kiln
//!
//! A batteries-included async web framework: Django's structure (apps,
//! named URLs, settings, management commands, a test client) on Tokio's
//! multi-threaded event loop, through axum and hyper.
//!
//! A project is a binary that mounts apps and hands itself to the command
//! line, which is its `manage.py`:
//!
//! ```no_run
//! use kiln::prelude::*;
//!
//! async fn index() -> &'static str {
//!     "Hello, World!"
//! }
//!
//! async fn detail(Path(id): Path<u32>) -> Result<String, kiln::Error> {
//!     let url = kiln::urls::reverse("polls:detail", [("id", id)])?;
//!     Ok(format!("question {id} lives at {url}"))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let polls = App::new("polls")
//!         .route("/", "index", get(index))
//!         .route("/{id:int}/", "detail", get(detail));
//!     kiln::project!().mount("/polls", polls).main()
//! }
//! ```
//!
//! `cargo run` serves it on <http://127.0.0.1:8000/>; `cargo run -- routes`
//! lists the routes; `cargo run -- check` validates settings and routes.
//!
//! ## Map of the crate
//!
//! - [`Project`] and [`App`]: assembling a site from apps ([`project`], [`app`]).
//! - [`urls`]: named routes, typed path parameters, [`urls::reverse`].
//! - [`templates`]: minijinja templates from each app's `templates/`, [`templates::render`];
//!   with the `compiled-templates` feature, `#[kiln::template]` compiles a
//!   template into Rust for hot pages (`templates::compiled`).
//! - [`settings`]: defaults < `kiln.toml` < `KILN_*` environment variables.
//! - [`http`]: [`Error`], the request id, error pages and the middleware stack.
//! - [`server`]: the HTTP server, its limits and graceful shutdown.
//! - [`allocator`]: the memory allocator `#[kiln::main]` installs (mimalloc).
//! - [`cli`] and [`checks`]: the management commands and system checks.
//! - [`forms`]: `#[derive(Form)]`, the [`Form`](forms::Form) extractor,
//!   rendering and [`ModelForm`](forms::ModelForm).
//! - [`auth`]: users, groups, permissions, argon2id passwords, validators,
//!   reset tokens ([`auth::app`], [`auth::authenticate`]).
//! - [`mail`]: email through a pluggable backend (console, file, memory).
//! - [`sessions`]: [`sessions::Session`], with database, Redis and signed-cookie stores.
//! - [`security`]: CSRF, allowed hosts, security headers, signing and
//!   rate limits, on by default.
//! - [`test`]: [`test::TestClient`], the in-process test client.

pub mod allocator;
pub mod app;
pub mod auth;
pub mod cache;
pub mod checks;
pub mod cli;
pub mod db;
pub mod forms;
pub mod http;
pub mod logging;
pub mod mail;
pub mod messages;
pub mod project;
pub mod realtime;
pub mod security;
pub mod server;
pub mod sessions;
pub mod settings;
pub mod staticfiles;
pub mod storage;
pub mod templates;
pub mod test;
pub mod uploads;
pub mod urls;

#[cfg(doctest)]
mod docs;

/// The README's examples, compiled so the tour stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use app::{App, Urls};
pub use http::Error;
#[doc(hidden)]
pub use kiln_macros::embed_dir as __embed_dir;
pub use kiln_macros::main;
#[cfg(feature = "compiled-templates")]
pub use kiln_macros::template;
pub use project::{Project, Site};
pub use settings::Settings;

/// Re-exports of the crates Kiln is built on, so an app depends on `kiln` alone.
pub mod deps {
    /// The compiled templates' engine, which `#[kiln::template]` names.
    #[cfg(feature = "compiled-templates")]
    pub use askama;
    pub use axum;
    pub use serde;
    pub use serde_json;
    pub use tokio;
    pub use tower;
    pub use tower_http;
    pub use tracing;
}

/// What an app module needs: `use kiln::prelude::*;`.
pub mod prelude {
    pub use crate::app::{App, Urls};
    /// Kiln's forms: the derive macro and the extractor share the name, as
    /// serde's do. axum's plain `Form` extractor is `kiln::deps::axum::Form`.
    pub use crate::forms::Form;
    pub use crate::http::{Error, RequestId};
    pub use crate::project::{Project, Site};
    pub use crate::settings::Settings;
    pub use crate::urls::{Endpoint, any, delete, get, head, options, patch, post, put, reverse};
    pub use axum::extract::{Json, Path, Query, Request};
    pub use axum::http::request::Parts;
    pub use axum::http::{HeaderMap, Method, StatusCode, header};
    pub use axum::response::{Html, IntoResponse, Redirect, Response};
    pub use serde::{Deserialize, Serialize};

    /// `csrf_input()`, `url()` and `static()` in compiled templates.
    #[cfg(feature = "compiled-templates")]
    pub use crate::templates::compiled::TemplateFunctions;
}
