//! File uploads: `multipart/form-data` bodies, each file streamed to a
//! temporary file on disk as it arrives, never held whole in memory.
//!
//! The [`MultipartForm`] extractor reads the whole body before the handler
//! runs, enforcing the limits in the settings as it goes:
//!
//! | limit | setting | when exceeded |
//! |---|---|---|
//! | bytes in one file | `upload_max_file_size` (50 MiB) | 413 |
//! | number of files | `upload_max_files` (10) | 413 |
//! | bytes of all text fields together | `request_body_limit` (2 MiB) | 413 |
//!
//! A body that is not `multipart/form-data` gets 415; a malformed or
//! truncated one gets 400. On any error every temporary file written so far
//! is deleted, and so is each one the handler does not keep: an
//! [`UploadedFile`] is a temporary file until it is saved with a
//! [`Storage`](crate::storage::Storage) or [`UploadedFile::persist`].
//!
//! # Examples
//!
//! ```no_run
//! use kiln::prelude::*;
//! use kiln::storage::{FileSystemStorage, Storage};
//! use kiln::uploads::MultipartForm;
//!
//! async fn upload(site: Site, form: MultipartForm) -> Result<String, kiln::Error> {
//!     let title = form.field("title").unwrap_or("untitled");
//!     let Some(video) = form.file("video") else {
//!         return Err(kiln::Error::bad_request("choose a video to upload"));
//!     };
//!     let storage = FileSystemStorage::media(&site);
//!     let name = storage.save(&format!("videos/{}", video.file_name()), video).await?;
//!     Ok(format!("{title}: saved as {}", storage.url(&name)))
//! }
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use crate::http::{Error, RequestContext};

/// A `multipart/form-data` body: its text fields and its files; see the
/// [module docs](self).
#[derive(Debug, Default)]
pub struct MultipartForm {
    fields: BTreeMap<String, Vec<String>>,
    files: Vec<UploadedFile>,
}

impl MultipartForm {
    /// The first value of the text field `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.first().map(String::as_str)
    }

    /// Every value of the text field `name` (a multiple select, checkboxes).
    #[must_use]
    pub fn field_values(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every text field and its values.
    #[must_use]
    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.fields
    }

    /// The first file sent in the field `name`. A file input left empty by
    /// the browser (no name, no content) is not a file.
    #[must_use]
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|file| file.field == name)
    }

    /// Every file, in the order sent.
    #[must_use]
    pub fn files(&self) -> &[UploadedFile] {
        &self.files
    }

    /// Takes the files out, to keep them past the request.
    #[must_use]
    pub fn into_files(self) -> Vec<UploadedFile> {
        self.files
    }
}

/// One uploaded file, in a temporary file that is deleted when this is
/// dropped unless it was persisted or saved to a storage.
#[derive(Debug)]
pub struct UploadedFile {
    field: String,
    file_name: String,
    content_type: Option<String>,
    size: u64,
    temp: tempfile::NamedTempFile,
}

impl UploadedFile {
    /// The form field it was sent in.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The file's name as the client gave it, reduced to a safe base name:
    /// no folders, no control characters, no leading dots; `upload` when
    /// nothing is left. Never trust it further than that.
    #[must_use]
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The content type the client claimed (not checked against the bytes).
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Its size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the temporary file is, to read it.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Moves the file to `path` (replacing what is there), keeping it.
    ///
    /// # Errors
    ///
    /// When it cannot be moved or copied there; the temporary file is then
    /// deleted.
    pub fn persist(self, path: &Path) -> std::io::Result<()> {
        match self.temp.persist(path) {
            Ok(_) => Ok(()),
            // Another file system: copy, then the temporary file goes.
            Err(error) => std::fs::copy(error.file.path(), path).map(drop),
        }
    }
}

/// The limits an upload is read with, and where its files go.
#[derive(Debug, Clone)]
struct Limits {
    file_size: u64,
    files: usize,
    text: usize,
    temp_dir: Option<std::path::PathBuf>,
}

