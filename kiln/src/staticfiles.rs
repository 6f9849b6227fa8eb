//! Static files: stylesheets, scripts, images and media that apps ship.
//!
//! Each app keeps its files in a `static/` folder (by convention
//! `src/<app>/static/`, or the folder given to
//! [`App::static_dir`](crate::App::static_dir)), namespaced by the app's
//! name as Django does: `src/polls/static/polls/style.css` is
//! `static("polls/style.css")`. The project's own `static/` folder comes
//! first, so a project can override an app's file.
//!
//! - **Debug mode** serves the files straight from those folders under
//!   `static_url` (default `/static/`), revalidated on every request, so an
//!   edit shows on the next reload.
//! - **Production** serves what `collectstatic` copied into `static_root`:
//!   each file under its own name and under a content-hashed name
//!   (`polls/style.3f2a9c1b7d4e.css`), with a manifest that [`url`] reads,
//!   `.gz` and `.br` variants of text files, and a year of
//!   `Cache-Control: immutable` on hashed names (their content never
//!   changes under that name). Put a CDN or nginx in front and it caches
//!   them as they are.
//!
//! Kiln ships files of its own too: `static("kiln/kiln.js")` is the
//! JavaScript client of the real-time protocol. They come after every
//! folder, are collected like the others, and are served from the binary
//! when no folder (or, in production, `static_root`) has them.
//!
//! Every response has `ETag` and `Last-Modified` and answers conditional
//! and `Range` requests (see [`FileResponse`](crate::http::FileResponse)).
//! A name with a `..`, `.`, hidden (`.env`) or empty segment, a backslash
//! or a NUL, encoded or not, is refused with 404 before any file is
//! touched.

mod builtin;
mod collect;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;

pub use collect::Collected;
pub(crate) use collect::{CollectArgs, collectstatic};

use crate::http::{Error, FileResponse, RequestContext};
use crate::project::Site;

/// The manifest `collectstatic` writes in `static_root`: each file's name
/// and its hashed name.
pub const MANIFEST: &str = "staticfiles.json";

/// Where a project's static files are, and how their URLs are built.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    url: String,
    /// The project's `static/`, then each app's, in mount order.
    sources: Vec<PathBuf>,
    root: PathBuf,
    debug: bool,
    /// Name → hashed name, from the manifest (production only).
    manifest: BTreeMap<String, String>,
    /// The hashed names, whose content never changes.
    hashed: BTreeSet<String>,
}

impl StaticFiles {
    /// The static files of a project whose folders are `sources`, for
    /// `settings` (debug or production, `static_url`, `static_root`).
    pub(crate) fn new(sources: Vec<PathBuf>, root: PathBuf, url: String, debug: bool) -> Self {
        let manifest = if debug {
            BTreeMap::new()
        } else {
            collect::read_manifest(&root).unwrap_or_default()
        };
        let hashed = manifest.values().cloned().collect();
        Self {
            url,
            sources,
            root,
            debug,
            manifest,
            hashed,
        }
    }

    /// The URL prefix, `/static/` by default.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.url
    }

    /// The folders searched in debug mode, in order.
    #[must_use]
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The folder `collectstatic` fills and production serves.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL of the file `name` (`polls/style.css`): under its hashed name
    /// in production once `collectstatic` has run, as it is otherwise.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        let name = name.trim_start_matches('/');
        let served = self.manifest.get(name).map_or(name, String::as_str);
        format!("{}{served}", self.url)
    }

    /// Copies the files of every source folder into [`root`](Self::root)
    /// with hashed names, compressed variants and the manifest: what the
    /// `collectstatic` command does.
    ///
    /// # Errors
    ///
    /// A message naming the file or folder that could not be read or
    /// written.
    pub fn collect(&self) -> Result<Collected, crate::project::BootError> {
        collect::collect(&self.sources, &self.root)
    }

    /// The file that serves `name`, if one does.
    fn find(&self, name: &str) -> Option<PathBuf> {
        let relative = safe_relative_path(name)?;
        if self.debug {
            self.sources
                .iter()
                .map(|source| source.join(&relative))
                .find(|path| path.is_file())
        } else {
            Some(self.root.join(relative)).filter(|path| path.is_file())
        }
    }

    /// Whether `name` is a hashed name from the manifest, whose content
    /// never changes.
    fn is_hashed(&self, name: &str) -> bool {
        self.hashed.contains(name)
    }
}

