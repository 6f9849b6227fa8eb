//! Every test replays the detected operations onto `from`, app by app in
//! dependency order, checking after each operation that every foreign key
//! points to an existing column (which `apply` alone does not check), and
//! compares the result with `to`.

use std::collections::VecDeque;

use super::*;
use crate::db::migrations::Action;

fn question() -> ModelState {
    ModelState::new("polls_question")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(Field::new("question_text", Type::string(200)))
        .field(Field::new("pub_date", Type::TimestampTz))
        .primary_key(&["id"])
}

fn choice() -> ModelState {
    ModelState::new("polls_choice")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(
            Field::new("question_id", Type::BigInteger)
                .references(ForeignKey::to("polls_question", "id").on_delete(Action::Cascade)),
        )
        .field(Field::new("choice_text", Type::string(200)))
        .field(Field::new("votes", Type::Integer).default(0))
        .primary_key(&["id"])
        .index(Index::new("idx-polls_choice-question_id", &["question_id"]))
}

fn tag() -> ModelState {
    ModelState::new("polls_tag")
        .field(Field::new("id", Type::Integer).auto_increment())
        .field(Field::new("name", Type::string(50)).unique())
        .primary_key(&["id"])
}

/// The join table of a many-to-many between questions and tags.
fn question_tag() -> ModelState {
    ModelState::new("polls_question_tag")
        .field(
            Field::new("question_id", Type::BigInteger)
                .references(ForeignKey::to("polls_question", "id").on_delete(Action::Cascade)),
        )
        .field(
            Field::new("tag_id", Type::Integer)
                .references(ForeignKey::to("polls_tag", "id").on_delete(Action::Cascade)),
        )
        .primary_key(&["question_id", "tag_id"])
}

fn project(models: &[(&str, ModelState)]) -> ProjectState {
    let mut state = ProjectState::default();
    for (app, model) in models {
        state
            .models
            .insert(((*app).to_owned(), model.table.clone()), model.clone());
    }
    state
}

fn polls() -> ProjectState {
    project(&[("polls", question()), ("polls", choice())])
}

/// Column order and index names are not part of what must match: an added
/// column goes last, and a renamed model keeps its index names.
fn normal(state: &ProjectState) -> ProjectState {
    let mut state = state.clone();
    for model in state.models.values_mut() {
        model.fields.sort_by(|a, b| a.name.cmp(&b.name));
        for index in &mut model.indexes {
            index.name.clear();
        }
        model
            .indexes
            .sort_by(|a, b| (&a.columns, a.unique).cmp(&(&b.columns, b.unique)));
    }
    state
}

fn check_references(state: &ProjectState, after: &Operation) {
    for model in state.models.values() {
        for field in &model.fields {
            if let Some(key) = &field.foreign_key {
                let target = state.find_table(&key.table);
                assert!(
                    target.is_some_and(|(_, target)| target.get_field(&key.column).is_some()),
                    "after `{after}`, {}.{} references missing {}.{}",
                    model.table,
                    field.name,
                    key.table,
                    key.column
                );
            }
        }
    }
}

fn replay(from: &ProjectState, changes: &Changes) -> ProjectState {
    let mut state = from.clone();
    for app in changes.app_order() {
        for operation in &changes.apps[app].operations {
            operation
                .apply(app, &mut state)
                .unwrap_or_else(|error| panic!("`{operation}` in {app}: {error}"));
            check_references(&state, operation);
        }
    }
    state
}

/// Detects, replays and compares; returns the changes.
fn reaches(
    from: &ProjectState,
    to: &ProjectState,
    questioner: &mut dyn Questioner,
    hints: &RenameHints,
) -> Changes {
    let changes = detect(from, to, questioner, hints).unwrap();
    assert_eq!(normal(&replay(from, &changes)), normal(to), "{changes:#?}");
    changes
}

fn no_input(from: &ProjectState, to: &ProjectState) -> Changes {
    reaches(from, to, &mut NoInput, &RenameHints::new())
}