impl Limits {
    fn of(settings: &crate::Settings) -> Self {
        Self {
            file_size: settings.upload_max_file_size.0,
            files: settings.upload_max_files,
            text: settings.request_body_limit.as_usize(),
            temp_dir: settings.upload_temp_dir.clone(),
        }
    }

    /// The current site's, or the defaults outside Kiln's stack.
    fn current() -> Self {
        RequestContext::with_current(|context| Self::of(context.site.settings()))
            .unwrap_or_else(|| Self::of(&crate::Settings::default()))
    }
}

impl<S: Send + Sync> FromRequest<S> for MultipartForm {
    type Rejection = Error;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a multipart/form-data body (a form with enctype=\"multipart/form-data\")",
            )
        })?;
        let stream = request.into_body().into_data_stream();
        read(multer::Multipart::new(stream, boundary), Limits::current()).await
    }
}

async fn read(
    mut multipart: multer::Multipart<'static>,
    limits: Limits,
) -> Result<MultipartForm, Error> {
    let mut form = MultipartForm::default();
    let mut text_bytes = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let Some(client_name) = field.file_name().map(str::to_owned) else {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                text_bytes += chunk.len();
                if text_bytes > limits.text {
                    return Err(too_large(format!(
                        "the form's text fields are over {} bytes together (request_body_limit)",
                        limits.text
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value)
                .map_err(|_| Error::bad_request(format!("the field `{name}` is not UTF-8 text")))?;
            form.fields.entry(name).or_default().push(value);
            continue;
        };
        if form.files.len() == limits.files {
            return Err(too_large(format!(
                "more than {} files in one request (upload_max_files)",
                limits.files
            )));
        }
        let content_type = field.content_type().map(ToString::to_string);
        let mut temp = match &limits.temp_dir {
            Some(dir) => tempfile::NamedTempFile::new_in(dir),
            None => tempfile::NamedTempFile::new(),
        }
        .map_err(Error::internal)?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            size += chunk.len() as u64;
            if size > limits.file_size {
                return Err(too_large(format!(
                    "the file `{}` is over {} bytes (upload_max_file_size)",
                    safe_file_name(&client_name),
                    limits.file_size
                )));
            }
            // A blocking write of one chunk (at most a few tens of KiB)
            // to a local temporary file.
            temp.write_all(&chunk).map_err(Error::internal)?;
        }
        if client_name.is_empty() && size == 0 {
            continue; // a file input left empty
        }
        temp.flush().map_err(Error::internal)?;
        form.files.push(UploadedFile {
            field: name,
            file_name: safe_file_name(&client_name),
            content_type,
            size,
            temp,
        });
    }
    Ok(form)
}

fn malformed(error: multer::Error) -> Error {
    match error {
        multer::Error::StreamReadFailed(source) => {
            // The body stream failed: a client gone, or a limit of the
            // HTTP core.
            Error::bad_request("the upload was cut off before its end").with_source(source)
        }
        other => Error::bad_request(format!("malformed multipart body: {other}")),
    }
}

fn too_large(message: String) -> Error {
    Error::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// The base name of a client-given file name, safe to use in a path:
/// folders (`/` and `\`) dropped, control characters and leading dots
/// removed, at most 200 bytes; `upload` when nothing is left.
#[must_use]
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned();
    let mut end = cleaned.len().min(200);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    let cleaned = &cleaned[..end];
    if cleaned.is_empty() {
        "upload".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_file_names_are_reduced_to_a_safe_base_name() {
        for (given, safe) in [
            ("clip.mp4", "clip.mp4"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\movie.mov", "movie.mov"),
            ("..", "upload"),
            (".htaccess", "htaccess"),
            ("a\r\nb.txt", "ab.txt"),
            ("", "upload"),
            ("dir/", "upload"),
        ] {
            assert_eq!(safe_file_name(given), safe, "{given:?}");
        }
        assert!(safe_file_name(&"é".repeat(300)).len() <= 200);
    }
}