/// The URL of the static file `name` for the site serving the current
/// request (the hashed name in production), or under `/static/` outside a
/// request. Templates' `static()` calls it.
#[must_use]
pub fn url(name: &str) -> String {
    RequestContext::with_current(|context| context.site.static_files().url(name))
        .unwrap_or_else(|| format!("/static/{}", name.trim_start_matches('/')))
}

/// `name` as a relative path, or `None` when it could leave the folder it
/// is joined to or names a hidden file: a segment that is empty or starts
/// with a dot (`..`, `.`, `.env`), a backslash, a NUL, a drive prefix or a
/// leading `/`. `name` is already percent-decoded
/// (axum decodes the path parameter), so encoded variants are caught too.
pub(crate) fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['\\', '\0', ':']) {
        return None;
    }
    let mut path = PathBuf::new();
    for segment in name.split('/') {
        // A leading dot covers `.` and `..`, and keeps hidden files
        // (`.env`, `.git/`) unserved, as collectstatic leaves them out.
        if segment.is_empty() || segment.starts_with('.') {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

/// `name` with `tag` put before its extension, after `separator`:
/// (`polls/style.css`, `.`, `3f2a`) → `polls/style.3f2a.css`; a name
/// without an extension (or a dot file) gets it at the end.
pub(crate) fn tag_name(name: &str, separator: char, tag: &str) -> String {
    let (folder, file) = name.rsplit_once('/').map_or(("", name), |(f, n)| (f, n));
    let tagged = match file.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => {
            format!("{stem}{separator}{tag}.{extension}")
        }
        _ => format!("{file}{separator}{tag}"),
    };
    if folder.is_empty() {
        tagged
    } else {
        format!("{folder}/{tagged}")
    }
}

/// The handler mounted at `static_url`.
pub(crate) async fn serve(site: Site, request: Request) -> Result<Response, Error> {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return Err(Error::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "static files answer GET and HEAD",
        ));
    }
    let files = site.static_files();
    let Some(name) = request
        .uri()
        .path()
        .strip_prefix(files.prefix())
        .map(|encoded| percent_encoding::percent_decode_str(encoded).decode_utf8_lossy())
    else {
        return Err(Error::not_found("no such static file"));
    };
    let Some(path) = files.find(&name) else {
        return match builtin::find(&name) {
            Some(builtin) => Ok(builtin.response(&method, request.headers())),
            None => Err(Error::not_found("no such static file")),
        };
    };
    let cache_control = if files.is_hashed(&name) {
        "public, max-age=31536000, immutable"
    } else {
        // Revalidate every time: the ETag makes that a 304 when unchanged.
        "no-cache"
    };
    FileResponse::new(path)
        .cache_control(cache_control)
        .precompressed()
        .serve(&method, request.headers())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for name in [
            "../secret",
            "polls/../../secret",
            "./x",
            "a//b",
            "/etc/passwd",
            "a\\..\\b",
            "c:/windows",
            "a\0b",
            "",
            "polls/..",
        ] {
            assert_eq!(safe_relative_path(name), None, "{name:?}");
        }
        assert_eq!(
            safe_relative_path("polls/style.css"),
            Some(PathBuf::from("polls").join("style.css"))
        );
        assert_eq!(safe_relative_path("polls/.env"), None);
        assert_eq!(
            safe_relative_path("polls/a..b.css"),
            Some(PathBuf::from("polls").join("a..b.css"))
        );
    }

    #[test]
    fn urls_use_hashed_names_from_the_manifest_in_production() {
        let mut files = StaticFiles::new(Vec::new(), PathBuf::new(), "/static/".into(), false);
        files.manifest.insert(
            "polls/style.css".into(),
            "polls/style.0123456789ab.css".into(),
        );
        files.hashed.insert("polls/style.0123456789ab.css".into());
        assert_eq!(
            files.url("polls/style.css"),
            "/static/polls/style.0123456789ab.css"
        );
        assert_eq!(files.url("/polls/other.js"), "/static/polls/other.js");
        assert!(files.is_hashed("polls/style.0123456789ab.css"));
        assert!(!files.is_hashed("polls/style.css"));
    }
}