/// Each operation of `app` as `migrate` prints it.
fn lines(changes: &Changes, app: &str) -> Vec<String> {
    changes.apps[app]
        .operations
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Answers from a script and records the questions.
#[derive(Default)]
struct Scripted {
    answers: VecDeque<bool>,
    defaults: VecDeque<Option<DefaultValue>>,
    asked: Vec<String>,
}

impl Scripted {
    fn answering(answers: &[bool]) -> Self {
        Self {
            answers: answers.iter().copied().collect(),
            ..Self::default()
        }
    }
}

impl Questioner for Scripted {
    fn rename_model(&mut self, app: &str, old: &str, new: &str) -> bool {
        self.asked.push(format!("model {app}.{old}->{new}"));
        self.answers.pop_front().unwrap_or(false)
    }

    fn rename_field(&mut self, app: &str, table: &str, old: &str, new: &str) -> bool {
        self.asked.push(format!("field {app}.{table}.{old}->{new}"));
        self.answers.pop_front().unwrap_or(false)
    }

    fn one_off_default(&mut self, app: &str, table: &str, field: &Field) -> Option<DefaultValue> {
        self.asked
            .push(format!("default {app}.{table}.{}", field.name));
        self.defaults.pop_front().flatten()
    }
}

fn set(state: &mut ProjectState, app: &str, model: ModelState) {
    state
        .models
        .insert((app.to_owned(), model.table.clone()), model);
}

fn model_mut<'a>(state: &'a mut ProjectState, app: &str, table: &str) -> &'a mut ModelState {
    state
        .models
        .get_mut(&(app.to_owned(), table.to_owned()))
        .unwrap()
}

#[test]
fn same_models_give_no_changes_whatever_the_column_order_and_index_names() {
    let from = project(&[
        ("polls", question()),
        ("polls", choice()),
        ("polls", tag()),
        ("polls", question_tag()),
    ]);
    assert!(no_input(&from, &from).is_empty());

    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_choice");
    model.fields.reverse();
    model.indexes[0].name = "idx-renamed".to_owned();
    assert!(no_input(&from, &to).is_empty());
}

#[test]
fn initial_migration_creates_referenced_models_first() {
    let to = project(&[
        ("polls", question()),
        ("polls", choice()),
        ("polls", tag()),
        ("polls", question_tag()),
    ]);
    let changes = no_input(&ProjectState::default(), &to);
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Create model polls_question",
            "Create model polls_choice",
            "Create model polls_tag",
            "Create model polls_question_tag",
        ]
    );
    // The many-to-many join table keeps its composite key and both keys.
    assert_eq!(
        changes.apps["polls"].operations[3],
        Operation::CreateModel(question_tag())
    );
    assert!(changes.apps["polls"].dependencies.is_empty());
}

#[test]
fn adds_removes_and_alters_fields() {
    let from = polls();
    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_question");
    model.fields.retain(|field| field.name != "pub_date");
    model.fields[1] = Field::new("question_text", Type::Text);
    model
        .fields
        .push(Field::new("closes", Type::DateTime).null());
    model
        .fields
        .push(Field::new("featured", Type::Boolean).default(false));

    let changes = no_input(&from, &to);
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Remove field pub_date from polls_question",
            "Add field closes to polls_question",
            "Add field featured to polls_question",
            "Alter field question_text on polls_question",
        ]
    );
    // Different definitions are not rename candidates: nothing was asked.
    let mut scripted = Scripted::default();
    reaches(&from, &to, &mut scripted, &RenameHints::new());
    assert!(scripted.asked.is_empty(), "{:?}", scripted.asked);
}

