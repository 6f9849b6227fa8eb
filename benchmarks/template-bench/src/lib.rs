//! TechEmpower's fortunes page three ways: through Kiln's minijinja
//! templates (`templates/fortunes.html`, embedded in release builds),
//! through a compiled template (`#[kiln::template]`, the same file turned
//! into Rust at build time) and by hand-written string building.
//! `cargo bench -p template-bench` compares them in one run; the figures
//! are in `RESULTS.md`.
//!
//! All start from the same rows, as a database would return them, add the
//! fortune of the request and sort by message; only the page differs.

use std::fmt::Write as _;

use kiln::prelude::*;

/// One row of the `Fortune` table.
#[derive(Clone, Debug, Serialize)]
pub struct Fortune {
    /// The id.
    pub id: i32,
    /// The message (HTML-escaped on the page).
    pub message: String,
}

/// The 12 rows of TechEmpower's `Fortune` table (`fortune-seed-rows.sql`).
#[must_use]
pub fn seed() -> Vec<Fortune> {
    [
        (1, "fortune: No such file or directory"),
        (
            2,
            "A computer scientist is someone who fixes things that aren't broken.",
        ),
        (3, "After enough decimal places, nobody gives a damn."),
        (
            4,
            "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
        ),
        (
            5,
            "A computer program does what you tell it to do, not what you want it to do.",
        ),
        (
            6,
            "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen",
        ),
        (7, "Any program that runs right is obsolete."),
        (
            8,
            "A list is only as strong as its weakest link. — Donald Knuth",
        ),
        (9, "Feature: A bug with seniority."),
        (10, "Computers make very fast, very accurate mistakes."),
        (
            11,
            "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
        ),
        (12, "フレームワークのベンチマーク"),
    ]
    .into_iter()
    .map(|(id, message)| Fortune {
        id,
        message: message.to_owned(),
    })
    .collect()
}

/// What the test asks of each request: the rows plus one added at request
/// time, sorted by message.
#[must_use]
pub fn rows_for_request(mut rows: Vec<Fortune>) -> Vec<Fortune> {
    rows.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    rows.sort_unstable_by(|a, b| a.message.cmp(&b.message));
    rows
}

/// A built site whose templates include `fortunes.html`, in production mode.
///
/// # Panics
///
/// When the project does not boot (it always does).
#[must_use]
pub fn site() -> Site {
    let settings = Settings::from_toml(
        "debug = false\nsecret_key = \"benchmark-only-secret-key-0123456789abcdef\"\naccess_log = false\nallowed_hosts = [\"localhost\"]",
    )
    .expect("benchmark settings are valid");
    let project = Project::new("fortunes").templates(kiln::templates_dir!("templates"));
    project.build(settings).expect("the project boots").0
}

/// The page through Kiln's template path: context, context processors,
/// rendering with autoescaping, the response.
///
/// # Errors
///
/// A template error (there is none).
pub fn with_template(
    site: &Site,
    request: &Parts,
    rows: &[Fortune],
) -> Result<Response, kiln::Error> {
    /// The page's context: any `Serialize` value works as one.
    #[derive(Serialize)]
    struct Page<'a> {
        fortunes: &'a [Fortune],
    }
    site.templates()
        .response(request, "fortunes.html", Page { fortunes: rows })
}

/// The fortunes page as a compiled template: the same `templates/fortunes.html`
/// as [`with_template`]'s, checked and turned into Rust at build time.
#[kiln::template(path = "fortunes.html")]
#[derive(Debug)]
pub struct FortunesPage<'a> {
    /// The rows, sorted.
    pub fortunes: &'a [Fortune],
}

/// The page through Kiln's compiled template path: rendering with
/// autoescaping, the response with its content type.
#[must_use]
pub fn compiled(rows: &[Fortune]) -> Response {
    FortunesPage { fortunes: rows }.into_response()
}

/// The page built by hand, escaping with the function the templates use.
#[must_use]
pub fn hand_written(rows: &[Fortune]) -> Response {
    let mut html = String::with_capacity(1200);
    html.push_str("<!doctype html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>");
    for fortune in rows {
        let _ = write!(html, "<tr><td>{}</td><td>", fortune.id);
        let _ = kiln::http::escape_into(&mut html, &fortune.message);
        html.push_str("</td></tr>");
    }
    html.push_str("</table></body></html>");
    Html(html).into_response()
}

/// A request as a handler would see it.
///
/// # Panics
///
/// Never: the request is a constant.
#[must_use]
pub fn request() -> Parts {
    axum_request().into_parts().0
}

fn axum_request() -> Request {
    Request::builder()
        .uri("/fortunes")
        .body(kiln::deps::axum::body::Body::empty())
        .expect("a valid request")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = kiln::deps::axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn both_ways_give_the_same_page_in_techempowers_order() {
        let rows = rows_for_request(seed());
        let site = site();
        let templated = with_template(&site, &request(), &rows).unwrap();
        assert_eq!(
            templated.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let templated = body(templated).await;
        assert_eq!(templated, body(hand_written(&rows)).await);
        assert_eq!(templated.matches("<tr>").count(), 14);
        assert!(templated.contains("<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr><tr><td>4</td>"));
        assert!(templated.ends_with(
            "<tr><td>12</td><td>フレームワークのベンチマーク</td></tr></table></body></html>"
        ));
    }

    #[tokio::test]
    async fn the_compiled_page_is_the_same_page_with_askamas_entity_spelling() {
        let rows = rows_for_request(seed());
        let page = compiled(&rows);
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let page = body(page).await;
        // askama spells the entities by number; the characters escaped are
        // the same five.
        assert!(page.contains("<tr><td>11</td><td>&#60;script&#62;alert(&#34;This should not be displayed in a browser alert box.&#34;);&#60;/script&#62;</td></tr><tr><td>4</td>"), "{page}");
        let normalised = page
            .replace("&#60;", "&lt;")
            .replace("&#62;", "&gt;")
            .replace("&#34;", "&quot;")
            .replace("&#39;", "&#x27;")
            .replace("&#38;", "&amp;");
        assert_eq!(normalised, body(hand_written(&rows)).await);
    }
}
