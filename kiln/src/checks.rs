//! System checks (Django's `check` framework): mistakes found at boot and by
//! the `check` command, each with an id, a message and a hint.

use std::fmt;

use crate::project::Project;
use crate::settings::Settings;

/// How serious a check message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The project cannot run correctly.
    Error,
    /// Probably a mistake.
    Warning,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckMessage {
    /// Error or warning.
    pub level: Level,
    /// A stable id, such as `kiln.E001`, to look up or silence.
    pub id: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for CheckMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
        };
        write!(f, "{level} {}: {}", self.id, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    HINT: {hint}")?;
        }
        Ok(())
    }
}

/// Runs every check on `project` with `settings`.
#[must_use]
pub fn run(project: &Project, settings: &Settings) -> Vec<CheckMessage> {
    let mut messages: Vec<CheckMessage> = settings
        .warnings
        .iter()
        .map(|warning| CheckMessage {
            level: Level::Warning,
            id: "kiln.W001",
            message: warning.clone(),
            hint: None,
        })
        .collect();
    if let Err(error) = project.url_registry() {
        messages.push(CheckMessage {
            level: Level::Error,
            id: "kiln.E001",
            message: error.to_string(),
            hint: None,
        });
    }
    messages.extend(check_migrations(project));
    messages.extend(at_boot(project, settings));
    // `kiln.E007`: production without `allowed_hosts` (the site would not boot).
    if let Err(error) = crate::security::boot_check(settings) {
        messages.push(CheckMessage {
            level: Level::Error,
            id: "kiln.E007",
            message: error.to_string(),
            hint: None,
        });
    }
    if settings.debug && !cfg!(debug_assertions) {
        messages.push(CheckMessage {
            level: Level::Warning,
            id: "kiln.W002",
            message: "debug mode is on in a release build".to_owned(),
            hint: Some(
                "debug pages show internals; set debug = false (KILN_DEBUG=false) in production"
                    .to_owned(),
            ),
        });
    }
    if settings.debug && settings.addr().ip().is_unspecified() {
        messages.push(CheckMessage {
            level: Level::Warning,
            id: "kiln.W003",
            message: format!("debug mode serves on all interfaces ({})", settings.host),
            hint: Some(
                "anyone on the network can read debug pages; listen on 127.0.0.1 while debugging"
                    .to_owned(),
            ),
        });
    }
    messages.extend(uncollected_static_files(project, settings));
    messages.extend(auth_without_sessions(project));
    messages
}

/// `kiln.W005`: the auth app is mounted but the sessions app is not, so
/// nobody can stay logged in (`login` fails and every visitor is anonymous).
fn auth_without_sessions(project: &Project) -> Option<CheckMessage> {
    let labels = project.app_labels();
    let has = |label: &str| labels.iter().any(|mounted| mounted == label);
    (has(crate::auth::LABEL) && !has(crate::sessions::LABEL)).then(|| CheckMessage {
        level: Level::Warning,
        id: "kiln.W005",
        message: "the auth app is mounted without the sessions app: logins cannot be kept, and the login view fails".to_owned(),
        hint: Some(
            "mount the sessions app before it, `.mount(\"/\", kiln::sessions::app())`, and run `migrate`"
                .to_owned(),
        ),
    })
}

/// The checks `runserver` stops on, which nothing else at start-up finds:
/// model options naming a missing column (`kiln.E004`) and templates that
/// do not compile or folders that do not exist (`kiln.E005`, `kiln.E006`).
/// Route and migration errors are not repeated here: building the site and
/// loading the migration graph report them anyway.
pub(crate) fn at_boot(project: &Project, settings: &Settings) -> Vec<CheckMessage> {
    let mut messages = Vec::new();
    for entry in project.model_entries().unwrap_or_default() {
        for column in entry.unknown_columns() {
            messages.push(CheckMessage {
                level: Level::Error,
                id: "kiln.E004",
                message: format!(
                    "the options of model `{}` (app `{}`) name `{column}`, which is not one of its columns",
                    entry.table, entry.app
                ),
                hint: Some(format!("use one of: {}", entry.columns.join(", "))),
            });
        }
    }
    messages.extend(check_templates(project, settings));
    messages
}