#[test]
fn removes_an_index_before_its_column_and_adds_one_after_its_column() {
    let from = polls();
    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_choice");
    model.fields.retain(|field| field.name != "question_id");
    model.indexes.clear();
    model
        .fields
        .push(Field::new("slug", Type::string(50)).null());
    model
        .indexes
        .push(Index::new("idx-polls_choice-slug", &["slug"]));
    model
        .indexes
        .push(Index::new("uniq-text-slug", &["choice_text", "slug"]).unique());

    let changes = no_input(&from, &to);
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Remove index idx-polls_choice-question_id from polls_choice",
            "Remove field question_id from polls_choice",
            "Add field slug to polls_choice",
            "Create index idx-polls_choice-slug on polls_choice",
            "Create unique index uniq-text-slug on polls_choice",
        ]
    );
}

#[test]
fn an_index_that_becomes_unique_is_replaced() {
    let from = polls();
    let mut to = from.clone();
    model_mut(&mut to, "polls", "polls_choice").indexes[0].unique = true;
    let changes = no_input(&from, &to);
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Remove index idx-polls_choice-question_id from polls_choice",
            "Create unique index idx-polls_choice-question_id on polls_choice",
        ]
    );
}

#[test]
fn field_rename_is_asked_and_follows_the_answer() {
    let from = polls();
    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_choice");
    model.fields[2].name = "text".to_owned();

    let mut yes = Scripted::answering(&[true]);
    let changes = reaches(&from, &to, &mut yes, &RenameHints::new());
    assert_eq!(yes.asked, ["field polls.polls_choice.choice_text->text"]);
    assert_eq!(
        lines(&changes, "polls"),
        ["Rename field choice_text on polls_choice to text"]
    );

    // Answered no, the NOT NULL column is new to the existing rows.
    let mut no = Scripted {
        answers: VecDeque::from([false]),
        defaults: VecDeque::from([Some(DefaultValue::Str(String::new()))]),
        ..Scripted::default()
    };
    let changes = reaches(&from, &to, &mut no, &RenameHints::new());
    assert_eq!(
        no.asked,
        [
            "field polls.polls_choice.choice_text->text",
            "default polls.polls_choice.text"
        ]
    );
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Remove field choice_text from polls_choice",
            "Add field text to polls_choice",
            "Alter field text on polls_choice",
        ]
    );
}

#[test]
fn renaming_an_indexed_key_keeps_its_index() {
    let from = polls();
    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_choice");
    model.fields[1].name = "poll_id".to_owned();
    model.indexes[0] = Index::new("idx-polls_choice-poll_id", &["poll_id"]);
    let mut yes = Scripted::answering(&[true]);
    let changes = reaches(&from, &to, &mut yes, &RenameHints::new());
    assert_eq!(
        lines(&changes, "polls"),
        ["Rename field question_id on polls_choice to poll_id"]
    );
}

#[test]
fn model_rename_is_asked_and_keys_to_it_follow() {
    let from = polls();
    let mut to = ProjectState::default();
    let mut poll = question();
    poll.table = "polls_poll".to_owned();
    set(&mut to, "polls", poll);
    let mut renamed_choice = choice();
    renamed_choice.fields[1].foreign_key =
        Some(ForeignKey::to("polls_poll", "id").on_delete(Action::Cascade));
    set(&mut to, "polls", renamed_choice);

    let mut yes = Scripted::answering(&[true]);
    let changes = reaches(&from, &to, &mut yes, &RenameHints::new());
    assert_eq!(yes.asked, ["model polls.polls_question->polls_poll"]);
    assert_eq!(
        lines(&changes, "polls"),
        ["Rename model polls_question to polls_poll"]
    );

    // Answered no: the new table exists before the key moves to it, and the
    // old table goes once nothing points to it.
    let changes = reaches(&from, &to, &mut Scripted::default(), &RenameHints::new());
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Create model polls_poll",
            "Alter field question_id on polls_choice",
            "Delete model polls_question",
        ]
    );
}

