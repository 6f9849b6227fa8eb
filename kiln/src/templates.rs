//! Templates: Jinja2's syntax (close to Django's) through
//! [minijinja](https://docs.rs/minijinja), with Django's loader order,
//! filters and context processors.
//!
//! Each app may have a `templates/` folder, and so may the project. A name
//! such as `polls/detail.html` is looked up in the project's folder first,
//! then in each app's in mount order, so the project can override any
//! app's template (Django's loader order). Templates use inheritance
//! (`{% extends "base.html" %}`), `{% include %}`, `{% import %}` and macros.
//! Autoescaping is on for `.html`, `.htm` and `.xml` templates and off for
//! the rest (`.txt` for emails, for instance).
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//! use kiln::templates::{TemplateDir, context};
//!
//! async fn detail(parts: Parts, Path(id): Path<u32>) -> Result<Response, kiln::Error> {
//!     kiln::templates::render(&parts, "polls/detail.html", context! { id, question => "<b>Why?</b>" })
//! }
//!
//! let polls = App::new("polls")
//!     .templates(kiln::templates_dir!("src/polls/templates"))
//!     .route("/{id:int}/", "detail", get(detail));
//! # let _ = polls;
//! ```
//!
//! In templates, besides the view's context:
//!
//! - functions `url("polls:detail", id=3)` (a [`reverse`](crate::urls::reverse)
//!   of the route; an unknown name is a template error naming it),
//!   `static("polls/style.css")` (see [`staticfiles::url`](crate::staticfiles::url))
//!   and `csrf_input()`;
//! - `request`, `user` and `messages`, from the [`processors`];
//! - Django's filters: `date`, `default`, `default_if_none`, `pluralize`,
//!   `truncatewords`, `truncatechars`, `linebreaksbr`, `linebreaks`,
//!   `json_script`, `filesizeformat`, `yesno`, `floatformat`, `slugify`,
//!   `intcomma`, with minijinja's built-ins (`safe`, `escape`, `length`,
//!   `join`, `lower`, `upper`, `title`, `urlencode`, ...). A filter's
//!   argument goes in parentheses: `{{ text|truncatewords(30) }}`.
//!
//! ## Where templates are read from
//!
//! [`templates_dir!`](crate::templates_dir) records a folder at compile time.
//! Debug builds read it from disk, and in debug mode a changed file is
//! picked up on the next request, without a rebuild. Release builds embed
//! the files in the binary, so a deploy is one file; the
//! `templates_from_disk` setting reads them from disk instead.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, ErrorKind};
use serde::Serialize;

use crate::http::RequestContext;
use crate::urls::UrlRegistry;

#[cfg(feature = "compiled-templates")]
pub mod compiled;
mod context;
mod date;
mod error;
mod filters;
mod loader;

pub use context::{ContextProcessor, ContextValues, RequestHead, RequestView};
pub use error::{SnippetLine, TemplateError, TemplateTrace};
pub(crate) use loader::SourceDir;
pub use loader::TemplateDir;
pub use minijinja::{Value, context};

/// Kiln's context processors, which every project runs before its own.
pub mod processors {
    pub use super::context::{messages, request, user};
}

/// A project's templates: its folders in lookup order, the filters and
/// functions, and the context processors. [`Site::templates`](crate::Site::templates)
/// returns the running project's.
pub struct Templates {
    env: Environment<'static>,
    dirs: Arc<[SourceDir]>,
    processors: Vec<ContextProcessor>,
    debug: bool,
}

