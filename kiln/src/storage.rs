//! Where uploaded files are kept: the [`Storage`] interface, and
//! [`FileSystemStorage`], a folder on disk (`media_root`, served under
//! `media_url`), the default.
//!
//! The interface names files by relative, `/`-separated names
//! (`videos/clip.mp4`) and says nothing of disks, so an object store (S3,
//! GCS) can implement it without changing the code that saves files.
//!
//! Saving never overwrites: when the name is taken, a random suffix is added
//! before the extension (`clip_k3x9q2a.mp4`), as Django does, and the name
//! actually used is returned. A file is written to a temporary file beside
//! its destination and renamed into place, so a reader never sees half of
//! it and a failed save leaves nothing behind.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use crate::http::Error;
use crate::project::Site;
use crate::uploads::UploadedFile;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The name could leave the storage (`..`, an absolute path) or names a
    /// hidden file.
    #[error(
        "`{0}` is not a file name a storage accepts: use relative names such as `videos/clip.mp4`, without `..`, `.` or hidden parts"
    )]
    InvalidName(String),
    /// Reading or writing failed.
    #[error("storage `{name}`: {source}")]
    Io {
        /// The file.
        name: String,
        /// What failed.
        source: io::Error,
    },
}

/// A place to keep files; see the [module docs](self).
pub trait Storage: Send + Sync + fmt::Debug {
    /// Saves `file` under `name`, or a free variant of it, and returns the
    /// name used.
    fn save<'a>(
        &'a self,
        name: &'a str,
        file: &'a UploadedFile,
    ) -> BoxFuture<'a, Result<String, StorageError>>;

    /// Deletes the file `name`; deleting a missing file is not an error.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;

    /// Whether a file `name` exists.
    fn exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StorageError>>;

    /// The URL the file `name` is served at.
    fn url(&self, name: &str) -> String;
}

/// Files in a folder on disk.
#[derive(Debug, Clone)]
pub struct FileSystemStorage {
    root: PathBuf,
    base_url: String,
}

impl FileSystemStorage {
    /// Files in `root`, served under `base_url` (`/media/`).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>, base_url: &str) -> Self {
        Self {
            root: root.into(),
            base_url: base_url.to_owned(),
        }
    }

    /// The site's media storage: `media_root` in the project folder, served
    /// under `media_url`.
    #[must_use]
    pub fn media(site: &Site) -> Self {
        let settings = site.settings();
        Self::new(site.root().join(&settings.media_root), &settings.media_url)
    }

    /// The folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of the file `name`.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidName`] for a name that could leave the folder.
    pub fn path(&self, name: &str) -> Result<PathBuf, StorageError> {
        crate::staticfiles::safe_relative_path(name)
            .map(|relative| self.root.join(relative))
            .ok_or_else(|| StorageError::InvalidName(name.to_owned()))
    }

    async fn save_file(&self, name: &str, file: &UploadedFile) -> Result<String, StorageError> {
        let io = |source| StorageError::Io {
            name: name.to_owned(),
            source,
        };
        let mut target = self.path(name)?;
        let folder = target.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&folder).await.map_err(io)?;
        let source = file.path().to_path_buf();
        let mut chosen = name.to_owned();
        // Copied into a temporary file beside the destination, then moved
        // in under a name nobody has: no half-written file is ever visible,
        // and a name taken meanwhile is never overwritten.
        let staged = {
            let folder = folder.clone();
            tokio::task::spawn_blocking(move || -> io::Result<tempfile::TempPath> {
                let staged = tempfile::NamedTempFile::new_in(&folder)?;
                std::fs::copy(&source, staged.path())?;
                Ok(staged.into_temp_path())
            })
            .await
            .map_err(|join| io(io::Error::other(join)))?
            .map_err(io)?
        };
        let mut staged = staged;
        for _ in 0..100 {
            match staged.persist_noclobber(&target) {
                Ok(()) => return Ok(chosen),
                Err(refused) if refused.error.kind() == io::ErrorKind::AlreadyExists => {
                    staged = refused.path;
                    chosen = with_random_suffix(name);
                    target = self.path(&chosen)?;
                }
                Err(refused) => return Err(io(refused.error)),
            }
        }
        Err(io(io::Error::other("no free name after 100 tries")))
    }
}

impl Storage for FileSystemStorage {
    fn save<'a>(
        &'a self,
        name: &'a str,
        file: &'a UploadedFile,
    ) -> BoxFuture<'a, Result<String, StorageError>> {
        Box::pin(self.save_file(name, file))
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(name)?).await {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StorageError::Io {
                    name: name.to_owned(),
                    source,
                }),
            }
        })
    }

    fn exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(async move {
            let path = self.path(name)?;
            tokio::fs::try_exists(&path)
                .await
                .map_err(|source| StorageError::Io {
                    name: name.to_owned(),
                    source,
                })
        })
    }

    fn url(&self, name: &str) -> String {
        let encoded: Vec<String> = name.split('/').map(crate::urls::encode_segment).collect();
        format!("{}{}", self.base_url, encoded.join("/"))
    }
}

/// The handler mounted at `media_url`: uploaded files from `media_root`.
///
/// Uploads come from users, so what a browser would run is never shown
/// inline: HTML, SVG, XML and scripts are sent as downloads, and every
/// response has `X-Content-Type-Options: nosniff` so a browser does not
/// guess its way into running one. Audio, video and images play inline,
/// with ranges for seeking.
pub(crate) async fn serve_media(
    site: Site,
    request: axum::extract::Request,
) -> Result<axum::response::Response, Error> {
    use axum::http::{HeaderValue, Method, header};

    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return Err(Error::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "uploaded files answer GET and HEAD",
        ));
    }
    let storage = FileSystemStorage::media(&site);
    let prefix = &site.settings().media_url;
    let name = request
        .uri()
        .path()
        .strip_prefix(prefix.as_str())
        .map(|encoded| percent_encoding::percent_decode_str(encoded).decode_utf8_lossy())
        .ok_or_else(|| Error::not_found("no such file"))?;
    let path = storage
        .path(&name)
        .map_err(|_| Error::not_found("no such file"))?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let shown_inline = matches!(mime.type_().as_str(), "image" | "audio" | "video")
        && mime.subtype() != mime::SVG
        || mime == mime::TEXT_PLAIN
        || mime == mime::APPLICATION_PDF;
    let mut file = crate::http::FileResponse::new(&path).cache_control("no-cache");
    if !shown_inline {
        let file_name = name.rsplit('/').next().unwrap_or("download");
        file = file.attachment(file_name);
    }
    let mut response = file.serve(&method, request.headers()).await?;
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// `videos/clip.mp4` → `videos/clip_k3x9q2a.mp4`.
fn with_random_suffix(name: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    crate::staticfiles::tag_name(name, '_', &random[..7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_gets_a_random_suffix_before_the_extension() {
        let renamed = with_random_suffix("videos/clip.mp4");
        assert!(
            renamed.starts_with("videos/clip_") && renamed.ends_with(".mp4"),
            "{renamed}"
        );
        assert_eq!(renamed.len(), "videos/clip_.mp4".len() + 7);
        assert_ne!(renamed, with_random_suffix("videos/clip.mp4"));
        assert!(with_random_suffix("README").starts_with("README_"));
    }
}
