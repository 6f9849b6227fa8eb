//! Views of the `polls` app: the four pages of Django's tutorial.
//!
//! Pages are built with `format!` and `kiln::http::escape` until Kiln's
//! templates land.

use kiln::db::prelude::*;
use kiln::db::{Db, PageLink, Paginator, get_object_or_404};
use kiln::forms::{BoundForm, FormInput, ModelForm, SaveError};
use kiln::http::escape;
use kiln::prelude::*;

use super::models::{choice, question};

fn html_page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Kiln polls</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body>{body}</body></html>",
        escape(title)
    ))
}

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

/// The query string of the index.
#[derive(Debug, Deserialize)]
pub(super) struct IndexQuery {
    page: Option<String>,
}

/// The latest questions, five per page (`?page=2`, `?page=last`).
pub(super) async fn index(db: Db, Query(query): Query<IndexQuery>) -> Result<Html<String>, Error> {
    let latest = question::Entity::find()
        .order_by_desc(question::Column::PubDate)
        .order_by_desc(question::Column::Id);
    let page = Paginator::new(latest, 5)
        .page_from_param(&*db, query.page.as_deref())
        .await?;
    let questions = &page.items;
    let mut body = String::from("<h1>Polls</h1>");
    if questions.is_empty() {
        body.push_str("<p>No polls are available.</p>");
    } else {
        body.push_str("<ul>");
        for question in questions {
            let url = reverse("polls:detail", [("id", question.id)])?;
            body.push_str(&format!(
                "<li><a href=\"{url}\">{}</a></li>",
                escape(&question.question_text)
            ));
        }
        body.push_str("</ul>");
    }
    if page.has_other_pages() {
        body.push_str("<nav aria-label=\"pages\">");
        for link in page.elided_page_range(2, 1) {
            match link {
                PageLink::Page(n) if n == page.number => {
                    body.push_str(&format!(" <strong aria-current=\"page\">{n}</strong>"));
                }
                PageLink::Page(n) => body.push_str(&format!(" <a href=\"?page={n}\">{n}</a>")),
                PageLink::Ellipsis => body.push_str(" …"),
            }
        }
        body.push_str("</nav>");
    }
    let suggest = reverse("polls:suggest", ())?;
    body.push_str(&format!(
        "<p><a href=\"{suggest}\">Suggest a question</a></p>"
    ));
    Ok(html_page("Polls", &body))
}

/// A question and a form to vote.
pub(super) async fn detail(db: Db, Path(id): Path<i64>) -> Result<Html<String>, Error> {
    let question = question_or_404(&db, id).await?;
    detail_page(&db, &question, None).await
}

/// The detail page; `form` is a vote form that did not validate, whose
/// errors are shown with the choices.
async fn detail_page(
    db: &Db,
    question: &question::Model,
    form: Option<&BoundForm<VoteForm>>,
) -> Result<Html<String>, Error> {
    let choices = choices_of(db, question).await?;
    let action = reverse("polls:vote", [("id", question.id)])?;
    let mut body = format!("<h1>{}</h1>", escape(&question.question_text));
    let choice_field = form.and_then(|form| form.field("choice"));
    let mut fieldset = String::from("<fieldset>");
    if let Some(field) = choice_field.filter(|field| !field.errors().is_empty()) {
        body.push_str("<p role=\"alert\"><strong>You didn&#x27;t select a choice.</strong></p>");
        fieldset = format!(
            "<fieldset aria-invalid=\"true\" aria-describedby=\"{}_error\">{}",
            field.id(),
            field.errors_html()
        );
    }
    body.push_str(&format!(
        "<form action=\"{action}\" method=\"post\">{fieldset}"
    ));
    for choice in &choices {
        body.push_str(&format!(
            "<label><input type=\"radio\" name=\"choice\" value=\"{}\"> {}</label><br>",
            choice.id,
            escape(&choice.choice_text)
        ));
    }
    body.push_str("</fieldset><button>Vote</button></form>");
    Ok(html_page(&question.question_text, &body))
}

/// The vote counts.
pub(super) async fn results(db: Db, Path(id): Path<i64>) -> Result<Html<String>, Error> {
    let question = question_or_404(&db, id).await?;
    let choices = choices_of(&db, &question).await?;
    let mut body = format!("<h1>{}</h1><ul>", escape(&question.question_text));
    for choice in &choices {
        let plural = if choice.votes == 1 { "" } else { "s" };
        body.push_str(&format!(
            "<li>{} — {} vote{plural}</li>",
            escape(&choice.choice_text),
            choice.votes
        ));
    }
    let again = reverse("polls:detail", [("id", question.id)])?;
    body.push_str(&format!("</ul><a href=\"{again}\">Vote again?</a>"));
    Ok(html_page(&question.question_text, &body))
}

/// The vote form: the id of the chosen choice.
#[derive(Debug, Form)]
pub(super) struct VoteForm {
    choice: i64,
}

/// Counts a vote, then redirects to the results (Post/Redirect/Get). A
/// missing, malformed or unknown choice shows the question again with the
/// error (422).
pub(super) async fn vote(
    db: Db,
    Path(id): Path<i64>,
    form: Form<VoteForm>,
) -> Result<Response, Error> {
    let question = question_or_404(&db, id).await?;
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
        let page = detail_page(&db, &question, Some(&form)).await?;
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

fn suggest_page(form: &ModelForm<question::Entity>) -> Result<Html<String>, Error> {
    let action = reverse("polls:suggest", ())?;
    Ok(html_page(
        "Suggest a question",
        &format!(
            "<h1>Suggest a question</h1><form action=\"{action}\" method=\"post\">{form}<button>Suggest</button></form>"
        ),
    ))
}

/// The empty suggestion form.
pub(super) async fn suggest() -> Result<Html<String>, Error> {
    suggest_page(&suggest_form())
}

/// Saves a suggested question and shows it, or the form again with its
/// errors (422).
pub(super) async fn suggest_save(db: Db, input: FormInput) -> Result<Response, Error> {
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
            Ok((StatusCode::UNPROCESSABLE_ENTITY, suggest_page(&form)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}
