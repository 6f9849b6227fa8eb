//! The database management commands: `makemigrations`, `migrate`,
//! `showmigrations` and `sqlmigrate`, with Django's output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use sea_orm::DbBackend;

use super::migrations::{
    Direction, Executor, Graph, GraphError, Key, Migration, Progress, SQLITE_AFTER_MIGRATION,
    SQLITE_BEFORE_MIGRATION, Step, Target, statements_for, writer,
};
use super::{DEFAULT_DATABASE, DatabaseConfig, DatabaseConnection, DatabaseRouter};
use crate::project::{BootError, Project};
use crate::settings::Settings;

/// `migrate [APP] [MIGRATION]`: what to reach.
#[derive(Debug, Clone, clap::Args)]
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

/// The configuration of the database named `name`.
pub(crate) fn config_for(
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
    Ok(project.migration_graph()?)
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
        (Some(app), Some(name)) => Target::To(graph.find(app, name)?),
    };
    let config = config_for(project, settings, &args.database)?;
    let db = connect_to_migrate(&config).await?;
    let executor = Executor::new(&db, &graph);
    let (steps, refused) = plan(&executor, &target, project.router(), &config.name).await?;
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
        // Still run: a model registered since the last migrate gets its
        // permissions even when no migration was pending.
        return post_migrate(&db, &executor, &project.model_entries()?).await;
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
    post_migrate(&db, &executor, &project.model_entries()?).await
}

/// A connection for migrating: one connection, because SQLite's
/// foreign-key switch, which a table rebuild turns off, is per connection.
async fn connect_to_migrate(config: &DatabaseConfig) -> Result<DatabaseConnection, BootError> {
    Ok(config.connect_with(1).await?)
}

/// The steps to `target` after checking that the recorded history matches
/// the files: those the router lets run on `database`, and those it refuses.
async fn plan(
    executor: &Executor<'_>,
    target: &Target,
    router: &dyn DatabaseRouter,
    database: &str,
) -> Result<(Vec<Step>, Vec<Step>), BootError> {
    let applied = executor.applied().await?;
    executor.check_history(&applied)?;
    Ok(executor
        .plan(&applied, target)?
        .into_iter()
        .partition(|step| router.allow_migrate(database, &step.key.0)))
}

/// Applies every migration of `graph` not yet applied on `config`'s database
/// that the router allows there (`migrate` with no arguments), calling
/// `progress` after each: `runserver`'s `migrate_on_start` and the test
/// client's database.
///
/// # Errors
///
/// As `migrate`: the database is unreachable, the history disagrees with the
/// files, or a migration fails.
pub(crate) async fn migrate_to_latest(
    config: &DatabaseConfig,
    graph: &Graph,
    router: &dyn DatabaseRouter,
    models: &[crate::db::ModelEntry],
    progress: impl FnMut(Progress<'_>),
) -> Result<(), BootError> {
    let db = connect_to_migrate(config).await?;
    let executor = Executor::new(&db, graph);
    let (steps, _refused) = plan(&executor, &Target::Latest, router, &config.name).await?;
    executor.run(&steps, progress).await?;
    post_migrate(&db, &executor, models).await?;
    let _ = db.close().await;
    Ok(())
}

/// Django's `post_migrate`: what installed apps do once their tables are
/// there. The `auth` app creates the default permissions of `models`.
async fn post_migrate(
    db: &DatabaseConnection,
    executor: &Executor<'_>,
    models: &[crate::db::ModelEntry],
) -> Result<(), BootError> {
    let applied = executor.applied().await?;
    crate::auth::post_migrate(db, &applied, models)
        .await
        .map_err(|error| {
            BootError::Usage(format!(
                "the migrations ran, but creating the models' permissions failed: {error}\n  fix: run `migrate` again; it creates only the permissions still missing"
            ))
        })
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
        return Err(GraphError::UnknownApp(app.clone()).into());
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
    let key = graph.find(&args.app, &args.migration)?;
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
        writeln!(out, "{SQLITE_BEFORE_MIGRATION};").ok();
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
        writeln!(out, "{SQLITE_AFTER_MIGRATION};").ok();
    }
    Ok(())
}

/// `makemigrations [APP...]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct MakeArgs {
    /// Only these apps (default: every app with models).
    #[arg(value_name = "APP")]
    apps: Vec<String>,
    /// Write nothing; exit with status 1 if the models have changes that no
    /// migration records (for CI).
    #[arg(long)]
    pub(crate) check: bool,
    /// Show what would be written, without writing.
    #[arg(long)]
    dry_run: bool,
    /// The new migration's name, after its number (`--name add_votes`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Write an empty migration for the named app, to fill by hand (data
    /// migrations with `run_rust` or `run_sql`).
    #[arg(long)]
    empty: bool,
    /// Write a migration that depends on an app's conflicting latest
    /// migrations, ending the conflict.
    #[arg(long)]
    merge: bool,
    /// Never ask: renames are not assumed, missing one-off defaults are errors.
    #[arg(long)]
    no_input: bool,
    /// Declare a rename instead of being asked: `app.table.old=new` for a
    /// field, `app.old_table=new_table` for a model. Repeatable.
    #[arg(long, value_name = "SPEC")]
    rename: Vec<String>,
}

