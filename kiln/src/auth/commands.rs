//! `createsuperuser` and `changepassword`, as Django's.
//!
//! Both ask for the password twice without echo (through `rpassword`, which
//! reads the terminal itself), run the password validators, and write only
//! the argon2id hash. The prompts go through [`Prompt`] so that tests drive
//! the same dialogue with scripted answers.

use std::io::{BufRead, Write};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{AuthError, LABEL, user, validators};
use crate::db::DatabaseConnection;
use crate::project::{BootError, Project};
use crate::settings::Settings;

/// The variables `createsuperuser --no-input` reads.
pub(crate) const USERNAME_ENV: &str = "KILN_SUPERUSER_USERNAME";
pub(crate) const EMAIL_ENV: &str = "KILN_SUPERUSER_EMAIL";
pub(crate) const PASSWORD_ENV: &str = "KILN_SUPERUSER_PASSWORD";

/// `createsuperuser`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "With --no-input, the account comes from KILN_SUPERUSER_USERNAME, \
    KILN_SUPERUSER_EMAIL and KILN_SUPERUSER_PASSWORD (or --username / --email); without \
    KILN_SUPERUSER_PASSWORD the account gets an unusable password."
)]
pub(crate) struct CreateSuperuserArgs {
    /// The username (asked for when not given).
    #[arg(long)]
    username: Option<String>,
    /// The email address (asked for when not given).
    #[arg(long)]
    email: Option<String>,
    /// Ask nothing: read the account from the options and the
    /// KILN_SUPERUSER_* environment variables (for scripts and deploys).
    #[arg(long, alias = "noinput")]
    no_input: bool,
    /// The database to write to (a name from `[databases.NAME]`).
    #[arg(long, default_value = crate::db::DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
}

/// `changepassword USERNAME`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChangePasswordArgs {
    /// The user whose password changes.
    username: String,
    /// The database to write to.
    #[arg(long, default_value = crate::db::DEFAULT_DATABASE, value_name = "NAME")]
    database: String,
}

/// Where answers come from: the terminal, or a script in tests.
pub(crate) trait Prompt {
    /// A line typed with echo.
    fn line(&mut self, prompt: &str) -> std::io::Result<String>;
    /// A line typed without echo.
    fn secret(&mut self, prompt: &str) -> std::io::Result<String>;
}

/// The process's terminal: stdin for lines, `rpassword` for secrets.
pub(crate) struct Terminal;

