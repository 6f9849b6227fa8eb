//! Forms through `TestClient`: `#[derive(Form)]`, the `Form` extractor, the
//! rendering of bound forms, tampered and malformed submissions, and
//! `ModelForm` saving rows.

#![expect(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]

#[path = "support/backends.rs"]
pub mod backends;
#[path = "support/multipart.rs"]
pub mod multipart;

use kiln::db::prelude::*;
use kiln::db::sea_orm::Schema;
use kiln::db::{DatabaseConnection, Db, FieldOptions, ModelOptions};
use kiln::forms::{
    BoundForm, Choices, Email, FormInput, FormSet, ModelForm, SaveError, Slug, Url, ValidationError,
};
use kiln::prelude::*;
use kiln::test::TestClient;
use kiln::uploads::UploadedFile;
use multipart::multipart;

#[derive(Debug, Clone, Copy, PartialEq, Choices)]
enum Topic {
    General,
    #[choice(value = "bug", label = "Bug report")]
    BugReport,
}

fn no_spam(message: &str) -> Result<(), ValidationError> {
    if message.contains("viagra") {
        return Err(ValidationError::new("No spam, please."));
    }
    Ok(())
}

#[derive(Debug, Form)]
#[form(clean = Signup::passwords_match)]
struct Signup {
    #[form(
        label = "Your name",
        max_length = 10,
        min_length = 2,
        help_text = "As on your badge."
    )]
    name: String,
    email: Email,
    #[form(min = 18, max = 120)]
    age: i32,
    #[form(widget = "textarea", validate = no_spam)]
    message: Option<String>,
    topic: Topic,
    newsletter: bool,
    #[form(regex = "[A-Z]{3}")]
    code: Option<String>,
    #[form(widget = "password")]
    password: String,
    #[form(widget = "password")]
    password_again: String,
    homepage: Option<Url>,
    handle: Option<Slug>,
    born: Option<kiln::db::sea_orm::prelude::Date>,
    #[form(widget = "hidden", initial = "web")]
    source: String,
}

impl Signup {
    fn passwords_match(&self) -> Result<(), ValidationError> {
        if self.password != self.password_again {
            return Err(ValidationError::new("The two passwords differ."));
        }
        Ok(())
    }
}

async fn signup_page() -> Html<String> {
    Html(BoundForm::<Signup>::new().to_string())
}

async fn signup(form: Form<Signup>) -> Response {
    match form.into_result() {
        Ok(signup) => format!(
            "{}|{}|{}|{:?}|{}|{}|{:?}",
            signup.name,
            signup.email,
            signup.age,
            signup.topic,
            signup.newsletter,
            signup.source,
            signup.message
        )
        .into_response(),
        Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response(),
    }
}

#[derive(Debug, Form)]
struct Upload {
    title: String,
    document: UploadedFile,
    thumbnail: Option<UploadedFile>,
}

async fn upload(form: Form<Upload>) -> Response {
    match form.into_result() {
        Ok(upload) => format!(
            "{}|{}|{}|{}",
            upload.title,
            upload.document.file_name(),
            upload.document.size(),
            upload.thumbnail.is_some()
        )
        .into_response(),
        Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response(),
    }
}

#[derive(Debug, Form)]
struct Search {
    #[form(min_length = 2)]
    q: String,
    page: Option<u32>,
}

async fn search(form: Form<Search>) -> Response {
    match form.into_result() {
        Ok(search) => format!("{} p{:?}", search.q, search.page).into_response(),
        Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response(),
    }
}

fn client_with(extra: &str) -> TestClient {
    let project = Project::new("forms").mount(
        "/",
        App::new("signup")
            .route("/signup/", "signup", get(signup_page).post(signup))
            .route("/upload/", "upload", post(upload))
            .route("/search/", "search", get(search)),
    );
    TestClient::with_settings(
        project,
        Settings::from_toml(&format!("debug = true\n{extra}")).unwrap(),
    )
}

fn client() -> TestClient {
    client_with("")
}

const VALID: [(&str, &str); 9] = [
    ("name", "Ada"),
    ("email", "ada@example.com"),
    ("age", "36"),
    ("message", "Hello"),
    ("topic", "bug"),
    ("newsletter", "on"),
    ("password", "s3cret"),
    ("password_again", "s3cret"),
    ("source", "web"),
];

fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut fields: Vec<_> = VALID
        .iter()
        .copied()
        .filter(|(name, _)| !changes.iter().any(|(changed, _)| changed == name))
        .collect();
    fields.extend(
        changes
            .iter()
            .copied()
            .filter(|(_, value)| *value != "<absent>"),
    );
    fields
}

async fn post_signup(client: &TestClient, fields: &[(&str, &str)]) -> kiln::test::TestResponse {
    client.post("/signup/").form(&fields).send().await
}

#[tokio::test]
async fn valid_submission_gives_the_typed_value() {
    let response = post_signup(&client(), &VALID).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.text(),
        "Ada|ada@example.com|36|BugReport|true|web|Some(\"Hello\")"
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_unticked_checkboxes_are_false() {
    let fields = with(&[
        ("newsletter", "<absent>"),
        ("is_admin", "true"),
        ("message", ""),
    ]);
    let response = post_signup(&client(), &fields).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.text(),
        "Ada|ada@example.com|36|BugReport|false|web|None"
    );
}

/// Posts `fields` and returns the re-rendered page, checking it is a 422.
async fn rejected(fields: &[(&str, &str)]) -> String {
    let response = post_signup(&client(), fields).await;
    assert_eq!(response.status(), 422, "{}", response.text());
    response.text()
}

