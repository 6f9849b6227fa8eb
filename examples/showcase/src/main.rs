//! Kiln's showcase project: `cargo run -p showcase`, then open <http://127.0.0.1:8000/>.
//!
//! `cargo run -p showcase -- routes` lists its routes, `-- check` checks it,
//! `-- runserver --app api` serves the API app alone as a microservice.

fn main() -> std::process::ExitCode {
    showcase::project().main()
}