#[test]
fn models_with_different_fields_are_not_rename_candidates() {
    let from = project(&[("polls", tag())]);
    let to = project(&[("polls", question())]);
    let mut scripted = Scripted::default();
    let changes = reaches(&from, &to, &mut scripted, &RenameHints::new());
    assert!(scripted.asked.is_empty());
    assert_eq!(
        lines(&changes, "polls"),
        ["Create model polls_question", "Delete model polls_tag"]
    );
}

#[test]
fn declared_renames_apply_without_asking_even_with_other_changes() {
    let from = polls();
    let mut to = from.clone();
    let model = model_mut(&mut to, "polls", "polls_question");
    // Renamed and made longer: no candidate, yet declared.
    model.fields[1] = Field::new("text", Type::string(300));
    let info = ModelInfo {
        state: model.clone(),
        renamed_from: BTreeMap::from([("text".to_owned(), "question_text".to_owned())]),
    };
    let hints = RenameHints::new().renamed_from("polls", &info);
    let mut scripted = Scripted::default();
    let changes = reaches(&from, &to, &mut scripted, &hints);
    assert!(scripted.asked.is_empty());
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Rename field question_text on polls_question to text",
            "Alter field text on polls_question",
        ]
    );

    // Once migrated, the declaration stays on the entity and is ignored.
    assert!(detect(&to, &to, &mut NoInput, &hints).unwrap().is_empty());
}

#[test]
fn command_line_renames_apply_and_must_match() {
    let from = project(&[("polls", tag())]);
    let mut label = tag();
    label.table = "polls_label".to_owned();
    label.fields[1].name = "title".to_owned();
    let to = project(&[("polls", label)]);
    let hints = RenameHints::new()
        .parse("polls.polls_tag=polls_label")
        .unwrap()
        .parse("polls.polls_label.name=title")
        .unwrap();
    let changes = reaches(&from, &to, &mut NoInput, &hints);
    assert_eq!(
        lines(&changes, "polls"),
        [
            "Rename model polls_tag to polls_label",
            "Rename field name on polls_label to title",
        ]
    );

    let stale = RenameHints::new()
        .parse("polls.polls_tag.nmae=name")
        .unwrap();
    let error = detect(&from, &from, &mut NoInput, &stale).unwrap_err();
    assert_eq!(
        error,
        DetectError::UnusedHint {
            hint: "polls.polls_tag.nmae=name".to_owned()
        }
    );
    assert!(error.to_string().contains("fix:"), "{error}");
}

#[test]
fn rename_hints_parse_both_forms_and_refuse_others() {
    let hints = RenameHints::new()
        .parse("polls.polls_choice.text=choice_text")
        .unwrap()
        .parse("polls.polls_q=polls_question")
        .unwrap();
    assert_eq!(
        hints,
        RenameHints::new()
            .field("polls", "polls_choice", "text", "choice_text")
            .model("polls", "polls_q", "polls_question")
    );
    for bad in [
        "polls",
        "polls.a",
        "a.b.c.d=e",
        "polls.a=",
        "=b",
        "polls.a b=c",
    ] {
        let error = RenameHints::new().parse(bad).unwrap_err();
        assert!(
            matches!(&error, DetectError::BadHint { hint } if hint == bad),
            "{bad}: {error}"
        );
    }
}

#[test]
fn not_null_field_without_default_needs_a_one_off_default() {
    let from = polls();
    let mut to = from.clone();
    model_mut(&mut to, "polls", "polls_choice")
        .fields
        .push(Field::new("weight", Type::Integer));

    let error = detect(&from, &to, &mut NoInput, &RenameHints::new()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("`polls_choice.weight`")
            && message.contains("app `polls`")
            && message.contains("Option<")
            && message.contains("default_value")
            && message.contains("one-off default"),
        "{message}"
    );

    let mut scripted = Scripted {
        defaults: VecDeque::from([Some(DefaultValue::Int(1))]),
        ..Scripted::default()
    };
    let changes = reaches(&from, &to, &mut scripted, &RenameHints::new());
    assert_eq!(scripted.asked, ["default polls.polls_choice.weight"]);
    let operations = &changes.apps["polls"].operations;
    assert_eq!(
        operations[0],
        Operation::AddField {
            table: "polls_choice".to_owned(),
            field: Field::new("weight", Type::Integer).default(1),
        }
    );
    assert_eq!(
        operations[1],
        Operation::AlterField {
            table: "polls_choice".to_owned(),
            field: Field::new("weight", Type::Integer),
        }
    );
}

