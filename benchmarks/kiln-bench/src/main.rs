//! Kiln's side of the benchmark: TechEmpower's plaintext and json tests,
//! written the way the tutorial teaches and served through Kiln's full
//! default middleware stack (request id, access log, compression, panic
//! catching, timeouts, body limit).
//!
//! `benchmarks/run` starts the release build in production mode; by hand:
//! `KILN_DEBUG=false KILN_SECRET_KEY=$(openssl rand -hex 32) KILN_ALLOWED_HOSTS='["127.0.0.1"]' cargo run --release -p kiln-bench`,
//! then `curl -i http://127.0.0.1:8000/plaintext`.

use kiln::deps::axum::http::HeaderValue;
use kiln::deps::tower_http::set_header::SetResponseHeaderLayer;
use kiln::prelude::*;

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

#[kiln::main]
fn main() -> Project {
    kiln::project!()
        .route("/plaintext", "plaintext", get(plaintext))
        .route("/json", "json", get(json))
        .layer(SetResponseHeaderLayer::overriding(
            header::SERVER,
            HeaderValue::from_static("kiln"),
        ))
}