/// What `makemigrations` found: `Ok(true)` when the models had changes
/// (written, or only reported with `--check` / `--dry-run`).
pub(crate) fn makemigrations(
    project: &Project,
    args: &MakeArgs,
    out: &mut impl Write,
) -> Result<bool, BootError> {
    use super::migrations::autodetect::{self, ConsoleQuestioner, NoInput, Questioner};
    use std::io::IsTerminal;

    if args.merge {
        return merge(project, args, out);
    }
    let graph = graph(project)?;
    for app in &args.apps {
        if !project.mounts().iter().any(|m| &m.app.label == app) {
            return Err(BootError::Usage(format!("no app is labelled `{app}`")));
        }
    }
    let mut changes = if args.empty {
        let [app] = args.apps.as_slice() else {
            return Err(BootError::Usage(
                "--empty needs exactly one app: makemigrations --empty polls".to_owned(),
            ));
        };
        let mut changes = autodetect::Changes::default();
        changes
            .apps
            .insert(app.clone(), autodetect::AppChanges::default());
        changes
    } else {
        let (models, mut hints) = project.models_state()?;
        for spec in &args.rename {
            hints = hints
                .parse(spec)
                .map_err(|e| BootError::Usage(e.to_string()))?;
        }
        let from = project.recorded_state(&graph)?;
        let interactive = !args.no_input && std::io::stdin().is_terminal();
        let mut console;
        let mut no_input = NoInput;
        let questioner: &mut dyn Questioner = if interactive {
            console = ConsoleQuestioner::new(std::io::stdin().lock(), std::io::stderr());
            &mut console
        } else {
            &mut no_input
        };
        // Apps that have models declare them all; an app without registered
        // models is left alone rather than read as "every table dropped".
        let with_models: BTreeSet<&str> = project
            .mounts()
            .iter()
            .filter(|m| !m.app.models.is_empty())
            .map(|m| m.app.label.as_str())
            .collect();
        let mut from = from;
        from.models
            .retain(|(app, _), _| with_models.contains(app.as_str()));
        autodetect::detect(&from, &models, questioner, &hints)
            .map_err(|e| BootError::Model(e.to_string()))?
    };
    if !args.apps.is_empty() {
        changes.apps.retain(|app, _| args.apps.contains(app));
    }
    if changes.is_empty() {
        writeln!(out, "No changes detected").ok();
        return Ok(false);
    }
    let order: Vec<String> = changes.app_order().into_iter().map(str::to_owned).collect();
    // The name each app's newest migration will have once this run is done.
    let mut latest: BTreeMap<String, String> = graph
        .apps()
        .filter_map(|app| Some((app.to_owned(), graph.leaves(app).pop()?.1)))
        .collect();
    for app in &order {
        let app_changes = &changes.apps[app];
        let existing = graph.app_migrations(app);
        let number = next_number(existing.iter().map(|m| m.name.as_str()));
        let name = match &args.name {
            Some(name) => format!("{number:04}_{name}"),
            None if args.empty => format!("{number:04}_auto"),
            None => writer::migration_name(number, &app_changes.operations),
        };
        let mut migration = Migration::new(&name);
        if let Some(previous) = latest.get(app) {
            migration = migration.depends_on(app, previous);
        }
        for dependency in &app_changes.dependencies {
            if let Some(previous) = latest.get(dependency) {
                migration = migration.depends_on(dependency, previous);
            }
        }
        migration.operations.clone_from(&app_changes.operations);
        let dir = project.root_dir().join("src").join(app);
        let module = writer::module_name(&name);
        let file = dir.join("migrations").join(format!("{module}.rs"));
        let shown = file
            .strip_prefix(project.root_dir())
            .unwrap_or(&file)
            .display()
            .to_string();
        writeln!(out, "Migrations for '{app}':\n  {shown}").ok();
        for operation in &migration.operations {
            writeln!(out, "    - {operation}").ok();
        }
        if !(args.check || args.dry_run) {
            write_migration(&dir, existing, &migration)?;
            if existing.is_empty() {
                writeln!(
                    out,
                    "  First migration of `{app}`: add `mod migrations;` to src/{app}.rs and `.migrations(migrations::migrations())` to its App."
                )
                .ok();
            }
        }
        latest.insert(app.clone(), name);
    }
    if args.check {
        writeln!(
            out,
            "The models have changes that no migration records: run `makemigrations`, then commit the new files."
        )
        .ok();
    } else if !args.dry_run {
        writeln!(
            out,
            "Run `migrate` to apply them (cargo run rebuilds the project with the new files first)."
        )
        .ok();
    }
    Ok(true)
}

