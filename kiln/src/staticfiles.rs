//! Static files: for now, only the URL of a file.
//!
//! Serving, finding files in each app's `static/` folder and hashing their
//! names (`style.3f2a9c.css`, cached for a year) are not built yet. Every
//! URL of a static file goes through [`url`], which templates call as
//! `static("polls/style.css")`, so that when hashing lands this one function
//! starts returning the hashed name and no template or view changes.
//!
//! # Examples
//!
//! ```
//! assert_eq!(kiln::staticfiles::url("polls/style.css"), "/static/polls/style.css");
//! ```

/// The URL prefix of static files.
pub const STATIC_URL: &str = "/static/";

/// The URL of the static file at `path` (relative to a `static/` folder).
///
/// Today this is `/static/<path>`; the static-files work will make it
/// return the hashed name (`/static/polls/style.3f2a9c.css`) from the
/// manifest that `collectstatic` writes.
#[must_use]
pub fn url(path: &str) -> String {
    let path = path.trim_start_matches('/');
    let mut url = String::with_capacity(STATIC_URL.len() + path.len());
    url.push_str(STATIC_URL);
    url.push_str(path);
    url
}