#[tokio::test]
async fn missing_required_fields_are_errors_on_those_fields() {
    let page = rejected(&with(&[("name", "<absent>"), ("email", "   ")])).await;
    assert!(
        page.contains(
            "<ul class=\"errorlist\" id=\"id_name_error\"><li>This field is required.</li></ul>"
        ),
        "{page}"
    );
    assert!(
        page.contains("id=\"id_email_error\"><li>This field is required.</li>"),
        "{page}"
    );
    assert!(
        page.contains("aria-invalid=\"true\" aria-describedby=\"id_name_helptext id_name_error\""),
        "{page}"
    );
    // The other fields keep what was typed; passwords are never sent back.
    assert!(page.contains("value=\"36\""), "{page}");
    assert!(!page.contains("s3cret"), "{page}");
}

#[tokio::test]
async fn wrong_types_and_out_of_range_values_are_field_errors() {
    let page = rejected(&with(&[("age", "abc")])).await;
    assert!(
        page.contains("id=\"id_age_error\"><li>Enter a whole number.</li>"),
        "{page}"
    );
    assert!(
        page.contains("value=\"abc\""),
        "the submitted text is shown again: {page}"
    );
    let page = rejected(&with(&[("age", "12")])).await;
    assert!(
        page.contains("Ensure this value is greater than or equal to 18."),
        "{page}"
    );
    let page = rejected(&with(&[("age", "99999999999999999999")])).await;
    assert!(page.contains("Enter a whole number."), "{page}");
    let page = rejected(&with(&[("born", "2026-02-30")])).await;
    assert!(page.contains("Enter a valid date."), "{page}");
}

#[tokio::test]
async fn length_limits_use_djangos_messages() {
    let page = rejected(&with(&[("name", "Ada Lovelace")])).await;
    assert!(
        page.contains("Ensure this value has at most 10 characters (it has 12)."),
        "{page}"
    );
    let page = rejected(&with(&[("name", "A")])).await;
    assert!(
        page.contains("Ensure this value has at least 2 characters (it has 1)."),
        "{page}"
    );
}

#[tokio::test]
async fn typed_text_fields_validate_their_values() {
    let page = rejected(&with(&[
        ("email", "not-an-address"),
        ("homepage", "javascript:alert(1)"),
        ("handle", "no spaces"),
        ("code", "abc"),
        ("topic", "praise"),
    ]))
    .await;
    assert!(page.contains("Enter a valid email address."), "{page}");
    assert!(page.contains("Enter a valid URL."), "{page}");
    assert!(page.contains("Enter a valid “slug”"), "{page}");
    assert!(
        page.contains("id=\"id_code_error\"><li>Enter a valid value.</li>"),
        "{page}"
    );
    assert!(
        page.contains("Select a valid choice. praise is not one of the available choices."),
        "{page}"
    );
}

#[tokio::test]
async fn field_validators_and_clean_add_errors() {
    let page = rejected(&with(&[("message", "buy viagra")])).await;
    assert!(
        page.contains("id=\"id_message_error\"><li>No spam, please.</li>"),
        "{page}"
    );
    let page = rejected(&with(&[("password_again", "other")])).await;
    assert!(
        page.contains("<ul class=\"errorlist nonfield\"><li>The two passwords differ.</li></ul>"),
        "{page}"
    );
}

#[tokio::test]
async fn hostile_values_are_escaped_when_shown_again() {
    let page = rejected(&with(&[
        ("name", "<script>alert(1)</script>"),
        ("message", "</textarea><script>x</script>"),
        ("topic", "<b>"),
    ]))
    .await;
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{page}"
    );
    assert!(
        page.contains("&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>"),
        "{page}"
    );
    assert!(
        page.contains("Select a valid choice. &lt;b&gt; is not"),
        "{page}"
    );
}

#[tokio::test]
async fn unbound_form_renders_accessible_html() {
    let page = client().get("/signup/").send().await.text();
    for expected in [
        "<label for=\"id_name\">Your name:</label>",
        "<div class=\"helptext\" id=\"id_name_helptext\">As on your badge.</div>",
        "<input type=\"text\" name=\"name\" id=\"id_name\" required maxlength=\"10\" minlength=\"2\" aria-describedby=\"id_name_helptext\">",
        "<input type=\"email\" name=\"email\" id=\"id_email\" required>",
        "<input type=\"number\" name=\"age\" id=\"id_age\" required min=\"18\" max=\"120\">",
        "<textarea cols=\"40\" rows=\"10\" name=\"message\" id=\"id_message\">",
        "<select name=\"topic\" id=\"id_topic\" required><option value=\"\">---------</option><option value=\"general\">General</option><option value=\"bug\">Bug report</option></select>",
        "<input type=\"checkbox\" name=\"newsletter\" id=\"id_newsletter\">",
        "<input type=\"password\" name=\"password\" id=\"id_password\" required>",
        "<input type=\"url\" name=\"homepage\" id=\"id_homepage\">",
        "<input type=\"date\" name=\"born\" id=\"id_born\">",
        "<input type=\"hidden\" name=\"source\" id=\"id_source\" value=\"web\">",
    ] {
        assert!(page.contains(expected), "missing {expected}\nin {page}");
    }
    assert!(!page.contains("errorlist"), "{page}");
}

