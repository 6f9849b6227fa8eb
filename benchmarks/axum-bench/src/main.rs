//! The baseline of Kiln's benchmark: TechEmpower's plaintext and json tests
//! on bare axum, with nothing but the `Server` header every entry must send.
//!
//! `benchmarks/run` starts it; by hand:
//! `cargo run --release -p axum-bench -- 127.0.0.1:8080`, then
//! `curl -i http://127.0.0.1:8080/plaintext`.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Json;
use axum::routing::get;
use axum::serve::ListenerExt;
use serde::Serialize;
use tower_http::set_header::SetResponseHeaderLayer;

/// Listens here when no address is given.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

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
    let app = Router::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
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