impl Templates {
    /// The engine for `dirs` (in lookup order). With `reload`, templates read
    /// from disk are checked for changes on each lookup; with `debug`, errors
    /// carry the file and the lines around the failing one.
    pub(crate) fn new(
        dirs: Vec<SourceDir>,
        processors: Vec<ContextProcessor>,
        urls: Arc<UrlRegistry>,
        reload: bool,
        debug: bool,
    ) -> Self {
        let dirs: Arc<[SourceDir]> = dirs.into();
        let mut env = Environment::new();
        env.set_auto_escape_callback(auto_escape);
        env.set_formatter(formatter);
        // As in Django, `{{ a.b.c }}` with `a` missing prints nothing rather
        // than failing the page.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        // Kiln builds its own snippets (`TemplateTrace`); minijinja's debug
        // info would copy every template's source into each error.
        env.set_debug(false);
        filters::register(&mut env);
        env.add_function(
            "url",
            move |name: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let mut params = Vec::new();
                for key in kwargs.args() {
                    let value: Value = kwargs.get(key)?;
                    params.push((key.to_owned(), value.to_string()));
                }
                urls.reverse(name, params).map_err(|error| {
                    minijinja::Error::new(ErrorKind::InvalidOperation, format!("url(): {error}"))
                })
            },
        );
        env.add_function("static", |path: &str| crate::staticfiles::url(path));
        env.add_function("csrf_input", csrf_input);
        env.add_function("csrf_token", csrf_token);
        let loader_dirs = Arc::clone(&dirs);
        env.set_loader(move |name| loader::load(&loader_dirs, name, reload));
        let mut all = context::builtin();
        all.extend(processors);
        Self {
            env,
            dirs,
            processors: all,
            debug,
        }
    }

    /// Renders template `name` with `context` alone, without context
    /// processors: for emails, background jobs and tests.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] when the template is missing, does not parse or fails.
    pub fn render_to_string(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, TemplateError> {
        self.render_value(name, Value::from(minijinja::value::Serde(&context)))
    }

    /// Renders template `name` for `request`: the context processors' values
    /// and then `context`, which wins where both have a key.
    ///
    /// # Errors
    ///
    /// As [`Templates::render_to_string`].
    pub fn render_for(
        &self,
        request: &impl RequestHead,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, TemplateError> {
        self.render_with_processors(request.view(), name, context)
            .map(|(body, _)| body)
    }

    /// [`Templates::render_for`], and whether the page read the request's
    /// flash messages (which are then cleared).
    fn render_with_processors(
        &self,
        view: RequestView<'_>,
        name: &str,
        context: impl Serialize,
    ) -> Result<(String, bool), TemplateError> {
        let mut values = ContextValues::default();
        for processor in &self.processors {
            processor(view, &mut values);
        }
        let messages = values
            .values
            .iter()
            .find(|(key, _)| key == "messages")
            .map(|(_, value)| value.clone());
        let root = context::PageContext::root(
            Value::from(minijinja::value::Serde(&context)),
            values.values,
        );
        let body = self.render_value(name, root)?;
        let read = messages
            .as_ref()
            .and_then(|value| value.downcast_object_ref::<context::MessageList>())
            .is_some_and(context::MessageList::was_read);
        Ok((body, read))
    }

    /// [`Templates::render_for`] as a response: 200 with the content type
    /// of the template's extension (`text/html; charset=utf-8` for `.html`).
    ///
    /// # Errors
    ///
    /// The [`TemplateError`] as a [`kiln::Error`](crate::Error) (500): the
    /// debug page shows the template, the line and the lines around it;
    /// production shows nothing of it.
    pub fn response(
        &self,
        request: &impl RequestHead,
        name: &str,
        context: impl Serialize,
    ) -> Result<Response, crate::Error> {
        let view = request.view();
        let (body, messages_read) = self
            .render_with_processors(view, name, context)
            .map_err(crate::Error::internal)?;
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type(name))],
            body,
        )
            .into_response();
        if messages_read
            && let Some(site) = view.extensions.get::<RequestContext>().map(|c| &c.site)
            && let Some(cleared) =
                crate::messages::Messages::from_request(site, view.headers, view.extensions)
                    .cleared()
        {
            response.headers_mut().append(header::SET_COOKIE, cleared);
        }
        Ok(response)
    }

    /// The folders searched, in order, as error messages name them.
    #[must_use]
    pub fn searched(&self) -> Vec<String> {
        self.dirs.iter().map(SourceDir::describe).collect()
    }

    /// Compiles every template of every folder (the one each name resolves
    /// to), returning what does not compile and the folders that do not
    /// exist: what `check` reports.
    pub(crate) fn check(&self) -> (Vec<TemplateError>, Vec<String>) {
        let mut errors = Vec::new();
        let mut missing = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in self.dirs.iter() {
            if dir.is_missing() {
                missing.push(dir.describe());
                continue;
            }
            for name in dir.names().unwrap_or_default() {
                if !seen.insert(name.clone()) {
                    continue;
                }
                if let Err(error) = self.env.get_template(&name) {
                    errors.push(self.error(&name, &error));
                }
            }
        }
        (errors, missing)
    }

    fn render_value(&self, name: &str, context: Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|error| self.error(name, &error))?;
        template
            .render(context)
            .map_err(|error| self.error(name, &error))
    }

    /// minijinja's error as Kiln's, with the searched folders of a missing
    /// template, and the file and lines of a failing one in debug mode.
    fn error(&self, requested: &str, error: &minijinja::Error) -> TemplateError {
        if error.kind() == ErrorKind::TemplateNotFound {
            // minijinja names the missing template in quotes in its detail.
            let missing = error
                .detail()
                .and_then(|detail| {
                    let start = detail.find('"')? + 1;
                    let end = detail.rfind('"')?;
                    (end > start).then(|| detail[start..end].to_owned())
                })
                .unwrap_or_else(|| requested.to_owned());
            let referenced_from = error
                .name()
                .filter(|name| *name != missing)
                .map(|name| (name.to_owned(), error.line().unwrap_or(0)));
            return TemplateError::NotFound {
                name: missing,
                searched: self.searched(),
                referenced_from,
            };
        }
        // An error inside an `include` or a parent template is wrapped by
        // the including template's; the trace points at the innermost one.
        let mut innermost = error;
        let mut next = std::error::Error::source(error);
        while let Some(inner) = next {
            if let Some(inner) = inner
                .downcast_ref::<minijinja::Error>()
                .filter(|inner| inner.name().is_some())
            {
                innermost = inner;
            }
            next = inner.source();
        }
        let name = innermost.name().unwrap_or(requested).to_owned();
        let line = innermost.line();
        let mut message = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        append_causes(&mut message, std::error::Error::source(error));
        let (file, snippet) = match (self.debug, loader::read(&self.dirs, &name)) {
            (true, Some((index, source))) => (
                Some(self.dirs[index].file(&name)),
                line.map(|line| error::snippet(&source, line))
                    .unwrap_or_default(),
            ),
            _ => (None, Vec::new()),
        };
        let trace = TemplateTrace {
            name,
            file,
            line,
            message,
            snippet,
        };
        if error.kind() == ErrorKind::SyntaxError {
            TemplateError::Syntax(trace)
        } else {
            TemplateError::Render(trace)
        }
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("dirs", &self.searched())
            .field("processors", &self.processors.len())
            .finish_non_exhaustive()
    }
}

