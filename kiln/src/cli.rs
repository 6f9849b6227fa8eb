//! The management commands: a project binary is its own `manage.py`.
//!
//! ```text
//! cargo run                          # runserver, the default command
//! cargo run -- runserver --addr 0.0.0.0:8080 --app polls
//! cargo run -- routes                # name, methods, path, handler of every route
//! cargo run -- check                 # validate settings and routes, then exit
//! cargo run -- makemigrations        # write migrations for changed models
//! cargo run -- migrate               # bring the database up to date
//! cargo run -- showmigrations        # which migrations are applied
//! cargo run -- sqlmigrate polls 0001 # the SQL a migration runs
//! cargo run -- createsuperuser       # an admin account (asks; or --no-input)
//! cargo run -- changepassword jane   # set a user's password
//! cargo run -- clearsessions         # delete expired sessions
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::checks::{self, Level};
use crate::db::commands;
use crate::project::{BootError, Project};
use crate::settings::Settings;

#[derive(Debug, Parser)]
#[command(
    about = "Manage this Kiln project: serve it, list its routes, check it.",
    long_about = "Manage this Kiln project: serve it, list its routes, check it.\n\n\
        Settings come from built-in defaults, then kiln.toml in the project folder \
        (or the file in KILN_CONFIG), then KILN_* environment variables.",
    after_help = "With no command, runs `runserver`."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the project (the default command).
    Runserver(RunserverArgs),
    /// List every route: name, methods, path pattern and handler.
    Routes {
        /// Only the routes served by `runserver --app NAME`: this app's
        /// routes and Kiln's health checks.
        #[arg(long, value_name = "NAME")]
        app: Option<String>,
    },
    /// Validate settings and routes without serving; exit non-zero on errors.
    Check,
    /// Write new migrations for the changes made to the models.
    Makemigrations(commands::MakeArgs),
    /// Apply (or roll back) migrations so the database matches the code.
    Migrate(commands::MigrateArgs),
    /// List every app's migrations, with [X] for those applied.
    Showmigrations(commands::ShowArgs),
    /// Print the SQL of one migration, without running it.
    Sqlmigrate(commands::SqlArgs),
    /// Write the rows of apps or tables as a JSON fixture.
    Dumpdata(commands::DumpArgs),
    /// Insert the rows of JSON fixtures, each file all or nothing.
    Loaddata(commands::LoadArgs),
    /// Copy every app's static files into `static_root` for production, with
    /// content-hashed names, compressed variants and a manifest.
    Collectstatic(crate::staticfiles::CollectArgs),
    /// Create a superuser: asks for a username, email and password (typed
    /// twice, not shown), or reads them from KILN_SUPERUSER_* with --no-input.
    Createsuperuser(crate::auth::commands::CreateSuperuserArgs),
    /// Change a user's password (asked twice, not shown).
    Changepassword(crate::auth::commands::ChangePasswordArgs),
    /// Delete expired sessions from the session store (the database store;
    /// Redis forgets them by itself, the cookie store keeps none). Run it
    /// daily, from cron or a scheduler.
    Clearsessions,
}

#[derive(Debug, Default, clap::Args)]
struct RunserverArgs {
    /// Address to listen on, e.g. 127.0.0.1:8000 or 0.0.0.0:8080 (default: the host and port settings).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<SocketAddr>,
    /// Serve only this app (plus health checks), as its own microservice.
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
}