/// `kiln.W004`: production would serve static files from `static_root`, but
/// `collectstatic` has not filled it.
fn uncollected_static_files(project: &Project, settings: &Settings) -> Option<CheckMessage> {
    let files = project.static_files(settings);
    let served_here = files.prefix().starts_with('/');
    let has_files = files
        .sources()
        .iter()
        .any(|source| std::fs::read_dir(source).is_ok_and(|mut entries| entries.next().is_some()));
    let collected = files.root().join(crate::staticfiles::MANIFEST).is_file();
    (!settings.debug && served_here && has_files && !collected).then(|| CheckMessage {
        level: Level::Warning,
        id: "kiln.W004",
        message: format!(
            "static files have not been collected into {} (static_root), so production answers 404 for them",
            files.root().display()
        ),
        hint: Some("run `collectstatic` as a deploy step, after each change to static files".to_owned()),
    })
}

/// `kiln.E005`: a template does not compile (with its file and line);
/// `kiln.E006`: a registered templates folder does not exist.
fn check_templates(project: &Project, settings: &Settings) -> Vec<CheckMessage> {
    let (errors, missing) = project.templates_for_check(settings).check();
    let compile = errors.into_iter().map(|error| {
        let message = match error.trace() {
            Some(trace) => format!(
                "{}:{}: template `{}` does not compile: {}",
                trace.file.as_deref().unwrap_or(&trace.name),
                trace.line.unwrap_or(0),
                trace.name,
                trace.message
            ),
            None => error.to_string(),
        };
        CheckMessage {
            level: Level::Error,
            id: "kiln.E005",
            message,
            hint: Some(
                "correct the template at that line (Jinja2 syntax: {{ value }}, {% tag %})"
                    .to_owned(),
            ),
        }
    });
    let folders = missing.into_iter().map(|folder| CheckMessage {
        level: Level::Error,
        id: "kiln.E006",
        message: format!("the templates folder {folder} does not exist"),
        hint: Some(
            "create it, or correct the path given to templates_dir! (relative to the crate's Cargo.toml)"
                .to_owned(),
        ),
    });
    compile.chain(folders).collect()
}

