//! `kiln`: starts a Kiln project and adds apps to it, as Django's
//! `django-admin startproject` and `startapp` do.
//!
//! ```text
//! kiln new mysite                  # ./mysite, a project that runs with `cargo run`
//! kiln startapp polls              # inside the project: src/polls.rs + src/polls/
//! ```
//!
//! Everything else (`runserver`, `routes`, `check`) is a command of the
//! project's own binary, as `manage.py` is in Django.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod files;
mod names;
mod new;
mod startapp;

/// Start a Kiln project and add apps to it.
///
/// A project's own commands (runserver, routes, check) are run with
/// `cargo run -- COMMAND` inside the project.
#[derive(Debug, Parser)]
#[command(name = "kiln", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new project: a crate that runs with `cargo run`, with a start page and a test.
    New {
        /// The project's name: a crate name such as `mysite` or `my_site`.
        name: String,
        /// Folder to create the project in [default: ./NAME]. It must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// Kiln checkout the project depends on [default: the one this binary was built from].
        #[arg(long, value_name = "DIR")]
        kiln_path: Option<PathBuf>,
    },
    /// Add an app to the project: src/NAME.rs, src/NAME/{urls,views,tests}.rs, mounted at /NAME.
    Startapp {
        /// The app's name, a Rust identifier such as `polls` or `chat_rooms`.
        name: String,
        /// The project folder, made by `kiln new` [default: the current directory].
        #[arg(long, value_name = "DIR")]
        project: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::New {
            name,
            path,
            kiln_path,
        } => new::run(&name, path, kiln_path),
        Command::Startapp { name, project } => startapp::run(&name, project),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