/// `makemigrations --merge`: one migration per conflicted app that depends
/// on all its latest migrations.
fn merge(project: &Project, args: &MakeArgs, out: &mut impl Write) -> Result<bool, BootError> {
    let apps = project
        .mounts()
        .iter()
        .filter(|mount| !mount.app.migrations.is_empty())
        .map(|mount| (mount.app.label.clone(), mount.app.migrations.clone()))
        .collect();
    let graph = Graph::with_conflicts(apps)?;
    let conflicts = graph.conflicts();
    if conflicts.is_empty() {
        writeln!(out, "No conflicts detected to merge.").ok();
        return Ok(false);
    }
    for (app, leaves) in conflicts {
        if !args.apps.is_empty() && !args.apps.contains(&app) {
            continue;
        }
        let existing = graph.app_migrations(&app);
        let number = next_number(existing.iter().map(|m| m.name.as_str()));
        let name = match &args.name {
            Some(name) => format!("{number:04}_{name}"),
            None => format!("{number:04}_merge"),
        };
        let mut migration = Migration::new(&name);
        for (_, leaf) in &leaves {
            migration = migration.depends_on(&app, leaf);
        }
        let dir = project.root_dir().join("src").join(&app);
        let module = writer::module_name(&name);
        writeln!(
            out,
            "Merging {app}: {} -> src/{app}/migrations/{module}.rs",
            leaves
                .iter()
                .map(|(_, leaf)| leaf.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .ok();
        if !(args.check || args.dry_run) {
            write_migration(&dir, existing, &migration)?;
        }
    }
    Ok(true)
}

/// One more than the highest migration number of an app (`0001` first).
fn next_number<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    names
        .filter_map(|name| {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

/// Writes `migration` into the app folder `dir` and adds it to the app's
/// list after `existing`.
fn write_migration(
    dir: &std::path::Path,
    existing: &[Migration],
    migration: &Migration,
) -> Result<(), BootError> {
    let source = writer::render_migration(migration, std::time::SystemTime::now())
        .map_err(|e| BootError::Model(e.to_string()))?;
    let module = writer::module_name(&migration.name);
    let mut modules: Vec<String> = existing
        .iter()
        .map(|m| writer::module_name(&m.name))
        .collect();
    modules.push(module.clone());
    write_file(
        &dir.join("migrations").join(format!("{module}.rs")),
        &source,
    )?;
    write_file(&dir.join("migrations.rs"), &writer::render_index(&modules))
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), BootError> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, text));
    written.map_err(|error| {
        BootError::Usage(format!(
            "cannot write {}: {error}\n  fix: check that the project folder is writable",
            path.display()
        ))
    })
}

/// `dumpdata [APP[.TABLE]...]`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DumpArgs {
    /// Apps (`polls`) or single tables (`polls.polls_question`); all apps
    /// with migrations when none is given.
    #[arg(value_name = "APP[.TABLE]")]
    selection: Vec<String>,
    /// The database to read.
    #[arg(long, default_value = DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

/// `loaddata FILE...`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoadArgs {
    /// Fixture files written by `dumpdata` (Django's JSON format).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<std::path::PathBuf>,
    /// The database to write.
    #[arg(long, default_value = DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
}

fn fixture_error(error: super::fixtures::FixtureError) -> BootError {
    BootError::Usage(error.to_string())
}

/// Runs `dumpdata`: the rows of the selected tables as JSON.
pub(crate) async fn dumpdata(
    project: &Project,
    settings: &Settings,
    args: &DumpArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let graph = graph(project)?;
    let state = graph.final_state()?;
    let selection = if args.selection.is_empty() {
        graph
            .apps()
            .map(|app| super::fixtures::Selector::App(app.to_owned()))
            .collect()
    } else {
        args.selection
            .iter()
            .map(|text| text.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(fixture_error)?
    };
    let db = config_for(project, settings, &args.database)?
        .connect()
        .await?;
    let json = super::fixtures::dump(&db, &state, &selection)
        .await
        .map_err(fixture_error)?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| BootError::Usage(e.to_string()))?;
    match &args.output {
        Some(path) => write_file(path, &format!("{text}\n")),
        None => {
            writeln!(out, "{text}").ok();
            Ok(())
        }
    }
}

/// Runs `loaddata`: each file in one transaction, all or nothing.
pub(crate) async fn loaddata(
    project: &Project,
    settings: &Settings,
    args: &LoadArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let graph = graph(project)?;
    let state = graph.final_state()?;
    let db = config_for(project, settings, &args.database)?
        .connect()
        .await?;
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|error| {
            BootError::Usage(format!("cannot read fixture {}: {error}", path.display()))
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|error| {
            BootError::Usage(format!(
                "fixture {} is not JSON: {error}\n  fix: give a file written by `dumpdata`",
                path.display()
            ))
        })?;
        let report = super::fixtures::load(&db, &state, &json)
            .await
            .map_err(|error| BootError::Usage(format!("fixture {}: {error}", path.display())))?;
        writeln!(
            out,
            "Installed {} object(s) from {}",
            report.objects,
            path.display()
        )
        .ok();
    }
    Ok(())
}
