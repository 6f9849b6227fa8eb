//! What a browser submitted: the text fields and files of a form body,
//! read strictly (a body that is not UTF-8 is a 400, not replacement
//! characters).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, header};
use percent_encoding::percent_decode;

use crate::http::Error;
use crate::uploads::{MultipartForm, UploadedFile};

/// The submitted fields and files of a form, before validation.
///
/// As an extractor it reads the query string of a `GET` or `HEAD` request
/// and the body of any other: `application/x-www-form-urlencoded` (413
/// beyond `request_body_limit`, 400 when not UTF-8 text) or
/// `multipart/form-data` (through [`MultipartForm`], with its limits). Any
/// other content type is a 415.
#[derive(Debug, Default)]
pub struct FormInput {
    fields: BTreeMap<String, Vec<String>>,
    files: Vec<UploadedFile>,
}

impl FormInput {
    /// No fields.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Input with these text fields, as a test or a view builds it.
    #[must_use]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut input = Self::new();
        for (name, value) in pairs {
            input
                .fields
                .entry(name.into())
                .or_default()
                .push(value.into());
        }
        input
    }

    /// Parses an `application/x-www-form-urlencoded` body or query string.
    ///
    /// # Errors
    ///
    /// When a name or value does not decode to UTF-8 text.
    pub fn from_urlencoded(body: &[u8]) -> Result<Self, Error> {
        let mut input = Self::new();
        for pair in body
            .split(|&byte| byte == b'&')
            .filter(|pair| !pair.is_empty())
        {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            input.fields.entry(name).or_default().push(value);
        }
        Ok(input)
    }

    /// The text fields and files of a multipart body.
    #[must_use]
    pub fn from_multipart(form: MultipartForm) -> Self {
        let fields = form.fields().clone();
        Self {
            fields,
            files: form.into_files(),
        }
    }

    /// The first value sent for `name`.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.first().map(String::as_str)
    }

    /// Every value sent for `name` (several for a multiple choice), in
    /// the order sent.
    #[must_use]
    pub fn texts(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    /// Takes out the text fields whose names start with `prefix`, as input
    /// of their own with the prefix removed (one form of a formset; files
    /// stay behind, as formsets do not carry file fields yet).
    pub(crate) fn take_prefixed(&mut self, prefix: &str) -> Self {
        let names: Vec<String> = self
            .fields
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name.clone())
            .collect();
        let mut taken = Self::new();
        for name in names {
            if let Some(values) = self.fields.remove(&name) {
                taken.fields.insert(name[prefix.len()..].to_owned(), values);
            }
        }
        taken
    }

    /// Whether a file was sent for `name`.
    #[must_use]
    pub fn has_file(&self, name: &str) -> bool {
        self.files.iter().any(|file| file.field() == name)
    }

    /// Takes the first file sent for `name` out of the input.
    pub fn take_file(&mut self, name: &str) -> Option<UploadedFile> {
        let at = self.files.iter().position(|file| file.field() == name)?;
        Some(self.files.remove(at))
    }

    /// The names of the files sent, to re-display that a file came.
    pub(crate) fn file_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .map(|file| (file.field(), file.file_name()))
    }
}

fn decode(raw: &[u8]) -> Result<String, Error> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            Error::bad_request(
                "the form body is not UTF-8 text; fix: send the form from a page served as \
                 UTF-8 (`<meta charset=\"utf-8\">`)",
            )
        })
}

impl<S: Send + Sync> FromRequest<S> for FormInput {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            let query = request
                .uri()
                .query()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            return Self::from_urlencoded(&query);
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "multipart/form-data" => Ok(Self::from_multipart(
                MultipartForm::from_request(request, state).await?,
            )),
            "application/x-www-form-urlencoded" => {
                // Bytes answers 413 past the body limit and 400 when the
                // body is cut off.
                let body = Bytes::from_request(request, state)
                    .await
                    .map_err(|rejection| Error::new(rejection.status(), rejection.body_text()))?;
                Self::from_urlencoded(&body)
            }
            _ => Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a form body (application/x-www-form-urlencoded or \
                 multipart/form-data); fix: submit an HTML form, or send one of those content types",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_bodies_decode_plus_and_percent_escapes() {
        let input =
            FormInput::from_urlencoded(b"name=J%C3%BCrgen+Doe&empty=&flag&name=second").unwrap();
        assert_eq!(input.text("name"), Some("Jürgen Doe"));
        assert_eq!(input.text("empty"), Some(""));
        assert_eq!(input.text("flag"), Some(""));
        assert_eq!(input.text("missing"), None);
    }

    #[test]
    fn invalid_utf8_is_a_bad_request() {
        let error = FormInput::from_urlencoded(b"name=%FF%FE").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        let error = FormInput::from_urlencoded(b"name=\xff").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