/// Renders template `name` for `request` (the `Parts` extractor or a whole
/// `Request`) with `context`: a 200 response, `text/html; charset=utf-8`
/// for an `.html` template. The project's context processors add `request`,
/// `user`, `messages` and their own values; `context` wins over them.
///
/// ```
/// use kiln::prelude::*;
/// use kiln::templates::context;
///
/// async fn index(parts: Parts) -> Result<Response, kiln::Error> {
///     kiln::templates::render(&parts, "polls/index.html", context! { questions => ["Why?"] })
/// }
/// # let _ = App::new("polls").route("/", "index", get(index));
/// ```
///
/// # Errors
///
/// A [`TemplateError`] as a 500 [`kiln::Error`](crate::Error): in debug
/// mode the error page shows the template, the line and the lines around
/// it (or, for a missing template, the folders searched); production shows
/// a plain 500 page.
pub fn render(
    request: &impl RequestHead,
    name: &str,
    context: impl Serialize,
) -> Result<Response, crate::Error> {
    let view = request.view();
    let site = match view.extensions.get::<RequestContext>() {
        Some(current) => current.site.clone(),
        None => RequestContext::with_current(|current| current.site.clone())
            .ok_or_else(|| crate::Error::internal(TemplateError::NoSite))?,
    };
    site.templates().response(&view, name, context)
}

/// `csrf_token()`: a CSRF token for the page's request (a new masked one
/// on each call), for JavaScript's `X-CSRFToken` header; see
/// [`crate::security::csrf`]. Empty when the template is rendered outside
/// a request (an email), where no form can be posted back.
fn csrf_token(state: &minijinja::State<'_, '_>) -> Result<String, minijinja::Error> {
    let Some(value) = state.lookup(crate::security::csrf::TemplateCsrf::VARIABLE) else {
        return Ok(String::new());
    };
    let Some(csrf) = value.downcast_object_ref::<crate::security::csrf::TemplateCsrf>() else {
        return Ok(String::new());
    };
    csrf.token().map_err(|error| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("csrf_token(): {error}"),
        )
    })
}

/// `csrf_input()`: the hidden form field with the CSRF token,
/// `<input type="hidden" name="csrfmiddlewaretoken" value="...">`, to put
/// inside every `<form method="post">` (first, in a multipart form).
fn csrf_input(state: &minijinja::State<'_, '_>) -> Result<Value, minijinja::Error> {
    Ok(Value::from_safe_string(csrf_input_tag(&csrf_token(state)?)))
}