#[test]
fn new_models_need_no_one_off_default() {
    let from = project(&[("polls", question())]);
    let to = polls();
    let changes = no_input(&from, &to);
    assert_eq!(lines(&changes, "polls"), ["Create model polls_choice"]);
}

#[test]
fn key_to_another_app_makes_a_dependency() {
    let from = polls();
    let mut to = from.clone();
    let vote = ModelState::new("accounts_vote")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(
            Field::new("choice_id", Type::BigInteger)
                .references(ForeignKey::to("polls_choice", "id")),
        )
        .primary_key(&["id"]);
    set(&mut to, "accounts", vote);
    // A new polls model referenced by a new accounts field.
    set(&mut to, "polls", tag());
    let account = ModelState::new("accounts_user")
        .field(Field::new("id", Type::Integer).auto_increment())
        .field(
            Field::new("favourite_tag_id", Type::Integer)
                .null()
                .references(ForeignKey::to("polls_tag", "id")),
        )
        .primary_key(&["id"]);
    set(&mut to, "accounts", account);

    let changes = no_input(&from, &to);
    assert_eq!(
        changes.apps["accounts"].dependencies,
        BTreeSet::from(["polls".to_owned()])
    );
    assert!(changes.apps["polls"].dependencies.is_empty());
    assert_eq!(changes.app_order(), ["polls", "accounts"]);
}

#[test]
fn deleting_a_table_waits_for_other_apps_to_drop_their_keys() {
    let vote = ModelState::new("accounts_vote")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(
            Field::new("choice_id", Type::BigInteger)
                .references(ForeignKey::to("polls_choice", "id")),
        )
        .primary_key(&["id"]);
    let from = project(&[
        ("polls", question()),
        ("polls", choice()),
        ("accounts", vote.clone()),
    ]);
    let mut slim_vote = vote;
    slim_vote.fields.truncate(1);
    let to = project(&[("polls", question()), ("accounts", slim_vote)]);

    let changes = no_input(&from, &to);
    assert_eq!(
        changes.apps["polls"].dependencies,
        BTreeSet::from(["accounts".to_owned()])
    );
    assert_eq!(changes.app_order(), ["accounts", "polls"]);
    assert_eq!(lines(&changes, "polls"), ["Delete model polls_choice"]);
}

#[test]
fn apps_that_need_each_other_first_are_refused() {
    // accounts drops its key to polls_choice, which polls deletes, and adds
    // a key to polls' new tag table.
    let vote = ModelState::new("accounts_vote")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(
            Field::new("choice_id", Type::BigInteger)
                .references(ForeignKey::to("polls_choice", "id")),
        )
        .primary_key(&["id"]);
    let from = project(&[
        ("polls", question()),
        ("polls", choice()),
        ("accounts", vote),
    ]);
    let new_vote = ModelState::new("accounts_vote")
        .field(Field::new("id", Type::BigInteger).auto_increment())
        .field(
            Field::new("tag_id", Type::Integer)
                .null()
                .references(ForeignKey::to("polls_tag", "id")),
        )
        .primary_key(&["id"]);
    let to = project(&[
        ("polls", question()),
        ("polls", tag()),
        ("accounts", new_vote),
    ]);

    let error = detect(&from, &to, &mut NoInput, &RenameHints::new()).unwrap_err();
    assert_eq!(
        error,
        DetectError::CircularDependency {
            apps: vec!["accounts".to_owned(), "polls".to_owned()]
        }
    );
    assert!(error.to_string().contains("two steps"), "{error}");
}

