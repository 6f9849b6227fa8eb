//! Views of the `pages` app.

use kiln::prelude::*;

/// A link to a named route; the name is checked when the page is built.
fn link(name: &str, text: &str) -> Result<String, Error> {
    link_with(name, (), text)
}

fn link_with(name: &str, params: impl kiln::urls::UrlParams, text: &str) -> Result<String, Error> {
    Ok(format!("<a href=\"{}\">{text}</a>", reverse(name, params)?))
}

fn page(title: &str, body: &str) -> Html<String> {
    // The icon is linked, as in templates/base.html: without a link, browsers
    // ask for /favicon.ico, a 404 in their console.
    let icon = kiln::staticfiles::url("favicon.svg");
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Kiln showcase</title>\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         h1{{color:#b4431b}}code{{background:#f4f1ee;padding:0 .25rem}}</style></head><body>{body}</body></html>"
    ))
}

pub(super) async fn home() -> Result<Html<String>, Error> {
    let body = format!(
        "<h1>Kiln showcase</h1>\
         <p>Django's structure on Tokio's event loop. This project runs on its embedded defaults: no set-up.</p>\
         <ul>\
         <li>{about}: a second page of the <code>pages</code> app, reached by its route name.</li>\
         <li>{polls}: Django's tutorial app on the embedded SQLite database, migrated and seeded by <code>cargo run</code>.</li>\
         <li>{videos}: upload a video and play it back with seeking (uploads streamed to disk, served with <code>Range</code>).</li>\
         <li>{chat}: rooms with live messages (stored, then broadcast), who is online and who is typing, over WebSockets.</li>\
         <li>{dashboard}: a live chart of the server, pushed with Server-Sent Events and resumed with <code>Last-Event-ID</code>.</li>\
         <li>{tictactoe}: two players matched into a game, moves checked on the server, spectators watching live.</li>\
         <li>{status}: the <code>api</code> app, mounted at <code>/api</code>; it can run alone with <code>runserver --app api</code>.</li>\
         <li>{square}: a typed path parameter (<code>{{n:int}}</code>); <a href=\"/api/square/seven\">a non-number</a> is a 404.</li>\
         <li>{boom}: a handler that fails, to see the debug error page; {crash} panics, and the server goes on.</li>\
         <li><a href=\"/nowhere\">A missing page</a>: in debug mode the 404 page lists every route.</li>\
         <li>{healthz} and {readyz}: health checks for load balancers.</li>\
         </ul>\
         <p>Try <code>cargo run -p showcase -- routes</code> and <code>-- check</code>.</p>",
        about = link("pages:about", "About")?,
        polls = link("polls:index", "Polls")?,
        videos = link("videos:index", "Videos")?,
        chat = link("chat:index", "Chat")?,
        dashboard = link("dashboard:index", "Live dashboard")?,
        tictactoe = link("games:tictactoe", "Tic-tac-toe")?,
        status = link("api:status", "API status")?,
        square = link_with("api:square", [("n", 7)], "7 squared")?,
        boom = link("pages:boom", "Boom")?,
        crash = link("pages:crash", "Crash")?,
        healthz = link("kiln:healthz", "/healthz")?,
        readyz = link("kiln:readyz", "/readyz")?,
    );
    Ok(page("Home", &body))
}

pub(super) async fn about() -> Result<Html<String>, Error> {
    let body = format!(
        "<h1>About</h1><p>Kiln is a batteries-included async web framework for Rust.</p><p>{}</p>",
        link("pages:home", "Back home")?
    );
    Ok(page("About", &body))
}

/// Fails on purpose: the error chain shows on the debug page, never in production.
pub(super) async fn boom() -> Result<Html<String>, Error> {
    // A view's own log lines carry the request id.
    kiln::deps::tracing::warn!("about to fail on purpose");
    let number: u32 = "forty-two".parse()?;
    Ok(page("Unreachable", &number.to_string()))
}

/// Panics on purpose: the client gets a 500, the panic is logged with the
/// request id, and the server keeps serving.
pub(super) async fn crash() -> Html<String> {
    panic!("the crash page crashes on purpose");
}
