//! Error pages: a detailed page in debug mode, a plain one in production, and
//! JSON for clients that ask for it.

use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::urls::{RouteInfo, UrlRegistry};

/// Headers whose values never appear on a debug page.
const MASKED_HEADERS: [&str; 5] = [
    "cookie",
    "authorization",
    "proxy-authorization",
    "x-csrf-token",
    "x-csrftoken",
];

/// Everything an error page may show.
pub(crate) struct ErrorPage<'a> {
    pub(crate) status: StatusCode,
    pub(crate) request_id: &'a str,
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    /// The request headers; only kept in debug mode.
    pub(crate) headers: Option<&'a HeaderMap>,
    pub(crate) public: Option<&'a str>,
    pub(crate) chain: &'a [String],
    pub(crate) panic: bool,
    /// A template error among the causes: its snippet or searched folders.
    pub(crate) template: Option<&'a crate::templates::TemplateError>,
    pub(crate) debug: bool,
    pub(crate) urls: &'a UrlRegistry,
}

impl ErrorPage<'_> {
    pub(crate) fn render(&self, wants_json: bool) -> Response {
        if wants_json {
            (self.status, axum::Json(self.json())).into_response()
        } else {
            let html = if self.debug {
                self.debug_html()
            } else {
                self.plain_html()
            };
            (
                self.status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response()
        }
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// What the client may be told: the public message of a 4xx; never a 5xx's internals.
    fn client_message(&self) -> Option<&str> {
        self.public
            .filter(|_| self.status.is_client_error() || self.debug)
    }

    fn json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.client_message().unwrap_or(self.title()),
            "request_id": self.request_id,
        });
        if self.debug {
            body["chain"] = self.chain.into();
        }
        body
    }

    fn plain_html(&self) -> String {
        let mut html = page_head(&format!("{} ({})", self.title(), self.status.as_u16()));
        let _ = write!(html, "<h1>{}</h1>", escape(self.title()));
        if let Some(message) = self.client_message() {
            let _ = write!(html, "<p>{}</p>", escape(message));
        }
        let _ = write!(
            html,
            "<p class=\"id\">Request id: <code>{}</code></p></body></html>",
            escape(self.request_id)
        );
        html
    }

    fn debug_html(&self) -> String {
        let mut html = page_head(&format!("{} at {}", self.title(), self.uri.path()));
        let _ = write!(
            html,
            "<header><h1>{} <small>{}</small></h1><p>{} {}</p></header>",
            self.status.as_u16(),
            escape(self.title()),
            escape(self.method.as_str()),
            escape(&self.uri.to_string()),
        );
        if self.panic {
            html.push_str("<p class=\"hint\">The handler panicked. The server caught it and keeps serving other requests.</p>");
        }
        if !self.chain.is_empty() {
            html.push_str("<h2>Error</h2><ol class=\"chain\">");
            for cause in self.chain {
                let _ = write!(html, "<li><pre>{}</pre></li>", escape(cause));
            }
            html.push_str("</ol>");
        }
        if let Some(template) = self.template {
            template_section(&mut html, template);
        }
        match self.urls.resolve(self.uri.path()) {
            Some(route) => {
                let _ = write!(
                    html,
                    "<h2>Matched route</h2><p><code>{}</code> {} &rarr; <code>{}</code></p>",
                    escape(&route.pattern.to_string()),
                    route.name.as_deref().map(escape).unwrap_or_default(),
                    escape(&route.handler),
                );
                if self.status == StatusCode::METHOD_NOT_ALLOWED {
                    let _ = write!(
                        html,
                        "<p class=\"hint\">This route answers {}; the request used {}.</p>",
                        escape(&route.methods.join(", ")),
                        escape(self.method.as_str())
                    );
                }
            }
            None if self.status == StatusCode::NOT_FOUND => {
                let _ = write!(
                    html,
                    "<p class=\"hint\">No route matches <code>{}</code>. These routes exist, tried in this order:</p>",
                    escape(self.uri.path())
                );
                route_table(&mut html, self.urls.routes());
            }
            None => {}
        }
        if let Some(headers) = self.headers {
            html.push_str("<h2>Request headers</h2><table>");
            for (name, value) in headers {
                let shown = if MASKED_HEADERS.contains(&name.as_str()) {
                    "********".to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                let _ = write!(
                    html,
                    "<tr><th>{}</th><td>{}</td></tr>",
                    escape(name.as_str()),
                    escape(&shown)
                );
            }
            html.push_str("</table>");
        }
        let _ = write!(
            html,
            "<footer>Request id <code>{}</code>. You see this page because <code>debug = true</code>; production shows a plain page.</footer></body></html>",
            escape(self.request_id)
        );
        html
    }
}