#[test]
fn fields_can_be_rendered_one_by_one_and_forms_show_initial_values() {
    let form = BoundForm::<Signup>::new();
    let field = form.field("age").unwrap();
    assert_eq!(field.label_tag(), "<label for=\"id_age\">Age:</label>");
    assert_eq!(field.errors_html(), "");
    assert!(field.widget().starts_with("<input type=\"number\""));
    assert_eq!(form.fields().count(), 13);
    assert!(!form.is_bound());

    let bound = BoundForm::<Signup>::bind(FormInput::from_pairs(with(&[("topic", "general")])));
    assert!(bound.is_valid());
    let (value, form) = bound.into_parts();
    let signup = value.unwrap();
    assert_eq!(signup.topic, Topic::General);
    assert!(form.is_valid());

    let edit = BoundForm::<Signup>::with_initial(&signup);
    let select = edit.field("topic").unwrap().widget();
    assert!(
        select.contains("<option value=\"general\" selected>General</option>"),
        "{select}"
    );
    assert!(
        !select.contains("---------"),
        "a required select with a value has no empty option"
    );
    assert!(
        edit.field("newsletter")
            .unwrap()
            .widget()
            .contains(" checked")
    );
    let context = serde_json::to_value(&edit).unwrap();
    assert_eq!(
        context["fields"][0]["label_tag"],
        "<label for=\"id_name\">Your name:</label>"
    );
    assert_eq!(context["html"], edit.to_string());
    assert_eq!(Topic::BugReport.label(), "Bug report");
}

#[tokio::test]
async fn invalid_utf8_and_malformed_bodies_are_bad_requests() {
    let client = client();
    for body in [&b"name=%FF%FE&age=1"[..], &b"name=\xff\xfe"[..]] {
        let response = client
            .post("/signup/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await;
        assert_eq!(response.status(), 400, "{}", response.text());
    }
    let response = client
        .post("/upload/")
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nunterminated")
        .send()
        .await;
    assert_eq!(response.status(), 400, "{}", response.text());
    let response = client
        .post("/signup/")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn a_get_form_reads_the_query_string() {
    let client = client();
    let response = client
        .get("/search/?q=kiln+forms&page=2&utm=x")
        .send()
        .await;
    assert_eq!(
        (response.status().as_u16(), response.text()),
        (200, "kiln forms pSome(2)".to_owned())
    );
    let response = client.get("/search/?q=k&page=-1").send().await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(page.contains("at least 2 characters (it has 1)"), "{page}");
    assert!(
        page.contains("id=\"id_page_error\"><li>Enter a whole number.</li>"),
        "{page}"
    );
    assert_eq!(client.get("/search/?q=%FF").send().await.status(), 400);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let client = client_with("request_body_limit = \"1 KiB\"");
    let long = "x".repeat(4096);
    let response = client
        .post("/signup/")
        .form(&[("name", long.as_str())])
        .send()
        .await;
    assert_eq!(response.status(), 413, "{}", response.text());
}

async fn post_upload(client: &TestClient, body: Vec<u8>) -> kiln::test::TestResponse {
    multipart::post(client, "/upload/", body).await
}

#[tokio::test]
async fn multipart_forms_carry_files_into_file_fields() {
    let client = client();
    let response = post_upload(
        &client,
        multipart(
            &[("title", "Notes")],
            &[("document", "../notes.txt", b"hello")],
        ),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.text(), "Notes|notes.txt|5|false");

    let response = post_upload(&client, multipart(&[("title", "Notes")], &[])).await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(
        page.contains("id=\"id_document_error\"><li>This field is required.</li>"),
        "{page}"
    );
    assert!(page.contains("<input type=\"file\" name=\"document\" id=\"id_document\" required aria-invalid=\"true\""), "{page}");
    assert!(BoundForm::<Upload>::new().is_multipart());

    // A URL-encoded post cannot carry the file: the field is missing.
    let response = client
        .post("/upload/")
        .form(&[("title", "x"), ("document", "x.txt")])
        .send()
        .await;
    assert_eq!(response.status(), 422);
}

// ModelForm

pub mod tag {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "forms_tag")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique, column_type = "String(StringLen::N(20))")]
        pub slug: String,
        pub description: Option<String>,
        pub weight: i32,
        pub kind: String,
        pub public: bool,
        pub created: DateTimeUtc,
        #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
        pub price: Option<Decimal>,
        pub added_on: Option<Date>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod note {
    use kiln::db::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "forms_note")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tag_id: i64,
        pub text: String,
        #[sea_orm(belongs_to, from = "tag_id", to = "id")]
        pub tag: BelongsTo<super::tag::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

fn tag_options() -> ModelOptions {
    ModelOptions::new()
        .verbose_name("tag")
        .field(
            "slug",
            FieldOptions::new()
                .verbose_name("short name")
                .help_text("Lowercase, no spaces."),
        )
        .field(
            "kind",
            FieldOptions::new().choices(&[("topic", "Topic"), ("place", "Place")]),
        )
        .field("created", FieldOptions::new().editable(false))
}

async fn tag_table(db: &DatabaseConnection) {
    let schema = Schema::new(db.get_database_backend());
    db.execute(&schema.create_table_from_entity(tag::Entity))
        .await
        .unwrap();
}

fn tag_input(slug: &str, weight: &str) -> FormInput {
    FormInput::from_pairs([
        ("slug", slug),
        ("description", ""),
        ("weight", weight),
        ("kind", "topic"),
        ("public", "on"),
        ("price", "9.99"),
        ("added_on", "2026-01-02"),
        ("id", "999"),
        ("created", "2000-01-01T00:00"),
    ])
}

