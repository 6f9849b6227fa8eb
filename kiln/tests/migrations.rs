//! Migrations end to end: entities read as models, changes detected against
//! replayed migrations, and generated migration files that compile into the
//! same migration and that rustfmt leaves alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use kiln::db::migrations::autodetect::{NoInput, RenameHints, detect};
use kiln::db::migrations::writer::{migration_name, module_name, render_index, render_migration};
use kiln::db::migrations::*;
use kiln::db::models::model_info;

mod question {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_question")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub question_text: String,
        pub pub_date: DateTimeUtc,
        #[sea_orm(has_many)]
        pub choices: HasMany<super::choice::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

mod choice {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "polls_choice")]
    pub(crate) struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(indexed)]
        pub question_id: i64,
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub choice_text: String,
        #[sea_orm(default_value = 0)]
        pub votes: i32,
        #[sea_orm(belongs_to, from = "question_id", to = "id", on_delete = "Cascade")]
        pub question: BelongsTo<super::question::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

#[test]
fn tutorial_models_make_an_initial_then_an_incremental_migration() {
    let mut models = ProjectState::default();
    for info in [
        model_info::<question::Entity>().unwrap(),
        model_info::<choice::Entity>().unwrap(),
    ] {
        models
            .models
            .insert(("polls".to_owned(), info.state.table.clone()), info.state);
    }

    // Before any migration: the initial one creates the question first.
    let changes = detect(
        &ProjectState::default(),
        &models,
        &mut NoInput,
        &RenameHints::new(),
    )
    .unwrap();
    let operations = changes.apps["polls"].operations.clone();
    let initial = Migration {
        name: migration_name(1, &operations),
        dependencies: Vec::new(),
        operations,
        atomic: true,
    };
    assert_eq!(initial.name, "0001_initial");
    assert_eq!(
        initial.operations[0].to_string(),
        "Create model polls_question"
    );

    // Replayed, the initial migration matches the models exactly.
    let mut replayed = ProjectState::default();
    for operation in &initial.operations {
        operation.apply("polls", &mut replayed).unwrap();
    }
    assert_eq!(replayed, models);
    let none = detect(&replayed, &models, &mut NoInput, &RenameHints::new()).unwrap();
    assert!(none.is_empty(), "{none:?}");

    // The migrations lack `votes`: the next migration adds it.
    let mut without_votes = replayed.clone();
    without_votes
        .models
        .get_mut(&("polls".to_owned(), "polls_choice".to_owned()))
        .unwrap()
        .fields
        .retain(|field| field.name != "votes");
    let changes = detect(&without_votes, &models, &mut NoInput, &RenameHints::new()).unwrap();
    let operations = &changes.apps["polls"].operations;
    assert_eq!(
        migration_name(2, operations),
        "0002_add_votes_to_polls_choice"
    );
}

