//! Template errors: what went wrong, in which template, on which line, with
//! the lines around it for the debug page.

use std::fmt;

/// Why a template could not be found, compiled or rendered.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TemplateError {
    /// No templates folder has a template of that name.
    NotFound {
        /// The name asked for.
        name: String,
        /// The folders searched, in order.
        searched: Vec<String>,
        /// The template and line that referenced it (`extends`, `include`), if not the view.
        referenced_from: Option<(String, usize)>,
    },
    /// The template does not parse.
    Syntax(TemplateTrace),
    /// The template parsed but failed while rendering (an unknown filter,
    /// a failing `url()`, a filter given a value it cannot use, ...).
    Render(TemplateTrace),
    /// `render` was called for a request that did not come through Kiln's stack.
    NoSite,
}

/// Where a template failed: the template, the file, the line, and the
/// lines around it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TemplateTrace {
    /// The template name (`polls/detail.html`).
    pub name: String,
    /// The file it was read from, when known.
    pub file: Option<String>,
    /// The line, counting from 1, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// Up to three lines either side of `line` (empty outside debug mode).
    pub snippet: Vec<SnippetLine>,
}

/// One line of a [`TemplateTrace`]'s snippet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetLine {
    /// Its number, counting from 1.
    pub number: usize,
    /// Its text.
    pub text: String,
    /// Whether the error is on this line.
    pub marked: bool,
}

/// Lines of context shown either side of the failing line.
const SNIPPET_CONTEXT: usize = 3;

/// The lines of `source` around `line`, `line` marked.
pub(crate) fn snippet(source: &str, line: usize) -> Vec<SnippetLine> {
    let first = line.saturating_sub(SNIPPET_CONTEXT).max(1);
    source
        .lines()
        .enumerate()
        .map(|(index, text)| (index + 1, text))
        .skip(first - 1)
        .take(line + SNIPPET_CONTEXT + 1 - first)
        .map(|(number, text)| SnippetLine {
            number,
            text: text.to_owned(),
            marked: number == line,
        })
        .collect()
}

impl TemplateError {
    /// The trace of a syntax or render error.
    #[must_use]
    pub fn trace(&self) -> Option<&TemplateTrace> {
        match self {
            Self::Syntax(trace) | Self::Render(trace) => Some(trace),
            _ => None,
        }
    }
}

impl fmt::Display for TemplateTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                name,
                searched,
                referenced_from,
            } => {
                write!(f, "template `{name}` does not exist")?;
                if let Some((from, line)) = referenced_from {
                    write!(f, " (referenced from `{from}`, line {line})")?;
                }
                if searched.is_empty() {
                    write!(f, "; no templates folder is registered\n  fix: add one with `Project::templates(kiln::templates_dir!(\"templates\"))` or `App::templates(...)`")
                } else {
                    write!(f, "; searched, in order: {}", searched.join(", "))
                }
            }
            Self::Syntax(trace) => write!(f, "syntax error in template {trace}"),
            Self::Render(trace) => write!(f, "error rendering template {trace}"),
            Self::NoSite => f.write_str(
                "templates::render needs a request served by Kiln's stack (the site is not in its extensions); outside a request use `site.templates()`",
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_marks_the_line_and_keeps_three_either_side() {
        let source = (1..=10)
            .map(|n| format!("line {n}"))
            .collect::<Vec<_>>()
            .join("\n");
        let lines = snippet(&source, 5);
        assert_eq!(lines.first().unwrap().number, 2);
        assert_eq!(lines.last().unwrap().number, 8);
        assert_eq!(lines.iter().filter(|l| l.marked).count(), 1);
        assert!(lines.iter().any(|l| l.marked && l.text == "line 5"));
        assert_eq!(snippet(&source, 1).first().unwrap().number, 1);
    }
}