#[test]
fn deletes_referencing_models_before_the_models_they_reference() {
    let from = project(&[
        ("polls", question()),
        ("polls", choice()),
        ("polls", tag()),
        ("polls", question_tag()),
    ]);
    let changes = no_input(&from, &ProjectState::default());
    let operations = lines(&changes, "polls");
    let position = |line: &str| operations.iter().position(|op| op == line).unwrap();
    assert!(position("Delete model polls_choice") < position("Delete model polls_question"));
    assert!(position("Delete model polls_question_tag") < position("Delete model polls_question"));
    assert!(position("Delete model polls_question_tag") < position("Delete model polls_tag"));
    assert_eq!(operations.len(), 4);
}

/// Two models that reference each other, as `author.best_book_id` and
/// `book.author_id`.
fn author_and_book() -> ProjectState {
    let author = ModelState::new("library_author")
        .field(Field::new("id", Type::Integer).auto_increment())
        .field(
            Field::new("best_book_id", Type::Integer)
                .null()
                .references(ForeignKey::to("library_book", "id").on_delete(Action::SetNull)),
        )
        .primary_key(&["id"])
        .index(Index::new(
            "idx-library_author-best_book_id",
            &["best_book_id"],
        ));
    let book = ModelState::new("library_book")
        .field(Field::new("id", Type::Integer).auto_increment())
        .field(
            Field::new("author_id", Type::Integer)
                .references(ForeignKey::to("library_author", "id")),
        )
        .field(
            Field::new("sequel_of", Type::Integer)
                .null()
                .references(ForeignKey::to("library_book", "id")),
        )
        .primary_key(&["id"]);
    project(&[("library", author), ("library", book)])
}

#[test]
fn models_that_reference_each_other_are_created_then_linked() {
    let to = author_and_book();
    let changes = no_input(&ProjectState::default(), &to);
    assert_eq!(
        lines(&changes, "library"),
        [
            "Create model library_author",
            "Create model library_book",
            "Add field best_book_id to library_author",
            "Create index idx-library_author-best_book_id on library_author",
        ]
    );
    // Deleted by first dropping the keys to one of them.
    let changes = no_input(&to, &ProjectState::default());
    assert_eq!(
        lines(&changes, "library"),
        [
            "Remove field author_id from library_book",
            "Delete model library_author",
            "Delete model library_book",
        ]
    );
}

#[test]
fn self_referencing_model_is_renamed_as_one() {
    let from = author_and_book();
    let mut to = from.clone();
    let mut book = to
        .models
        .remove(&("library".to_owned(), "library_book".to_owned()))
        .unwrap();
    book.table = "library_novel".to_owned();
    book.fields[2].foreign_key = Some(ForeignKey::to("library_novel", "id"));
    set(&mut to, "library", book);
    model_mut(&mut to, "library", "library_author").fields[1].foreign_key =
        Some(ForeignKey::to("library_novel", "id").on_delete(Action::SetNull));

    let mut yes = Scripted::answering(&[true]);
    let changes = reaches(&from, &to, &mut yes, &RenameHints::new());
    assert_eq!(
        lines(&changes, "library"),
        ["Rename model library_book to library_novel"]
    );
}

#[test]
fn primary_key_changes_are_refused_with_the_fix() {
    let from = polls();
    let mut to = from.clone();
    model_mut(&mut to, "polls", "polls_choice").primary_key = vec!["choice_text".to_owned()];
    let error = detect(&from, &to, &mut NoInput, &RenameHints::new()).unwrap_err();
    assert!(
        matches!(&error, DetectError::PrimaryKeyChanged { table, .. } if table == "polls_choice"),
        "{error}"
    );
    assert!(error.to_string().contains("fix:"), "{error}");
}

