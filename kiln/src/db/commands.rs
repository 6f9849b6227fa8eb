//! The database management commands: `migrate`, `showmigrations` and
//! `sqlmigrate`, with Django's output.

use std::collections::BTreeSet;
use std::io::Write;

use sea_orm::DbBackend;

use super::migrations::{
    Direction, Executor, Graph, GraphError, Key, MigrateError, Step, Target, statements_for,
};
use super::{DEFAULT_DATABASE, DatabaseConfig};
use crate::project::{BootError, Project};
use crate::settings::Settings;

/// `migrate [APP] [MIGRATION]`: what to reach.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Only this app (and what its migrations depend on).
    #[arg(value_name = "APP")]
    app: Option<String>,
    /// Apply up to this migration, or roll back to it if later ones are
    /// applied; `zero` rolls back all of the app's migrations. A unique
    /// prefix such as `0002` is enough.
    #[arg(value_name = "MIGRATION", requires = "app")]
    migration: Option<String>,
    /// The database to migrate (a name from `[databases.NAME]`).
    #[arg(long, default_value = DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
    /// Show what would run, operation by operation, without running it.
    #[arg(long)]
    plan: bool,
}

/// `showmigrations [APP]`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ShowArgs {
    /// Only this app.
    #[arg(value_name = "APP")]
    app: Option<String>,
    /// The database to compare with.
    #[arg(long, default_value = DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
}

/// `sqlmigrate APP MIGRATION`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SqlArgs {
    /// The app.
    app: String,
    /// The migration (a unique prefix such as `0002` is enough).
    migration: String,
    /// Print the SQL that rolls the migration back.
    #[arg(long)]
    backwards: bool,
    /// The SQL dialect (default: the default database's).
    #[arg(long, value_enum)]
    backend: Option<Backend>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl From<Backend> for DbBackend {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite,
            Backend::Postgres => Self::Postgres,
            Backend::Mysql => Self::MySql,
        }
    }
}

fn config_for(
    project: &Project,
    settings: &Settings,
    name: &str,
) -> Result<DatabaseConfig, BootError> {
    let configs = DatabaseConfig::all(settings, project.root_dir());
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
    configs
        .into_iter()
        .find(|config| config.name == name)
        .ok_or_else(|| {
            BootError::Usage(format!(
                "no database is named `{name}`; the settings name: {}",
                names.join(", ")
            ))
        })
}

fn graph(project: &Project) -> Result<Graph, BootError> {
    project
        .migration_graph()
        .map_err(|error| BootError::Migrate(error.into()))
}

/// Runs `migrate`, printing progress to `out`.
pub(crate) async fn migrate(
    project: &Project,
    settings: &Settings,
    args: &MigrateArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let graph = graph(project)?;
    let target = match (&args.app, &args.migration) {
        (None, _) => Target::Latest,
        (Some(app), None) => Target::AppLatest(app.clone()),
        (Some(app), Some(zero)) if zero == "zero" => Target::Zero(app.clone()),
        (Some(app), Some(name)) => Target::To(graph.find(app, name).map_err(MigrateError::from)?),
    };
    let config = config_for(project, settings, &args.database)?;
    // One connection: SQLite's foreign-key switch is per connection.
    let db = config.connect_with(1).await?;
    let executor = Executor::new(&db, &graph);
    let applied = executor.applied().await?;
    executor.check_history(&applied)?;
    let (steps, refused): (Vec<Step>, Vec<Step>) = executor
        .plan(&applied, &target)?
        .into_iter()
        .partition(|step| project.router().allow_migrate(&args.database, &step.key.0));
    write_header(out, &graph, &target);
    for step in &refused {
        writeln!(
            out,
            "  Skipping {}.{}: the database router does not migrate app `{}` on database `{}`",
            step.key.0, step.key.1, step.key.0, args.database
        )
        .ok();
    }
    if args.plan {
        writeln!(out, "Planned operations:").ok();
        if steps.is_empty() {
            writeln!(out, "  No planned migration operations.").ok();
        }
        for step in &steps {
            writeln!(
                out,
                "{}.{}{}",
                step.key.0,
                step.key.1,
                describe(step.direction)
            )
            .ok();
            for (operation, _) in executor.statements(step)? {
                writeln!(out, "    {operation}").ok();
            }
        }
        return Ok(());
    }
    writeln!(out, "Running migrations:").ok();
    if steps.is_empty() {
        writeln!(out, "  No migrations to apply.").ok();
        return Ok(());
    }
    executor
        .run(&steps, |progress| {
            let verb = match progress.step.direction {
                Direction::Apply => "Applying",
                Direction::Rollback => "Unapplying",
            };
            writeln!(
                out,
                "  {verb} {}.{}... OK ({} ms)",
                progress.step.key.0,
                progress.step.key.1,
                progress.elapsed.as_millis()
            )
            .ok();
            out.flush().ok();
        })
        .await?;
    Ok(())
}

