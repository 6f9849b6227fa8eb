//! Views of the `polls` app: the four pages of Django's tutorial. The pages
//! are templates: `templates/base.html` (the project's) and
//! `src/polls/templates/polls/*.html` (the app's).

use kiln::auth::RequirePermission;
use kiln::db::prelude::*;
use kiln::db::{Db, PageLink, Paginator, get_object_or_404};
use kiln::forms::{BoundForm, FormInput, ModelForm, SaveError};
use kiln::prelude::*;
use kiln::templates::{Value, context, render};

use super::models::{choice, question};

async fn question_or_404(db: &Db, id: i64) -> Result<question::Model, Error> {
    get_object_or_404(question::Entity::find_by_id(id), &**db).await
}

async fn choices_of(db: &Db, question: &question::Model) -> Result<Vec<choice::Model>, Error> {
    choice::Entity::find()
        .filter(choice::Column::QuestionId.eq(question.id))
        .order_by_asc(choice::Column::Id)
        .all(&**db)
        .await
        .map_err(Error::internal)
}

/// A question as templates see it.
fn question_value(question: &question::Model) -> Value {
    context! {
        id => question.id,
        question_text => &question.question_text,
        pub_date => question.pub_date.to_rfc3339(),
    }
}

/// Choices as templates see them.
fn choice_values(choices: &[choice::Model]) -> Vec<Value> {
    choices
        .iter()
        .map(|c| context! { id => c.id, choice_text => &c.choice_text, votes => c.votes })
        .collect()
}

/// The query string of the index.
#[derive(Debug, Deserialize)]
pub(super) struct IndexQuery {
    page: Option<String>,
}

/// The latest questions, five per page (`?page=2`, `?page=last`).
pub(super) async fn index(
    parts: Parts,
    db: Db,
    Query(query): Query<IndexQuery>,
) -> Result<Response, Error> {
    let latest = question::Entity::find()
        .order_by_desc(question::Column::PubDate)
        .order_by_desc(question::Column::Id);
    let page = Paginator::new(latest, 5)
        .page_from_param(&*db, query.page.as_deref())
        .await?;
    let pages: Vec<Value> = if page.has_other_pages() {
        page.elided_page_range(2, 1)
            .into_iter()
            .map(|link| match link {
                PageLink::Page(n) => context! { number => n },
                PageLink::Ellipsis => context! { ellipsis => true },
            })
            .collect()
    } else {
        Vec::new()
    };
    let questions: Vec<Value> = page.items.iter().map(question_value).collect();
    render(
        &parts,
        "polls/index.html",
        context! { questions, pages, number => page.number },
    )
}

/// A question and a form to vote.
pub(super) async fn detail(parts: Parts, db: Db, Path(id): Path<i64>) -> Result<Response, Error> {
    let question = question_or_404(&db, id).await?;
    detail_page(&parts, &db, &question, None).await
}

async fn detail_page(
    parts: &Parts,
    db: &Db,
    question: &question::Model,
    form: Option<&BoundForm<VoteForm>>,
) -> Result<Response, Error> {
    let choices = choices_of(db, question).await?;
    // The choice field's errors, for the fieldset of radio buttons.
    let choice_error = form
        .and_then(|form| form.field("choice"))
        .filter(|field| !field.errors().is_empty())
        .map(|field| context! { id => field.id(), html => Value::from_safe_string(field.errors_html()) });
    render(
        parts,
        "polls/detail.html",
        context! { question => question_value(question), choices => choice_values(&choices), choice_error },
    )
}

/// The vote counts.
pub(super) async fn results(parts: Parts, db: Db, Path(id): Path<i64>) -> Result<Response, Error> {
    let question = question_or_404(&db, id).await?;
    let choices = choices_of(&db, &question).await?;
    render(
        &parts,
        "polls/results.html",
        context! { question => question_value(&question), choices => choice_values(&choices) },
    )
}

/// The vote form: the id of the chosen choice.
#[derive(Debug, Form)]
pub(super) struct VoteForm {
    choice: i64,
}

