//! HTTP building blocks: the error type, extractors, responses and the
//! middleware stack every Kiln project runs behind.
//!
//! Handlers are plain `async fn`s that take axum extractors and return
//! `Result<impl IntoResponse, kiln::Error>`; see [`Error`].

mod context;
mod error;
mod file;
pub(crate) mod pages;
mod request_id;
pub(crate) mod stack;

pub(crate) use context::RequestContext;
pub use error::Error;
pub(crate) use file::none_match_hits;
pub use file::{FileResponse, stream};
pub use pages::{escape, escape_into};
pub use request_id::RequestId;
pub use stack::SiteService;
pub(crate) use stack::not_found_response;
