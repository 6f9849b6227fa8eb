//! Compiled templates for hot pages: the same Jinja-like syntax, checked
//! and turned into Rust code at build time by [askama](https://askama.rs),
//! with no interpreter and no context to serialize at run time. Behind the
//! `compiled-templates` feature.
//!
//! [`#[kiln::template]`](crate::template) on a struct makes it a template
//! whose fields are the context, and a value a handler can return. The
//! template file is found under the crate's `templates/` folder (askama's
//! default; an `askama.toml` beside `Cargo.toml` adds folders). Autoescaping
//! is on for `.html`, `.htm`, `.xml`, `.svg` and `.j2`/`.jinja` names.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//!
//! struct Fortune {
//!     id: i32,
//!     message: String,
//! }
//!
//! // In a real app: `path = "fortunes.html"`, a file in `templates/`.
//! #[kiln::template(ext = "html", source = "<table>{% for fortune in fortunes %}<tr><td>{{ fortune.id }}</td><td>{{ fortune.message }}</td></tr>{% endfor %}</table>")]
//! struct FortunesPage {
//!     fortunes: Vec<Fortune>,
//! }
//!
//! async fn fortunes() -> FortunesPage {
//!     let fortunes = vec![Fortune { id: 1, message: "<script>".to_owned() }];
//!     FortunesPage { fortunes }
//! }
//!
//! # let _ = App::new("fortunes").route("/fortunes", "fortunes", get(fortunes));
//! let page = FortunesPage { fortunes: vec![Fortune { id: 1, message: "<b>".to_owned() }] };
//! let html = kiln::templates::compiled::render(&page)?;
//! assert_eq!(html, "<table><tr><td>1</td><td>&#60;b&#62;</td></tr></table>");
//! # Ok::<(), kiln::templates::TemplateError>(())
//! ```
//!
//! In templates, besides the struct's fields (see [`TemplateFunctions`]):
//! `csrf_input()`, `csrf_token()`, `url("polls:detail", [("id", 3)])` and
//! `static("polls/style.css")`, as in minijinja templates except for the
//! parameters of `url()`, which askama has no keyword arguments for.
//! They find the request through the task that serves it, so they work in
//! a page rendered while a handler runs, or returned by it.

use std::fmt;

use askama::{FastWritable, Values};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{TemplateError, TemplateTrace};
use crate::http::RequestContext;
use crate::urls::UrlParams;

pub use askama::Template;

/// A compiled template Kiln can serve: what
/// [`#[kiln::template]`](crate::template) implements, with askama's
/// [`Template`] and axum's `IntoResponse`.
pub trait CompiledTemplate: Template {
    /// The template's name: its `path`, or `inline.<ext>` for an inline
    /// `source`. It names the template in errors, and its extension gives
    /// the response's content type (`text/html; charset=utf-8` for `.html`).
    const NAME: &'static str;
}

/// Renders `template` to a string.
///
/// # Errors
///
/// [`TemplateError::Render`] naming the template, when a value fails to
/// display or a function fails (`url()` of an unknown route).
pub fn render<T: CompiledTemplate + ?Sized>(template: &T) -> Result<String, TemplateError> {
    template.render().map_err(|error| {
        let mut message = error.to_string();
        // A custom error displays as its inner error, which is also its
        // source: the chain starts below it.
        let cause = match &error {
            askama::Error::Custom(inner) => inner.source(),
            other => std::error::Error::source(other),
        };
        super::append_causes(&mut message, cause);
        // askama's generated code keeps no template line numbers at run
        // time: the trace names the template and what failed.
        TemplateError::Render(TemplateTrace {
            name: T::NAME.to_owned(),
            file: None,
            line: None,
            message,
            snippet: Vec::new(),
        })
    })
}