/// `kiln.E002`: the migrations do not load; `kiln.E003`: the models have
/// changes that no migration records (what `makemigrations --check` finds).
fn check_migrations(project: &Project) -> Option<CheckMessage> {
    use crate::db::migrations::autodetect::{NoInput, detect};

    let error = |id, message: String, hint: &str| CheckMessage {
        level: Level::Error,
        id,
        message,
        hint: Some(hint.to_owned()),
    };
    let graph = match project.migration_graph() {
        Ok(graph) => graph,
        Err(e) => return Some(error("kiln.E002", e.to_string(), "see the fix above")),
    };
    let from = match project.recorded_state(&graph) {
        Ok(state) => state,
        Err(e) => return Some(error("kiln.E002", e.to_string(), "see the fix above")),
    };
    let (models, hints) = match project.models_state() {
        Ok(models) => models,
        Err(e) => return Some(error("kiln.E003", e.to_string(), "see the fix above")),
    };
    let hint = "run `makemigrations` (cargo run -- makemigrations), then `migrate`";
    match detect(&from, &models, &mut NoInput, &hints) {
        Ok(changes) if changes.is_empty() => None,
        Ok(changes) => Some(error(
            "kiln.E003",
            format!(
                "the models of {} have changes that no migration records",
                changes
                    .apps
                    .keys()
                    .map(|app| format!("`{app}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint,
        )),
        Err(e) => Some(error(
            "kiln.E003",
            format!("the models have changes that no migration records: {e}"),
            hint,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::urls::get;

    #[test]
    fn reports_duplicate_route_names_as_errors() {
        let app = crate::App::new("polls")
            .route("/a/", "index", get(|| async { "" }))
            .route("/b/", "index", get(|| async { "" }));
        let project = Project::new("t").mount("/polls", app);
        let messages = run(&project, &Settings::defaults_for(true));
        let error = messages.iter().find(|m| m.level == Level::Error).unwrap();
        assert_eq!(error.id, "kiln.E001");
        assert!(error.message.contains("polls:index"), "{}", error.message);
    }

    #[expect(unreachable_pub, reason = "the model is `pub`, as SeaORM entities are")]
    mod note {
        use crate::db::prelude::*;

        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "notes_note")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i64,
            pub text: String,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    #[test]
    fn models_without_migrations_are_an_error_until_migrations_record_them() {
        use crate::db::migrations::{Field, Migration, ModelState, Type};

        let app = crate::App::new("notes").model::<note::Entity>();
        let messages = run(
            &Project::new("t").mount("/", app),
            &Settings::defaults_for(true),
        );
        let error = messages.iter().find(|m| m.id == "kiln.E003").unwrap();
        assert!(error.message.contains("`notes`"), "{}", error.message);
        assert!(error.hint.as_deref().unwrap().contains("makemigrations"));

        let initial = Migration::new("0001_initial").create_model(
            ModelState::new("notes_note")
                .field(Field::new("id", Type::BigInteger).auto_increment())
                .field(Field::new("text", Type::String(None)))
                .primary_key(&["id"]),
        );
        let app = crate::App::new("notes")
            .model::<note::Entity>()
            .migrations(vec![initial]);
        let messages = run(
            &Project::new("t").mount("/", app),
            &Settings::defaults_for(true),
        );
        assert!(messages.is_empty(), "{messages:?}");
    }

    #[test]
    fn model_options_that_name_no_column_are_an_error() {
        use crate::db::{FieldOptions, ModelOptions};

        let options = ModelOptions::new()
            .ordering(&["-created"])
            .field("text", FieldOptions::new().help_text("The note"));
        let app = crate::App::new("notes").model_with::<note::Entity>(options);
        let messages = run(
            &Project::new("t").mount("/", app),
            &Settings::defaults_for(true),
        );
        let errors: Vec<_> = messages.iter().filter(|m| m.id == "kiln.E004").collect();
        assert_eq!(errors.len(), 1, "{messages:?}");
        assert!(
            errors[0].message.contains("`created`"),
            "{}",
            errors[0].message
        );
        assert!(errors[0].hint.as_deref().unwrap().contains("id, text"));
    }

    #[test]
    fn migrations_that_do_not_load_are_an_error() {
        use crate::db::migrations::Migration;

        let broken = Migration::new("0002_x").depends_on("notes", "0001_gone");
        let app = crate::App::new("notes").migrations(vec![broken]);
        let messages = run(
            &Project::new("t").mount("/", app),
            &Settings::defaults_for(true),
        );
        let error = messages.iter().find(|m| m.id == "kiln.E002").unwrap();
        assert!(
            error.message.contains("notes.0001_gone"),
            "{}",
            error.message
        );
    }

    #[test]
    fn warns_when_auth_is_mounted_without_sessions() {
        let settings = Settings::defaults_for(true);
        let alone = Project::new("t").mount("/accounts", crate::auth::app());
        let messages = run(&alone, &settings);
        let warning = messages.iter().find(|m| m.id == "kiln.W005").unwrap();
        assert_eq!(warning.level, Level::Warning);
        assert!(
            warning
                .hint
                .as_deref()
                .unwrap()
                .contains("kiln::sessions::app()"),
            "{warning}"
        );
        let together = Project::new("t")
            .mount("/", crate::sessions::app())
            .mount("/accounts", crate::auth::app());
        assert!(
            run(&together, &settings)
                .iter()
                .all(|m| m.id != "kiln.W005")
        );
        let sessions_only = Project::new("t").mount("/", crate::sessions::app());
        assert!(
            run(&sessions_only, &settings)
                .iter()
                .all(|m| m.id != "kiln.W005")
        );
    }

    #[test]
    fn warns_about_debug_on_all_interfaces() {
        let mut settings = Settings::defaults_for(true);
        settings.host = "0.0.0.0".to_owned();
        let messages = run(&Project::new("t"), &settings);
        assert!(messages.iter().any(|m| m.id == "kiln.W003"));
        assert!(
            run(&Project::new("t"), &Settings::defaults_for(true))
                .iter()
                .all(|m| m.id != "kiln.W003")
        );
    }
}