/// The failing template: its name, file and line with the lines around it,
/// or the folders searched for a missing one.
fn template_section(html: &mut String, error: &crate::templates::TemplateError) {
    use crate::templates::TemplateError;

    match error {
        TemplateError::NotFound { name, searched, .. } => {
            let _ = write!(
                html,
                "<h2>Template <code>{}</code> not found</h2><p class=\"hint\">Folders searched, in order:</p><ol class=\"searched\">",
                escape(name)
            );
            for folder in searched {
                let _ = write!(html, "<li><code>{}</code></li>", escape(folder));
            }
            html.push_str("</ol>");
        }
        other => {
            let Some(trace) = other.trace() else { return };
            let _ = write!(html, "<h2>Template <code>{}</code>", escape(&trace.name));
            if let Some(line) = trace.line {
                let _ = write!(html, ", line {line}");
            }
            html.push_str("</h2>");
            if let Some(file) = &trace.file {
                let _ = write!(html, "<p><code>{}</code></p>", escape(file));
            }
            let _ = write!(html, "<p class=\"hint\">{}</p>", escape(&trace.message));
            if !trace.snippet.is_empty() {
                html.push_str("<pre class=\"snippet\">");
                for line in &trace.snippet {
                    let (open, close) = if line.marked {
                        ("<mark>&gt; ", "</mark>")
                    } else {
                        ("  ", "")
                    };
                    let _ = writeln!(
                        html,
                        "{open}{:>4} | {}{close}",
                        line.number,
                        escape(&line.text)
                    );
                }
                html.push_str("</pre>");
            }
        }
    }
}

fn route_table(html: &mut String, routes: &[RouteInfo]) {
    html.push_str("<table><tr><th>Pattern</th><th>Name</th><th>Methods</th><th>Handler</th></tr>");
    for route in routes {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&route.pattern.to_string()),
            escape(route.name.as_deref().unwrap_or("")),
            escape(&route.methods.join(", ")),
            escape(&route.handler),
        );
    }
    html.push_str("</table>");
}

fn page_head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}}\
         header{{background:#fbe9e7;padding:.5rem 1rem;border-radius:6px}}h1 small{{font-weight:normal;color:#555}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}}\
         pre{{white-space:pre-wrap;margin:0}}.snippet{{background:#f6f6f6;padding:.5rem}}mark{{background:#ffcdd2;display:block}}.hint{{background:#fff8e1;padding:.5rem}}.id,footer{{color:#666}}</style>\
         </head><body>",
        escape(title)
    )
}

/// `text` with HTML's special characters replaced by entities, safe to put
/// in an element or a quoted attribute.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = escape_into(&mut out, text);
    out
}

/// Writes `text` escaped as [`escape`] does, in runs between the special
/// characters (`&`, `<`, `>`, `"`, `'`), without building a new string.
///
/// # Errors
///
/// When `out` fails to write.
pub fn escape_into(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Most text has nothing to escape: skip it eight bytes at a time
        // rather than matching every byte (on the fortunes page, about 540
        // instead of 650 instructions a message, callgrind).
        if let Some(word) = bytes.get(index..index + 8)
            && let Ok(word) = <[u8; 8]>::try_from(word)
            && !has_special_byte(u64::from_le_bytes(word))
        {
            index += 8;
            continue;
        }
        let entity = match bytes[index] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => {
                index += 1;
                continue;
            }
        };
        out.write_str(&text[start..index])?;
        out.write_str(entity)?;
        index += 1;
        start = index;
    }
    out.write_str(&text[start..])
}

/// Whether one of the eight bytes of `word` is `&`, `<`, `>`, `"` or `'`.
/// `&`/`'` and `<`/`>` differ in one bit each, so three "has a zero byte"
/// tests cover the five, joined into one branch. A borrow may mark a byte
/// next to a match, never a word without one: [`escape_into`] then looks
/// at the bytes one by one.
const fn has_special_byte(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    /// The high bit of each zero byte of `v` (and maybe of bytes above one).
    const fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v
    }
    let quote = word ^ (ONES * 0x22);
    let amp_or_apostrophe = (word ^ (ONES * 0x26)) & (ONES * 0xFE);
    let angle = (word ^ (ONES * 0x3C)) & (ONES * 0xFD);
    (zero_bytes(quote) | zero_bytes(amp_or_apostrophe) | zero_bytes(angle)) & (ONES * 0x80) != 0
}

/// Whether the client prefers JSON to HTML (API clients, `fetch` with
/// `Accept: application/json`), from its `Accept` header.
pub(crate) fn wants_json(accept: Option<&HeaderValue>) -> bool {
    let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_finds_specials_at_every_position_of_a_word() {
        // The word-at-a-time scan must not miss a special byte wherever it
        // falls, nor touch the bytes that differ from one by a bit.
        for special in ['&', '<', '>', '"', '\''] {
            for len in 0..20 {
                for at in 0..len {
                    let mut text: Vec<char> = "ab%=?;.(é フ".chars().cycle().take(len).collect();
                    text[at] = special;
                    let text: String = text.into_iter().collect();
                    let naive: String = text
                        .chars()
                        .map(|c| match c {
                            '&' => "&amp;".to_owned(),
                            '<' => "&lt;".to_owned(),
                            '>' => "&gt;".to_owned(),
                            '"' => "&quot;".to_owned(),
                            '\'' => "&#x27;".to_owned(),
                            c => c.to_string(),
                        })
                        .collect();
                    assert_eq!(escape(&text), naive, "{text:?}");
                }
            }
        }
        assert_eq!(
            escape("$%()*+,-./0123456789:;=?@[]"),
            "$%()*+,-./0123456789:;=?@[]"
        );
    }

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#x27;x&#x27;)&amp;&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn wants_json_only_when_html_is_not_acceptable() {
        assert!(!wants_json(None));
        let json = HeaderValue::from_static("application/json");
        assert!(wants_json(Some(&json)));
        let both = HeaderValue::from_static("text/html,application/json");
        assert!(!wants_json(Some(&both)));
    }
}