/// Every operation but `RunRust`, every type, each kind of default, every
/// foreign key action, a composite key and a unique index.
fn everything() -> Migration {
    let types = [
        Type::String(Some(200)),
        Type::String(None),
        Type::Char(Some(2)),
        Type::Char(None),
        Type::Text,
        Type::TinyInteger,
        Type::SmallInteger,
        Type::Integer,
        Type::BigInteger,
        Type::TinyUnsigned,
        Type::SmallUnsigned,
        Type::Unsigned,
        Type::BigUnsigned,
        Type::Float,
        Type::Double,
        Type::Decimal(Some((10, 2))),
        Type::Decimal(None),
        Type::Boolean,
        Type::Date,
        Type::Time,
        Type::DateTime,
        Type::TimestampTz,
        Type::Uuid,
        Type::Json,
        Type::JsonBinary,
        Type::Binary,
        Type::Enum {
            name: "mood".to_owned(),
            variants: vec!["happy".to_owned(), "sad".to_owned(), "so-so".to_owned()],
        },
        Type::Custom("citext".to_owned()),
    ];
    let mut every_type = ModelState::new("lab_every_type")
        .field(Field::new("id", Type::Uuid))
        .primary_key(&["id"]);
    for (i, ty) in types.into_iter().enumerate() {
        every_type = every_type.field(Field::new(&format!("column_{i}"), ty).null());
    }
    let defaults = [
        DefaultValue::Bool(true),
        DefaultValue::Int(-42),
        DefaultValue::Int(9_000_000_000),
        DefaultValue::Float(1.5),
        DefaultValue::Float(1e-7),
        DefaultValue::Float(f64::INFINITY),
        DefaultValue::Str("say \"hi\"\\\nthen ünïcode\t€".to_owned()),
        DefaultValue::Expr("CURRENT_TIMESTAMP".to_owned()),
    ];
    for (i, default) in defaults.into_iter().enumerate() {
        every_type =
            every_type.field(Field::new(&format!("default_{i}"), Type::Text).default(default));
    }
    let question_tag = ModelState::new("polls_question_tag")
        .field(
            Field::new("question_id", Type::BigInteger).references(
                ForeignKey::to("polls_question", "id")
                    .on_delete(Action::Cascade)
                    .on_update(Action::Restrict),
            ),
        )
        .field(
            Field::new("tag_id", Type::Integer).references(
                ForeignKey::to("polls_tag", "id")
                    .on_delete(Action::SetNull)
                    .on_update(Action::SetDefault),
            ),
        )
        .field(Field::new("rank", Type::SmallInteger).unique())
        .primary_key(&["question_id", "tag_id"])
        .index(Index::new("uniq-question-rank", &["question_id", "rank"]).unique())
        .index(Index::new("idx-polls_question_tag-tag_id", &["tag_id"]));
    Migration::new("0002_everything")
        .depends_on("polls", "0001_initial")
        .depends_on("accounts", "0003_auto_20250131_1200")
        .non_atomic()
        .create_model(
            ModelState::new("polls_tag")
                .field(Field::new("id", Type::Integer).auto_increment())
                .primary_key(&["id"]),
        )
        .create_model(every_type)
        .create_model(question_tag)
        .rename_model("polls_poll", "polls_survey")
        .add_field(
            "polls_choice",
            Field::new("weight", Type::Double).null().default(0.5),
        )
        .remove_field("polls_choice", "legacy")
        .alter_field("polls_choice", Field::new("choice_text", Type::Text))
        .rename_field("polls_choice", "text", "choice_text")
        .add_index(
            "polls_choice",
            Index::new("idx-polls_choice-weight", &["weight"]),
        )
        .remove_index("polls_choice", "idx-polls_choice-legacy")
        .run_sql(
            &["UPDATE polls_choice SET weight = 1", "ANALYZE"],
            Some(&["UPDATE polls_choice SET weight = NULL"]),
        )
        .run_sql(
            &["CREATE VIEW polls_top AS\nSELECT * FROM polls_choice"],
            None,
        )
        .delete_model("polls_survey")
}

/// The Kiln checkout this test belongs to.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the checkout exists")
}

fn run(command: &mut Command, what: &str) -> String {
    let started = Instant::now();
    eprintln!("migrations: {what} ...");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what} does not start: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}); if a crate is missing for --offline, run `cargo fetch` in the Kiln checkout:\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "migrations: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    stdout
}

/// Builds the rendered files in a project of their own and runs it: the
/// migration it builds must be the one rendered. The project's target
/// folder is the one kiln-cli's generated-project test uses, under this
/// workspace's target folder: Kiln and its dependencies, built with the
/// same lock file and features, are shared, so this takes seconds after the
/// first of the two tests (a minute or two cold).
#[test]
fn rendered_migration_compiles_to_the_same_migration() {
    let original = everything();
    let module = module_name(&original.name);
    let source = render_migration(&original, SystemTime::now()).unwrap();
    let index = render_index(std::slice::from_ref(&module));

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    let kiln = checkout().join("kiln");
    fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"kiln-writer-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dependencies]\nkiln = {{ path = {:?} }}\n",
            kiln.display().to_string()
        ),
    )
    .unwrap();
    if let Ok(lock) = fs::read_to_string(checkout().join("Cargo.lock")) {
        fs::write(project.join("Cargo.lock"), lock).unwrap();
    }
    fs::create_dir_all(project.join("src/migrations")).unwrap();
    fs::write(
        project.join("src/main.rs"),
        "mod migrations;\n\nfn main() {\n    print!(\"{:#?}\", migrations::migrations());\n}\n",
    )
    .unwrap();
    fs::write(project.join("src/migrations.rs"), &index).unwrap();
    let file = project.join(format!("src/migrations/{module}.rs"));
    fs::write(&file, &source).unwrap();

    // Generated files are committed and reviewed: they must be rustfmt's
    // layout already.
    match Command::new("rustfmt")
        .args(["--check", "--edition", "2024"])
        .arg(&file)
        .arg(project.join("src/migrations.rs"))
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "rustfmt would change the generated files:\n{}\n{source}",
            String::from_utf8_lossy(&output.stdout)
        ),
        Err(error) => {
            eprintln!("migrations: SKIPPED the rustfmt check: rustfmt does not run ({error})")
        }
    }

    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("kiln-new-test");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .args(["run", "--offline", "--quiet"]);
    let printed = run(&mut cargo, "cargo run of the generated migration");
    assert_eq!(printed, format!("{:#?}", vec![original]), "{source}");
}