fn describe(direction: Direction) -> &'static str {
    match direction {
        Direction::Apply => "",
        Direction::Rollback => " (rollback)",
    }
}

fn write_header(out: &mut impl Write, graph: &Graph, target: &Target) {
    writeln!(out, "Operations to perform:").ok();
    let line = match target {
        Target::Latest => {
            let apps: Vec<&str> = graph.apps().collect();
            if apps.is_empty() {
                "  No app has migrations.".to_owned()
            } else {
                format!("  Apply all migrations: {}", apps.join(", "))
            }
        }
        Target::AppLatest(app) => format!("  Apply all migrations: {app}"),
        Target::To((app, name)) => format!("  Target specific migration: {name}, from {app}"),
        Target::Zero(app) => format!("  Unapply all migrations: {app}"),
    };
    writeln!(out, "{line}").ok();
}

/// Runs `showmigrations`: every migration with `[X]` when applied.
pub(crate) async fn showmigrations(
    project: &Project,
    settings: &Settings,
    args: &ShowArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let graph = graph(project)?;
    if let Some(app) = &args.app
        && graph.app_migrations(app).is_empty()
    {
        return Err(BootError::Migrate(
            GraphError::UnknownApp(app.clone()).into(),
        ));
    }
    let config = config_for(project, settings, &args.database)?;
    let db = config.connect_with(1).await?;
    let applied: BTreeSet<Key> = Executor::new(&db, &graph).applied().await?;
    for app in graph.apps() {
        if args.app.as_deref().is_some_and(|only| only != app) {
            continue;
        }
        writeln!(out, "{app}").ok();
        for migration in graph.app_migrations(app) {
            let mark = if applied.contains(&(app.to_owned(), migration.name.clone())) {
                "X"
            } else {
                " "
            };
            writeln!(out, " [{mark}] {}", migration.name).ok();
        }
    }
    Ok(())
}

/// Runs `sqlmigrate`: the SQL of one migration, without a database.
pub(crate) fn sqlmigrate(
    project: &Project,
    settings: &Settings,
    args: &SqlArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let graph = graph(project)?;
    let key = graph
        .find(&args.app, &args.migration)
        .map_err(MigrateError::from)?;
    let backend = match args.backend {
        Some(backend) => backend.into(),
        None => config_for(project, settings, DEFAULT_DATABASE)?.backend(),
    };
    let direction = if args.backwards {
        Direction::Rollback
    } else {
        Direction::Apply
    };
    let step = Step {
        key: key.clone(),
        direction,
    };
    let plan = statements_for(&graph, &step, backend)?;
    let atomic = graph.migration(&key).is_some_and(|m| m.atomic) && backend != DbBackend::MySql;
    if backend == DbBackend::Sqlite {
        writeln!(out, "PRAGMA foreign_keys = OFF;").ok();
    }
    if atomic {
        writeln!(out, "BEGIN;").ok();
    }
    for (operation, statements) in plan {
        writeln!(out, "--\n-- {operation}\n--").ok();
        if statements.is_empty() {
            writeln!(out, "-- (no SQL: runs Rust code)").ok();
        }
        for statement in statements {
            writeln!(out, "{statement};").ok();
        }
    }
    if atomic {
        writeln!(out, "COMMIT;").ok();
    }
    if backend == DbBackend::Sqlite {
        writeln!(out, "PRAGMA foreign_keys = ON;").ok();
    }
    Ok(())
}