/// Counts a vote, then redirects to the results (Post/Redirect/Get). A
/// missing, malformed or unknown choice shows the question again with the
/// error (422). Only logged-in users vote: an anonymous vote goes to the
/// login page, which comes back to the question.
pub(super) async fn vote(
    parts: Parts,
    db: Db,
    user: kiln::auth::CurrentUser,
    Path(id): Path<i64>,
    form: Form<VoteForm>,
) -> Result<Response, Error> {
    let question = question_or_404(&db, id).await?;
    if !user.is_authenticated() {
        let login = reverse("auth:login", ()).map_err(Error::internal)?;
        let detail = reverse("polls:detail", [("id", id)]).map_err(Error::internal)?;
        return Ok(Redirect::to(&format!("{login}?next={detail}")).into_response());
    }
    let (vote, mut form) = form.into_parts();
    // The choice must belong to this question; the increment happens in
    // the database so that concurrent votes are all counted.
    let updated = match vote {
        Some(VoteForm { choice: choice_id }) => {
            choice::Entity::update_many()
                .col_expr(
                    choice::Column::Votes,
                    Expr::col(choice::Column::Votes).add(1),
                )
                .filter(choice::Column::Id.eq(choice_id))
                .filter(choice::Column::QuestionId.eq(question.id))
                .exec(&*db)
                .await
                .map_err(Error::internal)?
                .rows_affected
        }
        None => 0,
    };
    if updated == 0 {
        if form.is_valid() {
            form.add_error(
                Some("choice"),
                "Select a valid choice. That choice is not one of the available choices.",
            );
        }
        let page = detail_page(&parts, &db, &question, Some(&form)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let results = reverse("polls:results", [("id", question.id)])?;
    Ok(Redirect::to(&results).into_response())
}

/// The "suggest a question" form: a `ModelForm` of the question model,
/// without the publication date, which is set when it is saved.
fn suggest_form() -> ModelForm<question::Entity> {
    ModelForm::new().exclude(&["pub_date"])
}

fn suggest_page(parts: &Parts, form: &ModelForm<question::Entity>) -> Result<Response, Error> {
    render(
        parts,
        "polls/suggest.html",
        context! { form => Value::from_safe_string(form.to_string()) },
    )
}

/// The empty suggestion form.
pub(super) async fn suggest(parts: Parts) -> Result<Response, Error> {
    suggest_page(&parts, &suggest_form())
}

/// Saves a suggested question and shows it, or the form again with its
/// errors (422).
pub(super) async fn suggest_save(
    parts: Parts,
    db: Db,
    input: FormInput,
) -> Result<Response, Error> {
    let mut form = suggest_form().bind(input);
    match form
        .save_with(&*db, |row| row.pub_date = Set(ChronoUtc::now()))
        .await
    {
        Ok(question) => {
            let url = reverse("polls:detail", [("id", question.id)])?;
            Ok(Redirect::to(&url).into_response())
        }
        Err(SaveError::Invalid) => {
            let page = suggest_page(&parts, &form)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

kiln::permission!(
    /// Staff who may edit questions; they also see every vote count.
    pub ChangeQuestion = "polls.change_question"
);

/// Every question with its total votes: staff only (the
/// `polls.change_question` permission; 403 without it, the login page for
/// anonymous visitors).
pub(super) async fn votes(
    parts: Parts,
    db: Db,
    _staff: RequirePermission<ChangeQuestion>,
) -> Result<Response, Error> {
    let questions = question::Entity::find()
        .order_by_asc(question::Column::Id)
        .all(&*db)
        .await
        .map_err(Error::internal)?;
    let mut rows = Vec::with_capacity(questions.len());
    for question in &questions {
        let total: i64 = choices_of(&db, question)
            .await?
            .iter()
            .map(|choice| i64::from(choice.votes))
            .sum();
        rows.push(context! { question_text => &question.question_text, total });
    }
    render(&parts, "polls/votes.html", context! { rows })
}