/// Runs the command line for `project` and returns the process exit code:
/// 0 on success, 1 on any error (printed as one clear message), 2 on a usage error.
pub fn main(project: Project) -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    match run(
        project,
        cli.command
            .unwrap_or(Command::Runserver(RunserverArgs::default())),
        started,
    ) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(project: Project, command: Command, started: Instant) -> Result<ExitCode, BootError> {
    let settings = Settings::load(project.root_dir())?;
    match command {
        Command::Runserver(args) => {
            crate::logging::init(&settings);
            for warning in &settings.warnings {
                tracing::warn!(target: "kiln::settings", "{warning}");
            }
            if settings.uses_development_key() {
                tracing::info!(
                    target: "kiln::settings",
                    "no `secret_key` set: debug mode uses an insecure development key; production refuses to start without one"
                );
            }
            runtime(&settings)?.block_on(runserver(project, settings, args, started))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Makemigrations(args) => {
            let changed = commands::makemigrations(&project, &args, &mut std::io::stdout())?;
            Ok(if changed && args.check {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Migrate(args) => {
            let mut out = std::io::stdout();
            block_on(
                &settings,
                commands::migrate(&project, &settings, &args, &mut out),
            )
        }
        Command::Showmigrations(args) => {
            let mut out = std::io::stdout();
            block_on(
                &settings,
                commands::showmigrations(&project, &settings, &args, &mut out),
            )
        }
        Command::Collectstatic(args) => {
            let files = project.static_files(&settings);
            crate::staticfiles::collectstatic(&files, &args, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dumpdata(args) => {
            let mut out = std::io::stdout();
            block_on(
                &settings,
                commands::dumpdata(&project, &settings, &args, &mut out),
            )
        }
        Command::Loaddata(args) => {
            let mut out = std::io::stdout();
            block_on(
                &settings,
                commands::loaddata(&project, &settings, &args, &mut out),
            )
        }
        Command::Clearsessions => block_on(&settings, async {
            let (site, _) = project.build(settings.clone())?;
            let removed = crate::sessions::clear_expired(&site)
                .await
                .map_err(|error| BootError::Usage(error.to_string()))?;
            println!("Deleted {removed} expired session(s).");
            Ok(())
        }),
        Command::Sqlmigrate(args) => {
            commands::sqlmigrate(&project, &settings, &args, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Createsuperuser(args) => {
            let mut out = std::io::stdout();
            let env = |name: &str| std::env::var(name).ok();
            let mut terminal = crate::auth::commands::Terminal;
            block_on(
                &settings,
                crate::auth::commands::createsuperuser(
                    &project,
                    &settings,
                    &args,
                    &mut terminal,
                    env,
                    &mut out,
                ),
            )
        }
        Command::Changepassword(args) => {
            let mut out = std::io::stdout();
            let mut terminal = crate::auth::commands::Terminal;
            block_on(
                &settings,
                crate::auth::commands::changepassword(
                    &project,
                    &settings,
                    &args,
                    &mut terminal,
                    &mut out,
                ),
            )
        }
        Command::Routes { app } => {
            let project = match app {
                Some(label) => project.only_app(&label)?,
                None => project,
            };
            print!("{}", routes_table(&project)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let report = checks::run(&project, &settings);
            for message in &report {
                println!("{message}");
            }
            let errors = report.iter().filter(|m| m.level == Level::Error).count();
            let warnings = report.len() - errors;
            println!(
                "System check identified {} ({errors} error(s), {warnings} warning(s)).",
                if report.is_empty() {
                    "no issues".to_owned()
                } else {
                    format!("{} issue(s)", report.len())
                },
            );
            Ok(if errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Runs a database command to its end on a runtime of its own.
fn block_on(
    settings: &Settings,
    command: impl std::future::Future<Output = Result<(), BootError>>,
) -> Result<ExitCode, BootError> {
    runtime(settings)?.block_on(command)?;
    Ok(ExitCode::SUCCESS)
}

fn runtime(settings: &Settings) -> Result<tokio::runtime::Runtime, BootError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| BootError::Bind {
            addr: settings.addr(),
            source,
            fix: "the async runtime could not start; check the process limits (ulimit -u)"
                .to_owned(),
        })
}

/// The system checks' errors stop `runserver` before it listens, as
/// Django's `runserver` does: a template that does not compile or a missing
/// templates folder is one message at start-up, not a 500 on some page
/// later. Only [`checks::at_boot`] runs: route and migration errors stop the
/// start anyway, and model changes without a migration (`kiln.E003`) should
/// not (while models are being edited the site still starts;
/// `makemigrations --check` enforces it).
fn refuse_check_errors(project: &Project, settings: &Settings) -> Result<(), BootError> {
    let errors: Vec<String> = checks::at_boot(project, settings)
        .into_iter()
        .filter(|message| message.level == Level::Error)
        .map(|message| message.to_string())
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(BootError::Usage(format!(
        "the system checks found {} error(s); fix them, then start again (`check` lists them too):\n{}",
        errors.len(),
        errors.join("\n")
    )))
}

async fn runserver(
    project: Project,
    settings: Settings,
    args: RunserverArgs,
    started: Instant,
) -> Result<(), BootError> {
    let project = match &args.app {
        Some(label) => project.only_app(label)?,
        None => project,
    };
    refuse_check_errors(&project, &settings)?;
    // A project whose apps have migrations uses its database: check it at
    // boot, so a wrong URL is one clear message now rather than a 500 later.
    let graph = project.migration_graph()?;
    let uses_database = graph.apps().next().is_some();
    if uses_database && settings.migrate_on_start {
        let databases = crate::db::DatabaseConfig::all(&settings, project.root_dir());
        if let Some(config) = databases
            .iter()
            .find(|c| c.name == crate::db::DEFAULT_DATABASE)
        {
            let models = project.model_entries()?;
            commands::migrate_to_latest(config, &graph, project.router(), &models, |progress| {
                let (app, name) = &progress.step.key;
                tracing::info!(
                    target: "kiln::db",
                    elapsed_ms = u64::try_from(progress.elapsed.as_millis()).unwrap_or(u64::MAX),
                    "Applied migration {app}.{name}"
                );
            })
            .await?;
        }
    }
    let name = project.name().to_owned();
    let addr = args.addr.unwrap_or_else(|| settings.addr());
    let debug = settings.debug;
    let project = project.connect_channel_layer(&settings).await?;
    let (site, service) = project.build(settings)?;
    site.urls().install();
    if uses_database {
        site.databases().default_db().await?;
    }
    // A cache server that is down is found now, not on the first request.
    site.cache().ping().await?;
    let listener = crate::server::bind(addr).await?;
    let local = listener.local_addr().unwrap_or(addr);
    let mode = if debug {
        "debug mode"
    } else {
        "production mode"
    };
    let only = args
        .app
        .map(|app| format!(", app `{app}` only"))
        .unwrap_or_default();
    tracing::info!(
        target: "kiln::server",
        boot_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "Kiln {} serving project `{name}` ({mode}{only}) at http://{local}/ — Ctrl-C to stop",
        env!("CARGO_PKG_VERSION"),
    );
    let served = crate::server::serve(listener, site, service, shutdown_then_force()).await;
    crate::logging::flush();
    served.map_err(|source| BootError::Bind {
        addr,
        source,
        fix: "the listener failed; check the network configuration".to_owned(),
    })
}

/// Resolves at the first SIGINT/SIGTERM (graceful shutdown); a second one
/// exits at once with status 130, as impatient Ctrl-C users expect.
async fn shutdown_then_force() {
    crate::server::shutdown_signal().await;
    tokio::spawn(async {
        crate::server::shutdown_signal().await;
        tracing::warn!(target: "kiln::server", "second signal: exiting without waiting for in-flight requests");
        crate::logging::flush();
        std::process::exit(130);
    });
}

/// The `routes` table: name, methods, path and handler, one route per line.
///
/// # Errors
///
/// [`BootError`] when the routes do not check.
pub fn routes_table(project: &Project) -> Result<String, BootError> {
    let registry = project.url_registry()?;
    let rows: Vec<[String; 4]> = registry
        .routes()
        .iter()
        .map(|route| {
            [
                route.name.clone().unwrap_or_else(|| "-".to_owned()),
                route.methods.join(","),
                route.pattern.to_string(),
                route.handler.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "METHODS", "PATH", "HANDLER"].map(str::to_owned);
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        table.push_str(line.join("  ").trim_end());
        table.push('\n');
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runserver_refuses_to_start_on_a_check_error_and_says_which() {
        let settings = Settings::defaults_for(true);
        assert!(refuse_check_errors(&Project::new("t"), &settings).is_ok());
        let missing =
            crate::templates::TemplateDir::new("/nonexistent/kiln-templates", "templates", None);
        let project = Project::new("t").templates(missing);
        let error = refuse_check_errors(&project, &settings)
            .expect_err("a missing templates folder is a check error")
            .to_string();
        assert!(error.contains("kiln.E006"), "{error}");
        assert!(error.contains("/nonexistent/kiln-templates"), "{error}");
    }

    #[test]
    fn clearsessions_has_help_and_needs_the_sessions_app() {
        let help = Cli::try_parse_from(["site", "clearsessions", "--help"])
            .expect_err("--help stops parsing")
            .to_string();
        assert!(help.contains("Delete expired sessions"), "{help}");
        let dir = tempfile::tempdir().unwrap();
        let project = Project::new("t").root(dir.path());
        let error = run(project, Command::Clearsessions, Instant::now())
            .expect_err("no sessions app")
            .to_string();
        assert!(error.contains("kiln::sessions::app()"), "{error}");
    }
}