/// Renders `template` as a 200 response with the content type of its
/// extension: what returning the template from a handler does.
///
/// # Errors
///
/// The [`TemplateError`] of [`render`] as a 500 [`kiln::Error`](crate::Error):
/// the debug page names the template and the failure; production shows a
/// plain 500 page.
pub fn response<T: CompiledTemplate + ?Sized>(template: &T) -> Result<Response, crate::Error> {
    let body = render(template).map_err(crate::Error::internal)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, super::content_type(T::NAME))],
        body,
    )
        .into_response())
}

/// The functions every compiled template can call, as minijinja templates
/// do: askama turns `{{ csrf_input() }}` into `self.csrf_input()`, and this
/// trait, implemented for every template and in [`kiln::prelude`](crate::prelude),
/// provides it. A module that does not glob-import the prelude imports
/// the trait (`use kiln::templates::compiled::TemplateFunctions;`).
pub trait TemplateFunctions {
    /// `{{ csrf_input() }}`: the hidden form field with the CSRF token, to
    /// put inside every `<form method="post">`; empty outside a request.
    /// See [`crate::security::csrf`].
    fn csrf_input(&self) -> CsrfOutput {
        CsrfOutput(current_csrf_token().map(|token| super::csrf_input_tag(&token)))
    }

    /// `{{ csrf_token() }}`: a CSRF token for JavaScript's `X-CSRFToken`
    /// header (a new masked one on each call); empty outside a request.
    fn csrf_token(&self) -> CsrfOutput {
        CsrfOutput(current_csrf_token())
    }

    /// `{{ url("polls:detail", [("id", question.id)]) }}`: the URL of a
    /// named route ([`crate::urls::reverse`]); `()` for a route without
    /// parameters. An unknown name or a wrong parameter fails the page with
    /// the reason.
    fn url(&self, name: &str, params: impl UrlParams) -> UrlOutput {
        UrlOutput(crate::urls::reverse(name, params).map_err(|error| format!("url(): {error}")))
    }

    /// `{{ static("polls/style.css") }}`: the static file's URL, hashed in
    /// production ([`crate::staticfiles::url`]).
    fn r#static(&self, path: &str) -> String {
        crate::staticfiles::url(path)
    }
}

impl<T: Template + ?Sized> TemplateFunctions for T {}

/// A new masked token for the request being served, or nothing outside one.
fn current_csrf_token() -> Result<String, String> {
    RequestContext::with_current(|context| context.csrf.token())
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|error| format!("csrf_input(): {error}"))
}

/// What `csrf_input()` and `csrf_token()` write: markup Kiln made (a
/// base64url token in a fixed tag), so written unescaped; or the error
/// that fails the page (the system's random number generator failed).
#[derive(Debug)]
pub struct CsrfOutput(Result<String, String>);

impl askama::filters::HtmlSafe for CsrfOutput {}

/// What `url()` writes: the URL (escaped as any value), or the error that
/// fails the page.
#[derive(Debug)]
pub struct UrlOutput(Result<String, String>);

impl UrlOutput {
    /// The URL, or the reason there is none.
    ///
    /// # Errors
    ///
    /// The reason `url()` failed, naming the route.
    pub fn as_result(&self) -> Result<&str, &str> {
        self.0.as_deref().map_err(String::as_str)
    }
}

/// askama writes a value through [`FastWritable`] where it can, which
/// carries the failure's text to the error page; `Display` (`to_string()`)
/// can only say that formatting failed.
macro_rules! fallible_output {
    ($type:ty) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match &self.0 {
                    Ok(text) => f.write_str(text),
                    Err(_) => Err(fmt::Error),
                }
            }
        }

        impl FastWritable for $type {
            fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn Values) -> askama::Result<()> {
                match &self.0 {
                    Ok(text) => Ok(dest.write_str(text)?),
                    Err(message) => Err(askama::Error::custom(message.clone())),
                }
            }
        }
    };
}

fallible_output!(CsrfOutput);
fallible_output!(UrlOutput);