#[test]
fn models_that_cannot_be_reached_are_refused() {
    let to = project(&[("polls", choice())]);
    let error = detect(
        &ProjectState::default(),
        &to,
        &mut NoInput,
        &RenameHints::new(),
    )
    .unwrap_err();
    assert_eq!(
        error,
        DetectError::UnknownReference {
            app: "polls".to_owned(),
            table: "polls_choice".to_owned(),
            field: "question_id".to_owned(),
            target: "polls_question.id".to_owned(),
        }
    );

    let to = project(&[("polls", tag()), ("blog", tag())]);
    let error = detect(
        &ProjectState::default(),
        &to,
        &mut NoInput,
        &RenameHints::new(),
    )
    .unwrap_err();
    assert!(
        matches!(error, DetectError::DuplicateTable { .. }),
        "{error}"
    );

    let from = project(&[("polls", tag())]);
    let to = project(&[("blog", tag())]);
    let error = detect(&from, &to, &mut NoInput, &RenameHints::new()).unwrap_err();
    assert_eq!(
        error,
        DetectError::TableChangedApp {
            table: "polls_tag".to_owned(),
            from: "polls".to_owned(),
            to: "blog".to_owned(),
        }
    );
}

#[test]
fn console_questioner_asks_and_reads_answers() {
    let input = b"maybe\ny\n\nn\n".as_slice();
    let mut output = Vec::new();
    let mut console = ConsoleQuestioner::new(input, &mut output);
    assert!(console.rename_field("polls", "polls_choice", "text", "choice_text"));
    assert!(!console.rename_model("polls", "polls_q", "polls_question"));
    assert!(!console.rename_model("polls", "polls_q", "polls_question"));
    // The end of the input is a no.
    assert!(!console.rename_model("polls", "polls_q", "polls_question"));
    let output = String::from_utf8(output).unwrap();
    assert!(
        output.contains("Was the field `polls_choice.text` renamed to `polls_choice.choice_text`")
            && output.contains("Please answer y or n.")
            && output
                .contains("Was the model `polls_q` of app `polls` renamed to `polls_question`?"),
        "{output}"
    );
}

#[test]
fn console_questioner_reads_one_off_defaults_by_type() {
    let cases: [(Type, &str, Option<DefaultValue>); 8] = [
        (Type::Integer, "abc\n42\n", Some(DefaultValue::Int(42))),
        (Type::Double, "2.5\n", Some(DefaultValue::Float(2.5))),
        (Type::Boolean, "True\n", Some(DefaultValue::Bool(true))),
        (
            Type::string(20),
            "\"hello\"\n",
            Some(DefaultValue::Str("hello".to_owned())),
        ),
        (
            Type::TimestampTz,
            "now\n",
            Some(DefaultValue::Expr("CURRENT_TIMESTAMP".to_owned())),
        ),
        (
            Type::Enum {
                name: "mood".to_owned(),
                variants: vec!["happy".to_owned(), "sad".to_owned()],
            },
            "angry\nsad\n",
            Some(DefaultValue::Str("sad".to_owned())),
        ),
        (
            Type::Uuid,
            "sql:gen_random_uuid()\n",
            Some(DefaultValue::Expr("gen_random_uuid()".to_owned())),
        ),
        (Type::Integer, "\n", None),
    ];
    for (ty, input, expected) in cases {
        let mut output = Vec::new();
        let field = Field::new("weight", ty.clone());
        let answer = ConsoleQuestioner::new(input.as_bytes(), &mut output).one_off_default(
            "polls",
            "polls_choice",
            &field,
        );
        assert_eq!(answer, expected, "{ty:?} {input:?}");
        let output = String::from_utf8(output).unwrap();
        assert!(
            output.contains("`polls_choice.weight` of app `polls` is NOT NULL"),
            "{output}"
        );
        if input.lines().count() > 1 {
            assert!(output.contains("try again"), "{output}");
        }
    }
    // The end of the input stops.
    let mut console = ConsoleQuestioner::new(b"".as_slice(), Vec::new());
    assert_eq!(
        console.one_off_default("polls", "t", &Field::new("f", Type::Integer)),
        None
    );
}