fn now() -> DateTimeUtc {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

#[test]
fn model_forms_take_fields_from_columns_and_options() {
    let form = ModelForm::<tag::Entity>::with_options(&tag_options());
    let names: Vec<&str> = form.fields().map(|field| field.name()).collect();
    assert_eq!(
        names,
        [
            "slug",
            "description",
            "weight",
            "kind",
            "public",
            "price",
            "added_on"
        ]
    );
    let slug = form.field("slug").unwrap();
    assert_eq!(slug.label(), "Short name");
    let html = slug.to_string();
    assert!(html.contains("maxlength=\"20\""), "{html}");
    assert!(html.contains(" required"), "{html}");
    assert!(html.contains("Lowercase, no spaces."), "{html}");
    assert!(
        !form
            .field("description")
            .unwrap()
            .widget()
            .contains("required")
    );
    assert!(
        form.field("kind")
            .unwrap()
            .widget()
            .contains("<option value=\"place\">Place</option>")
    );
    assert!(
        form.field("added_on")
            .unwrap()
            .widget()
            .contains("type=\"date\"")
    );

    let only = ModelForm::<tag::Entity>::with_options(&tag_options()).only(&["weight", "slug"]);
    let names: Vec<&str> = only.fields().map(|field| field.name()).collect();
    assert_eq!(names, ["weight", "slug"]);
}

#[tokio::test]
async fn model_form_creates_and_updates_rows_on_every_backend() {
    for test in backends::all().await {
        let db = &test.db;
        tag_table(db).await;
        let mut form =
            ModelForm::<tag::Entity>::with_options(&tag_options()).bind(tag_input("rust", "3"));
        assert!(form.is_valid(), "{:?}", form.errors());
        let created = form
            .save_with(db, |row| row.created = Set(now()))
            .await
            .unwrap();
        assert_eq!(
            (created.slug.as_str(), created.weight, created.public),
            ("rust", 3, true)
        );
        assert_eq!(created.description, None);
        assert_eq!(created.price.unwrap().to_string(), "9.99");
        assert_ne!(created.id, 999, "the primary key is not a form field");
        assert_eq!(
            created.created,
            now(),
            "non-editable columns are not form fields"
        );

        let edit =
            ModelForm::<tag::Entity>::with_options(&tag_options()).for_instance(created.clone());
        assert!(
            edit.field("slug")
                .unwrap()
                .widget()
                .contains("value=\"rust\"")
        );
        let mut edit = edit.bind(tag_input("rust-lang", "4"));
        let updated = edit.save(db).await.unwrap();
        assert_eq!(
            (updated.id, updated.slug.as_str(), updated.weight),
            (created.id, "rust-lang", 4)
        );
        assert_eq!(
            tag::Entity::find().count(db).await.unwrap(),
            1,
            "{}",
            test.label()
        );

        // A unique violation is an error of the form, on its field.
        let mut duplicate = ModelForm::<tag::Entity>::with_options(&tag_options())
            .bind(tag_input("rust-lang", "1"));
        let result = duplicate
            .save_with(db, |row| row.created = Set(now()))
            .await;
        assert!(
            matches!(result, Err(SaveError::Invalid)),
            "{}: {result:?}",
            test.label()
        );
        assert_eq!(
            duplicate.errors().field("slug"),
            ["Tag with this Short name already exists."],
            "{}",
            test.label()
        );
        test.finish().await;
    }
}

#[tokio::test]
async fn a_foreign_key_to_a_missing_row_is_a_form_error_on_every_backend() {
    for test in backends::all().await {
        let db = &test.db;
        tag_table(db).await;
        let schema = Schema::new(db.get_database_backend());
        db.execute(&schema.create_table_from_entity(note::Entity))
            .await
            .unwrap();
        let input = FormInput::from_pairs([("tag_id", "4242"), ("text", "orphan")]);
        let mut form = ModelForm::<note::Entity>::new().bind(input);
        assert!(form.is_valid(), "{:?}", form.errors());
        let result = form.save(db).await;
        assert!(
            matches!(result, Err(SaveError::Invalid)),
            "{}: {result:?}",
            test.label()
        );
        let errors = form.errors();
        let all: Vec<&String> = errors
            .non_field()
            .iter()
            .chain(errors.field("tag_id"))
            .collect();
        assert_eq!(all.len(), 1, "{}: {errors:?}", test.label());
        assert_eq!(note::Entity::find().count(db).await.unwrap(), 0);
        test.finish().await;
    }
}

#[tokio::test]
async fn model_form_reports_bad_values_without_touching_the_database() {
    let mut form =
        ModelForm::<tag::Entity>::with_options(&tag_options()).bind(FormInput::from_pairs([
            ("slug", "a-very-long-slug-over-twenty"),
            ("weight", "heavy"),
            ("kind", "person"),
            ("price", "cheap"),
        ]));
    assert!(!form.is_valid());
    let errors = form.errors().by_field();
    assert_eq!(
        errors["slug"],
        ["Ensure this value has at most 20 characters (it has 28)."]
    );
    assert_eq!(errors["weight"], ["Enter a whole number."]);
    assert_eq!(
        errors["kind"],
        ["Select a valid choice. person is not one of the available choices."]
    );
    assert_eq!(errors["price"], ["Enter a number."]);
    assert!(
        !errors.contains_key("public"),
        "a checkbox is never required"
    );
    let unreachable = kiln::db::sea_orm::Database::connect("sqlite::memory:")
        .await
        .unwrap();
    assert!(matches!(
        form.save(&unreachable).await,
        Err(SaveError::Invalid)
    ));
}

async fn create_tag(db: Db, input: FormInput) -> Result<Response, kiln::Error> {
    let mut form = ModelForm::<tag::Entity>::new().bind(input);
    match form.save_with(&*db, |row| row.created = Set(now())).await {
        Ok(tag) => Ok(format!("created {}", tag.slug).into_response()),
        Err(SaveError::Invalid) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[tokio::test]
async fn model_form_in_a_view_uses_the_registered_options() {
    let project = Project::new("tags").mount(
        "/",
        App::new("forms")
            .model_with::<tag::Entity>(tag_options())
            .route("/tags/", "create", post(create_tag)),
    );
    let client = TestClient::with_settings(project, Settings::from_toml("debug = true").unwrap());
    tag_table(&client.db().await).await;
    let fields = [("slug", "kiln"), ("weight", "1"), ("kind", "place")];
    let response = client.post("/tags/").form(&fields).send().await;
    assert_eq!(
        (response.status().as_u16(), response.text()),
        (200, "created kiln".to_owned())
    );
    let response = client.post("/tags/").form(&fields).send().await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(
        page.contains("<label for=\"id_slug\">Short name:</label>"),
        "{page}"
    );
    assert!(
        page.contains("Tag with this Short name already exists."),
        "{page}"
    );
    assert!(!page.contains("id_created"), "{page}");
}

// ModelForm foreign keys

pub mod pin {
    use kiln::db::prelude::*;

    /// A nullable foreign key.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "forms_pin")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tag_id: Option<i64>,
        pub label: String,
        #[sea_orm(belongs_to, from = "tag_id", to = "id")]
        pub tag: HasOne<super::tag::Entity>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Creates the tag, note and pin tables and the tags `rust` and `web`;
/// their ids.
async fn related_tables(db: &DatabaseConnection) -> (i64, i64) {
    tag_table(db).await;
    let schema = Schema::new(db.get_database_backend());
    for table in [
        schema.create_table_from_entity(note::Entity),
        schema.create_table_from_entity(pin::Entity),
    ] {
        db.execute(&table).await.unwrap();
    }
    let mut ids = Vec::new();
    for slug in ["rust", "web"] {
        let tag = tag::ActiveModel {
            slug: Set(slug.to_owned()),
            weight: Set(1),
            kind: Set("topic".to_owned()),
            public: Set(true),
            created: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        ids.push(tag.id);
    }
    (ids[0], ids[1])
}

#[tokio::test]
async fn foreign_keys_are_selects_of_the_related_rows_on_every_backend() {
    for test in backends::all().await {
        let db = &test.db;
        let (rust, web) = related_tables(db).await;
        let mut form = ModelForm::<note::Entity>::new();
        form.load_choices(db).await.unwrap();
        let widget = form.field("tag_id").unwrap().widget();
        assert!(
            widget.starts_with("<select name=\"tag_id\" id=\"id_tag_id\" required>"),
            "{}: {widget}",
            test.label()
        );
        // Without a registered display, a row reads as its key.
        assert!(
            widget.contains(&format!(
                "<option value=\"{rust}\">{rust}</option><option value=\"{web}\">{web}</option>"
            )),
            "{}: {widget}",
            test.label()
        );

        let input = FormInput::from_pairs([("tag_id", web.to_string()), ("text", "hi".into())]);
        let mut form = ModelForm::<note::Entity>::new().bind(input);
        let note = form.save(db).await.unwrap();
        assert_eq!(note.tag_id, web, "{}", test.label());
        test.finish().await;
    }
}

#[tokio::test]
async fn unknown_or_malformed_foreign_keys_are_field_errors_on_every_backend() {
    for test in backends::all().await {
        let db = &test.db;
        let (rust, _) = related_tables(db).await;
        for forged in [
            "4242",
            "abc",
            "1.5",
            "-1",
            "99999999999999999999",
            "1 OR 1=1",
        ] {
            let input = FormInput::from_pairs([("tag_id", forged), ("text", "x")]);
            let mut form = ModelForm::<note::Entity>::new().bind(input);
            let result = form.save(db).await;
            assert!(
                matches!(result, Err(SaveError::Invalid)),
                "{} {forged}: {result:?}",
                test.label()
            );
            assert_eq!(
                form.errors().field("tag_id"),
                ["Select a valid choice. That choice is not one of the available choices."],
                "{} {forged}",
                test.label()
            );
            assert!(form.errors().non_field().is_empty());
            // The invalid form comes back ready to render: choices loaded,
            // the field marked invalid.
            let widget = form.field("tag_id").unwrap().widget();
            assert!(
                widget.contains(&format!("<option value=\"{rust}\">")),
                "{widget}"
            );
            assert!(widget.contains("aria-invalid=\"true\""), "{widget}");
        }
        // Choices loaded before binding check the key while binding.
        let mut form = ModelForm::<note::Entity>::new();
        form.load_choices(db).await.unwrap();
        let form = form.bind(FormInput::from_pairs([("tag_id", "4242"), ("text", "x")]));
        assert!(!form.is_valid());
        assert_eq!(note::Entity::find().count(db).await.unwrap(), 0);
        test.finish().await;
    }
}

#[tokio::test]
async fn a_nullable_foreign_key_offers_an_empty_choice_that_saves_null_on_every_backend() {
    for test in backends::all().await {
        let db = &test.db;
        let (rust, _) = related_tables(db).await;
        let mut form = ModelForm::<pin::Entity>::new();
        form.load_choices(db).await.unwrap();
        let widget = form.field("tag_id").unwrap().widget();
        assert!(
            widget.starts_with(
                "<select name=\"tag_id\" id=\"id_tag_id\"><option value=\"\">---------</option>"
            ),
            "{}: {widget}",
            test.label()
        );
        let input = FormInput::from_pairs([("tag_id", ""), ("label", "loose")]);
        let pin = ModelForm::<pin::Entity>::new()
            .bind(input)
            .save(db)
            .await
            .unwrap();
        assert_eq!(pin.tag_id, None, "{}", test.label());

        // Editing shows the current row selected.
        let pinned = pin::ActiveModel {
            tag_id: Set(Some(rust)),
            label: Set("pinned".to_owned()),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        let mut edit = ModelForm::<pin::Entity>::new().for_instance(pinned);
        edit.load_choices(db).await.unwrap();
        let widget = edit.field("tag_id").unwrap().widget();
        assert!(
            widget.contains(&format!("<option value=\"{rust}\" selected>")),
            "{widget}"
        );
        test.finish().await;
    }
}

async fn note_page(db: Db) -> Result<Html<String>, kiln::Error> {
    let mut form = ModelForm::<note::Entity>::new();
    form.load_choices(&*db).await?;
    Ok(Html(form.to_string()))
}

async fn create_note(db: Db, input: FormInput) -> Result<Response, kiln::Error> {
    let mut form = ModelForm::<note::Entity>::new().bind(input);
    match form.save(&*db).await {
        Ok(note) => Ok(format!("note {}", note.id).into_response()),
        Err(SaveError::Invalid) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[tokio::test]
async fn foreign_key_choices_use_the_related_models_display_in_a_project() {
    let project = Project::new("notes").mount(
        "/",
        App::new("forms")
            .model_with::<tag::Entity>(
                ModelOptions::new().display(|tag: &tag::Model| format!("#{}", tag.slug)),
            )
            .model::<note::Entity>()
            .route("/notes/", "notes", get(note_page).post(create_note)),
    );
    let client = TestClient::with_settings(project, Settings::from_toml("debug = true").unwrap());
    let (rust, web) = related_tables(&client.db().await).await;
    let page = client.get("/notes/").send().await.text();
    assert!(
        page.contains(&format!(
            "<option value=\"{rust}\">#rust</option><option value=\"{web}\">#web</option>"
        )),
        "{page}"
    );
    let response = client
        .post("/notes/")
        .form(&[("tag_id", "777"), ("text", "forged")])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text();
    assert!(
        page.contains("That choice is not one of the available choices."),
        "{page}"
    );
    assert!(page.contains(">#web</option>"), "{page}");
    let response = client
        .post("/notes/")
        .form(&[("tag_id", rust.to_string().as_str()), ("text", "ok")])
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
}

// Choice widgets

#[derive(Debug, Clone, Copy, PartialEq, Choices)]
enum Flavour {
    Vanilla,
    #[choice(label = "Dark <chocolate>")]
    Chocolate,
    Lemon,
}

#[derive(Debug, Form)]
struct Order {
    #[form(widget = "radio", help_text = "Pick one.")]
    topic: Topic,
    flavours: Vec<Flavour>,
    #[form(widget = "checkboxes")]
    extras: Option<Vec<Flavour>>,
}

fn bind_order(pairs: &[(&str, &str)]) -> kiln::forms::Form<Order> {
    BoundForm::<Order>::bind(FormInput::from_pairs(pairs.iter().copied()))
}

#[test]
fn radio_buttons_and_multiple_choices_give_typed_values() {
    let form = bind_order(&[
        ("topic", "bug"),
        ("flavours", "lemon"),
        ("flavours", "vanilla"),
        ("extras", "chocolate"),
    ]);
    let order = form.into_result().unwrap();
    assert_eq!(order.topic, Topic::BugReport);
    assert_eq!(order.flavours, [Flavour::Lemon, Flavour::Vanilla]);
    assert_eq!(order.extras, Some(vec![Flavour::Chocolate]));

    let order = bind_order(&[("topic", "general"), ("flavours", "lemon"), ("extras", "")])
        .into_result()
        .unwrap();
    assert_eq!(
        order.extras, None,
        "an optional multiple choice may be empty"
    );
}

#[test]
fn unknown_duplicate_and_too_many_choices_are_field_errors() {
    let errors = |pairs: &[(&str, &str)]| {
        let (value, form) = bind_order(pairs).into_parts();
        assert!(value.is_none());
        form.errors().by_field().clone()
    };
    let found = errors(&[("topic", "nope"), ("flavours", "mint")]);
    assert_eq!(
        found["topic"],
        ["Select a valid choice. nope is not one of the available choices."]
    );
    assert_eq!(
        found["flavours"],
        ["Select a valid choice. mint is not one of the available choices."]
    );
    let found = errors(&[
        ("topic", "bug"),
        ("flavours", "lemon"),
        ("flavours", "lemon"),
    ]);
    assert_eq!(
        found["flavours"],
        ["Select each choice once; lemon was sent twice."]
    );
    let mut many = vec![("topic", "bug")];
    many.extend(std::iter::repeat_n(("flavours", "lemon"), 5000));
    let found = errors(&many);
    assert_eq!(
        found["flavours"],
        ["Select at most 3 choices (5000 were sent)."]
    );
    let found = errors(&[("extras", "mint")]);
    assert_eq!(found["topic"], ["This field is required."]);
    assert_eq!(found["flavours"], ["This field is required."]);
    assert_eq!(
        found["extras"],
        ["Select a valid choice. mint is not one of the available choices."]
    );
}

#[test]
fn choice_widgets_render_accessible_groups_and_keep_submitted_values() {
    let form = BoundForm::<Order>::new();
    let topic = form.field("topic").unwrap();
    assert_eq!(
        topic.as_div(),
        "<div><fieldset><legend>Topic:</legend>\
         <div class=\"helptext\" id=\"id_topic_helptext\">Pick one.</div>\
         <div id=\"id_topic\">\
         <div><label for=\"id_topic_0\"><input type=\"radio\" name=\"topic\" value=\"general\" \
         id=\"id_topic_0\" required aria-describedby=\"id_topic_helptext\">General</label></div>\
         <div><label for=\"id_topic_1\"><input type=\"radio\" name=\"topic\" value=\"bug\" \
         id=\"id_topic_1\" required aria-describedby=\"id_topic_helptext\">Bug report</label></div>\
         </div></fieldset></div>"
    );
    let flavours = form.field("flavours").unwrap().widget();
    assert_eq!(
        flavours,
        "<select name=\"flavours\" id=\"id_flavours\" required multiple>\
         <option value=\"vanilla\">Vanilla</option>\
         <option value=\"chocolate\">Dark &lt;chocolate&gt;</option>\
         <option value=\"lemon\">Lemon</option></select>"
    );

    // Re-display after an error: every submitted choice stays selected.
    let form = bind_order(&[
        ("topic", "bug"),
        ("flavours", "lemon"),
        ("flavours", "chocolate"),
        ("extras", "vanilla"),
        ("extras", "vanilla"),
    ]);
    let (_, form) = form.into_parts();
    let html = form.to_string();
    assert!(
        html.contains(
            "value=\"bug\" id=\"id_topic_1\" required \
             aria-describedby=\"id_topic_helptext\" checked>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"chocolate\" selected>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"lemon\" selected>"), "{html}");
    assert!(
        !html.contains("<option value=\"vanilla\" selected>"),
        "{html}"
    );
    // Checkboxes are never `required` (that would force every box on).
    assert!(
        html.contains(
            "<input type=\"checkbox\" name=\"extras\" value=\"vanilla\" id=\"id_extras_0\" \
             aria-invalid=\"true\" aria-describedby=\"id_extras_error\" checked>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<ul class=\"errorlist\" id=\"id_extras_error\"><li>Select each choice once; vanilla was sent twice.</li></ul>"),
        "{html}"
    );

    let initial = BoundForm::with_initial(&Order {
        topic: Topic::General,
        flavours: vec![Flavour::Vanilla, Flavour::Lemon],
        extras: None,
    });
    let html = initial.to_string();
    assert!(
        html.contains("<option value=\"vanilla\" selected>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"lemon\" selected>"), "{html}");
}

async fn order(form: Form<Order>) -> Response {
    match form.into_result() {
        Ok(order) => format!("{:?}", order.flavours).into_response(),
        Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response(),
    }
}

#[tokio::test]
async fn the_extractor_reads_repeated_fields_as_a_multiple_choice() {
    let client = TestClient::new(Project::new("orders").mount(
        "/",
        App::new("orders").route("/order/", "order", post(order)),
    ));
    let response = client
        .post("/order/")
        .form(&[
            ("topic", "general"),
            ("flavours", "chocolate"),
            ("flavours", "vanilla"),
        ])
        .send()
        .await;
    assert_eq!(response.text(), "[Chocolate, Vanilla]");
    let response = client
        .post("/order/")
        .form(&[("topic", "general"), ("flavours", "<b>")])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .contains("Select a valid choice. &lt;b&gt; is not")
    );
}

// Formsets

#[derive(Debug, Form)]
struct Link {
    #[form(max_length = 20)]
    title: String,
    #[form(min = 1)]
    rank: Option<i32>,
}

fn links() -> FormSet<Link> {
    FormSet::new("links")
        .extra(2)
        .min_num(1)
        .max_num(3)
        .can_delete(true)
}

fn management(total: &str) -> Vec<(String, String)> {
    vec![
        ("links-TOTAL_FORMS".into(), total.into()),
        ("links-INITIAL_FORMS".into(), "0".into()),
    ]
}

fn bind_links(total: &str, forms: &[(&str, &str)]) -> FormSet<Link> {
    let mut pairs = management(total);
    pairs.extend(
        forms
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    links().bind(FormInput::from_pairs(pairs))
}

#[test]
fn a_formset_returns_its_filled_in_forms_and_skips_blank_and_deleted_ones() {
    let set = bind_links(
        "4",
        &[
            ("links-0-title", "Kiln"),
            ("links-0-rank", "2"),
            ("links-1-title", "Gone"),
            ("links-1-DELETE", "on"),
            ("links-2-title", ""),
            ("links-3-title", "Docs"),
        ],
    );
    assert_eq!(set.deleted_forms(), [1]);
    let values = set.into_result().unwrap();
    let titles: Vec<(&str, Option<i32>)> = values
        .iter()
        .map(|link| (link.title.as_str(), link.rank))
        .collect();
    assert_eq!(titles, [("Kiln", Some(2)), ("Docs", None)]);
}

#[test]
fn formset_forms_report_their_own_errors_under_their_prefix() {
    let set = bind_links(
        "2",
        &[
            ("links-0-title", "ok"),
            ("links-1-title", "x"),
            ("links-1-rank", "0"),
        ],
    );
    assert!(!set.is_valid());
    assert!(set.forms()[0].errors().is_empty());
    assert_eq!(
        set.forms()[1].errors().field("rank"),
        ["Ensure this value is greater than or equal to 1."]
    );
    let html = set.to_string();
    assert!(
        html.contains("<input type=\"number\" name=\"links-1-rank\" id=\"id_links-1-rank\" min=\"1\" aria-invalid=\"true\""),
        "{html}"
    );
    assert!(html.contains("value=\"x\""), "{html}");
}

#[test]
fn too_few_or_too_many_forms_are_errors_of_the_set() {
    let set = bind_links("2", &[]);
    assert_eq!(set.non_form_errors(), ["Please submit at least 1 form."]);
    let set = bind_links(
        "4",
        &[
            ("links-0-title", "a"),
            ("links-1-title", "b"),
            ("links-2-title", "c"),
            ("links-3-title", "d"),
        ],
    );
    assert_eq!(set.non_form_errors(), ["Please submit at most 3 forms."]);
    assert!(
        set.to_string().contains(
            "<ul class=\"errorlist nonform\"><li>Please submit at most 3 forms.</li></ul>"
        )
    );
}

#[test]
fn a_missing_or_forged_management_form_is_an_error_not_a_panic() {
    for forged in [
        vec![("links-0-title", "a")],
        vec![("links-TOTAL_FORMS", "x"), ("links-INITIAL_FORMS", "0")],
        vec![("links-TOTAL_FORMS", "-1"), ("links-INITIAL_FORMS", "0")],
        vec![("links-TOTAL_FORMS", "1")],
    ] {
        let set = links().bind(FormInput::from_pairs(forged.clone()));
        assert!(!set.is_valid(), "{forged:?}");
        assert!(
            set.non_form_errors()[0]
                .starts_with("ManagementForm data is missing or has been tampered with."),
            "{forged:?}: {:?}",
            set.non_form_errors()
        );
        assert!(set.forms().is_empty());
    }
    // INITIAL_FORMS above TOTAL_FORMS is clamped, not trusted.
    let set = bind_links(
        "1",
        &[("links-INITIAL_FORMS", "99"), ("links-0-title", "a")],
    );
    assert!(set.is_valid(), "{:?}", set.non_form_errors());
}

#[test]
fn a_huge_total_forms_is_refused_without_building_that_many_forms() {
    let set = bind_links("18446744073709551615", &[("links-0-title", "a")]);
    assert!(!set.is_valid());
    assert_eq!(set.forms().len(), 1000, "only absolute_max forms are read");
    assert_eq!(set.non_form_errors(), ["Please submit at most 3 forms."]);
    let set = FormSet::<Link>::new("links")
        .absolute_max(5)
        .bind(FormInput::from_pairs([
            ("links-TOTAL_FORMS", "1000000"),
            ("links-INITIAL_FORMS", "0"),
        ]));
    assert_eq!(set.forms().len(), 5);
    assert!(!set.is_valid());
}

#[test]
fn an_unbound_formset_renders_the_management_form_and_its_forms() {
    let html = links().to_string();
    assert!(html.starts_with(
        "<input type=\"hidden\" name=\"links-TOTAL_FORMS\" value=\"3\" id=\"id_links-TOTAL_FORMS\">\
         <input type=\"hidden\" name=\"links-INITIAL_FORMS\" value=\"0\" id=\"id_links-INITIAL_FORMS\">\
         <input type=\"hidden\" name=\"links-MIN_NUM_FORMS\" value=\"1\" id=\"id_links-MIN_NUM_FORMS\">\
         <input type=\"hidden\" name=\"links-MAX_NUM_FORMS\" value=\"3\" id=\"id_links-MAX_NUM_FORMS\">"
    ), "{html}");
    assert!(
        html.contains("<label for=\"id_links-2-title\">Title:</label>"),
        "{html}"
    );
    assert!(!html.contains("links-3-"), "{html}");
    assert!(html.contains("name=\"links-0-DELETE\""), "{html}");
    let edit = links().initial(vec![Link {
        title: "Kiln".into(),
        rank: Some(1),
    }]);
    let html = edit.to_string();
    assert!(
        html.contains("name=\"links-INITIAL_FORMS\" value=\"1\""),
        "{html}"
    );
    assert!(html.contains("name=\"links-0-title\" id=\"id_links-0-title\" required maxlength=\"20\" value=\"Kiln\""), "{html}");
}

async fn save_links(set: FormSet<Link>) -> Response {
    match set.into_result() {
        Ok(links) => format!("{}", links.len()).into_response(),
        Err(set) => (StatusCode::UNPROCESSABLE_ENTITY, Html(set.to_string())).into_response(),
    }
}

#[tokio::test]
async fn the_formset_extractor_binds_the_form_prefix() {
    let client = TestClient::new(Project::new("links").mount(
        "/",
        App::new("links").route("/links/", "links", post(save_links)),
    ));
    let response = client
        .post("/links/")
        .form(&[
            ("form-TOTAL_FORMS", "2"),
            ("form-INITIAL_FORMS", "0"),
            ("form-0-title", "a"),
            ("form-1-title", "b"),
        ])
        .send()
        .await;
    assert_eq!(response.text(), "2");
    let response = client
        .post("/links/")
        .form(&[("form-0-title", "a")])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert!(response.text().contains("ManagementForm data is missing"));
}