/// Appends `cause` and the causes below it to a template error's message,
/// each after ": ". Both template engines' render errors.
fn append_causes(message: &mut String, mut cause: Option<&(dyn std::error::Error + 'static)>) {
    use std::fmt::Write as _;
    while let Some(inner) = cause {
        let _ = write!(message, ": {inner}");
        cause = inner.source();
    }
}

/// The hidden CSRF field for `token`, or nothing for no token (a page
/// rendered outside a request). Both template engines' `csrf_input()`.
fn csrf_input_tag(token: &str) -> String {
    if token.is_empty() {
        return String::new();
    }
    // The token is base64url: nothing in it needs escaping.
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{token}\">",
        crate::security::csrf::FORM_FIELD
    )
}

/// Autoescaping by extension: HTML escaping for `.html`, `.htm` and `.xml`
/// (also under a `.j2` or `.jinja` suffix), none for the rest.
fn auto_escape(name: &str) -> AutoEscape {
    let name = name
        .strip_suffix(".j2")
        .or_else(|| name.strip_suffix(".jinja"))
        .unwrap_or(name);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html" | "htm" | "xml") => AutoEscape::Html,
        _ => AutoEscape::None,
    }
}

/// Writes values into the output, escaping text for HTML as Django does
/// (`&`, `<`, `>`, `"`, `'`) where autoescaping is on. minijinja's own
/// escaping also turns `/` into `&#x2f;`, which would make every URL in an
/// `href` unreadable in the page source.
fn formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if let (AutoEscape::Html, false) = (state.auto_escape(), value.is_safe()) {
        if let Some(text) = value.as_str() {
            return crate::http::escape_into(out, text).map_err(minijinja::Error::from);
        }
        // An object shown as text (a flash message): its text, escaped the
        // same way.
        if value.as_object().is_some() {
            return crate::http::escape_into(out, &value.to_string())
                .map_err(minijinja::Error::from);
        }
    }
    minijinja::escape_formatter(out, state, value)
}

/// The content type of a rendered template, by its extension. Constants,
/// because `HeaderValue::from_static` checks its text on every call.
fn content_type(name: &str) -> HeaderValue {
    const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    const XML: HeaderValue = HeaderValue::from_static("application/xml; charset=utf-8");
    const JSON: HeaderValue = HeaderValue::from_static("application/json");
    const CSS: HeaderValue = HeaderValue::from_static("text/css; charset=utf-8");
    const JS: HeaderValue = HeaderValue::from_static("text/javascript; charset=utf-8");
    const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("txt") => TEXT,
        Some("xml") => XML,
        Some("json") => JSON,
        Some("css") => CSS,
        Some("js") => JS,
        _ => HTML,
    }
}

/// A templates folder of the calling crate, relative to its `Cargo.toml`
/// (`"templates"`, `"src/polls/templates"`), for
/// [`Project::templates`](crate::Project::templates) and
/// [`App::templates`](crate::App::templates).
///
/// Release builds (without `debug_assertions`) embed the folder's files in
/// the binary; debug builds record only the path and read the files at run
/// time, so editing a template needs no rebuild. A file added to the folder
/// reaches a release binary on the next build that recompiles the crate
/// (`cargo` tracks the embedded files, not the folder).
#[macro_export]
macro_rules! templates_dir {
    ($path:literal) => {{
        #[cfg(debug_assertions)]
        let embedded: ::core::option::Option<&'static [(&'static str, &'static str)]> =
            ::core::option::Option::None;
        #[cfg(not(debug_assertions))]
        let embedded: ::core::option::Option<&'static [(&'static str, &'static str)]> =
            ::core::option::Option::Some($crate::__embed_dir!($path));
        $crate::templates::TemplateDir::new(
            ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", $path),
            $path,
            embedded,
        )
    }};
}

/// As [`templates_dir!`], but embeds the files in every build, debug too.
#[macro_export]
macro_rules! embed_templates {
    ($path:literal) => {
        $crate::templates::TemplateDir::new(
            ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", $path),
            $path,
            ::core::option::Option::Some($crate::__embed_dir!($path)),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoescape_by_extension() {
        assert_eq!(auto_escape("a/b.html"), AutoEscape::Html);
        assert_eq!(auto_escape("b.xml.j2"), AutoEscape::Html);
        assert_eq!(auto_escape("mail.txt"), AutoEscape::None);
        assert_eq!(content_type("mail.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("page.html"), "text/html; charset=utf-8");
    }
}