impl Prompt for Terminal {
    fn line(&mut self, prompt: &str) -> std::io::Result<String> {
        print!("{prompt}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn secret(&mut self, prompt: &str) -> std::io::Result<String> {
        rpassword::prompt_password(prompt)
    }
}

/// The database for an account command, after checking that the auth app
/// is installed.
async fn connect(
    project: &Project,
    settings: &Settings,
    database: &str,
) -> Result<DatabaseConnection, BootError> {
    if !project
        .mounts()
        .iter()
        .any(|mount| mount.app.label == LABEL)
    {
        return Err(BootError::Usage(
            "the auth app is not installed\n  fix: mount it in main.rs: .mount(\"/accounts\", kiln::auth::app()), then run `migrate`".to_owned(),
        ));
    }
    crate::auth::configure(settings).map_err(BootError::Usage)?;
    let config = crate::db::commands::config_for(project, settings, database)?;
    Ok(config.connect_with(1).await?)
}

/// A database error in an account command, with the likely fix.
fn db_error(error: AuthError) -> BootError {
    match error {
        AuthError::Db(error) => BootError::Usage(format!(
            "the database refused the account: {error}\n  fix: run `migrate` first so the auth tables exist"
        )),
        other => BootError::Usage(other.to_string()),
    }
}

/// Runs `createsuperuser`.
pub(crate) async fn createsuperuser(
    project: &Project,
    settings: &Settings,
    args: &CreateSuperuserArgs,
    prompt: &mut impl Prompt,
    env: impl Fn(&str) -> Option<String>,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let db = connect(project, settings, &args.database).await?;
    let user = if args.no_input {
        from_environment(&db, args, env).await?
    } else {
        interactive(&db, args, prompt, out).await?
    };
    let (username, email, password) = user;
    crate::auth::create_superuser(&db, &username, &email, password.as_deref())
        .await
        .map_err(db_error)?;
    if password.is_none() {
        writeln!(
            out,
            "Superuser created with an unusable password; set one with `changepassword {username}`."
        )
        .ok();
    } else {
        writeln!(out, "Superuser created successfully.").ok();
    }
    Ok(())
}

type NewUser = (String, String, Option<String>);

async fn from_environment(
    db: &DatabaseConnection,
    args: &CreateSuperuserArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<NewUser, BootError> {
    let value =
        |given: &Option<String>, name: &str, what: &str| {
            given
            .clone()
            .or_else(|| env(name))
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| {
                BootError::Usage(format!(
                    "createsuperuser --no-input needs the {what}\n  fix: set {name} (or pass --{})",
                    if what == "username" { "username" } else { "email" }
                ))
            })
        };
    let username = value(&args.username, USERNAME_ENV, "username")?;
    let email = value(&args.email, EMAIL_ENV, "email address")?;
    crate::auth::validate_username(&username).map_err(db_error)?;
    crate::auth::validate_email(&email).map_err(BootError::Usage)?;
    check_available(db, &username).await?;
    let password = env(PASSWORD_ENV).filter(|password| !password.is_empty());
    if let Some(password) = &password {
        let candidate = candidate(&username, &email);
        if let Err(errors) = validators::validate_password(password, Some(&candidate)) {
            return Err(BootError::Usage(format!(
                "{PASSWORD_ENV} does not pass the password validators:\n  {}\n  fix: choose a stronger password",
                errors.join("\n  ")
            )));
        }
    }
    Ok((username, email, password))
}

async fn check_available(db: &DatabaseConnection, username: &str) -> Result<(), BootError> {
    let taken = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await
        .map_err(|error| db_error(error.into()))?
        .is_some();
    if taken {
        return Err(BootError::Usage(format!(
            "the username `{username}` is already taken\n  fix: choose another, or run `changepassword {username}`"
        )));
    }
    Ok(())
}

/// The user being created, for the similarity validator.
fn candidate(username: &str, email: &str) -> user::Model {
    user::Model::unsaved(username, email)
}

fn io_error(error: &std::io::Error) -> BootError {
    BootError::Usage(format!(
        "cannot read the answer: {error}\n  fix: run the command in a terminal, or use --no-input with the KILN_SUPERUSER_* variables"
    ))
}

async fn interactive(
    db: &DatabaseConnection,
    args: &CreateSuperuserArgs,
    prompt: &mut impl Prompt,
    out: &mut impl Write,
) -> Result<NewUser, BootError> {
    let username = loop {
        let username = match &args.username {
            Some(username) => username.clone(),
            None => prompt.line("Username: ").map_err(|e| io_error(&e))?,
        };
        let problem = match crate::auth::validate_username(&username) {
            Err(error) => Some(error.to_string()),
            Ok(()) => check_available(db, &username)
                .await
                .err()
                .map(|error| error.to_string()),
        };
        match (problem, &args.username) {
            (None, _) => break username,
            (Some(problem), Some(_)) => return Err(BootError::Usage(problem)),
            (Some(problem), None) => {
                writeln!(out, "Error: {}", first_line(&problem)).ok();
            }
        }
    };
    let email = loop {
        let email = match &args.email {
            Some(email) => email.clone(),
            None => prompt.line("Email address: ").map_err(|e| io_error(&e))?,
        };
        match (crate::auth::validate_email(&email), &args.email) {
            (Ok(()), _) => break email,
            (Err(problem), Some(_)) => return Err(BootError::Usage(problem)),
            (Err(problem), None) => {
                writeln!(out, "Error: {problem}").ok();
            }
        }
    };
    let candidate = candidate(&username, &email);
    let password = ask_password(prompt, out, Some(&candidate), true)?;
    Ok((username, email, Some(password)))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Asks for a password twice until both match and it passes the validators
/// (or, when `bypass` is offered, the person accepts it anyway). Gives up
/// after three mismatches, as Django does.
fn ask_password(
    prompt: &mut impl Prompt,
    out: &mut impl Write,
    user: Option<&user::Model>,
    bypass: bool,
) -> Result<String, BootError> {
    let mut mismatches = 0;
    loop {
        let password = prompt.secret("Password: ").map_err(|e| io_error(&e))?;
        let again = prompt
            .secret("Password (again): ")
            .map_err(|e| io_error(&e))?;
        if password != again {
            mismatches += 1;
            writeln!(out, "Error: Your passwords didn't match.").ok();
            if mismatches == 3 {
                return Err(BootError::Usage(
                    "the passwords did not match three times; nothing was changed".to_owned(),
                ));
            }
            continue;
        }
        if password.is_empty() {
            writeln!(out, "Error: Blank passwords aren't allowed.").ok();
            continue;
        }
        let Err(errors) = validators::validate_password(&password, user) else {
            return Ok(password);
        };
        for error in &errors {
            writeln!(out, "{error}").ok();
        }
        if bypass {
            let answer = prompt
                .line("Bypass password validation and create user anyway? [y/N]: ")
                .map_err(|e| io_error(&e))?;
            if answer.trim().eq_ignore_ascii_case("y") {
                return Ok(password);
            }
        }
    }
}

/// Runs `changepassword USERNAME`.
pub(crate) async fn changepassword(
    project: &Project,
    settings: &Settings,
    args: &ChangePasswordArgs,
    prompt: &mut impl Prompt,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let db = connect(project, settings, &args.database).await?;
    let found = user::Entity::find()
        .filter(user::Column::Username.eq(&args.username))
        .one(&db)
        .await
        .map_err(|error| db_error(error.into()))?;
    let Some(user) = found else {
        return Err(BootError::Usage(format!(
            "no user is named `{}`\n  fix: check the spelling, or create the account with `createsuperuser`",
            args.username
        )));
    };
    writeln!(out, "Changing password for user '{}'", user.username).ok();
    let password = ask_password(prompt, out, Some(&user), false)?;
    let hash = super::hashers::make_password(&password)
        .await
        .map_err(|error| BootError::Usage(error.to_string()))?;
    let mut active: user::ActiveModel = user.into();
    active.password = Set(hash);
    let user = active
        .update(&db)
        .await
        .map_err(|error| db_error(error.into()))?;
    writeln!(
        out,
        "Password changed successfully for user '{}'",
        user.username
    )
    .ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Answers in order; the prompts asked are recorded.
    struct Script {
        answers: VecDeque<&'static str>,
        asked: Vec<String>,
    }

    impl Script {
        fn new(answers: &[&'static str]) -> Self {
            Self {
                answers: answers.iter().copied().collect(),
                asked: Vec::new(),
            }
        }

        fn next(&mut self, prompt: &str) -> std::io::Result<String> {
            self.asked.push(prompt.to_owned());
            self.answers
                .pop_front()
                .map(str::to_owned)
                .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
        }
    }

    impl Prompt for Script {
        fn line(&mut self, prompt: &str) -> std::io::Result<String> {
            self.next(prompt)
        }
        fn secret(&mut self, prompt: &str) -> std::io::Result<String> {
            self.next(prompt)
        }
    }

    #[test]
    fn mismatched_then_weak_then_bypassed_password_is_accepted() {
        let mut script = Script::new(&["one-long-pass", "another-pass", "123", "123", "y"]);
        let mut out = Vec::new();
        let password = ask_password(&mut script, &mut out, None, true).unwrap();
        assert_eq!(password, "123");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("Error: Your passwords didn't match."), "{out}");
        assert!(out.contains("This password is too short."), "{out}");
        assert_eq!(
            script.asked.last().unwrap(),
            "Bypass password validation and create user anyway? [y/N]: "
        );
    }

    #[test]
    fn a_weak_password_is_asked_again_when_not_bypassed() {
        let mut script = Script::new(&[
            "password",
            "password",
            "n",
            "a sturdy passphrase",
            "a sturdy passphrase",
        ]);
        let mut out = Vec::new();
        let password = ask_password(&mut script, &mut out, None, true).unwrap();
        assert_eq!(password, "a sturdy passphrase");
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("This password is too common.")
        );
    }

    #[test]
    fn three_mismatches_give_up() {
        let mut script = Script::new(&["a", "b", "c", "d", "e", "f"]);
        let error = ask_password(&mut script, &mut Vec::new(), None, false).unwrap_err();
        assert!(error.to_string().contains("three times"), "{error}");
    }
}
