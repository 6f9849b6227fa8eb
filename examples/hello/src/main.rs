//! A complete Kiln app in one file: a page, a JSON API with a path
//! parameter, a form, and named URLs.
//!
//! Run it with `cargo run -p hello`, then open <http://127.0.0.1:8000/>.
//! `cargo run -p hello -- routes` lists its routes.

use kiln::prelude::*;

async fn index() -> Html<String> {
    let greet = reverse("greet", [("name", "Ada")]).unwrap_or_default();
    Html(format!(
        "<h1>Hello, World!</h1><p>Try <a href=\"{greet}\">{greet}</a> or <a href=\"/api/count/3\">the API</a>.</p>"
    ))
}

async fn greet(Path(name): Path<String>) -> String {
    format!("Hello, {name}!")
}

#[derive(Serialize)]
struct Count {
    n: u32,
    squares: Vec<u32>,
}

async fn count(Path(n): Path<u32>) -> Result<Json<Count>, kiln::Error> {
    if n > 1000 {
        return Err(kiln::Error::bad_request("n must be at most 1000"));
    }
    Ok(Json(Count {
        n,
        squares: (1..=n).map(|i| i * i).collect(),
    }))
}

#[derive(Form)]
struct Echo {
    #[form(max_length = 200)]
    message: String,
}

/// Echoes the message; an empty or overlong one gets the form back with
/// its error (422).
async fn echo(form: Form<Echo>) -> Response {
    match form.into_result() {
        Ok(echo) => echo.message.into_response(),
        Err(form) => (StatusCode::UNPROCESSABLE_ENTITY, Html(form.to_string())).into_response(),
    }
}

#[kiln::main]
fn main() -> Project {
    kiln::project!()
        .route("/", "index", get(index))
        .route("/hello/{name}", "greet", get(greet))
        .route("/api/count/{n:int}", "count", get(count))
        .route("/echo", "echo", post(echo))
}
