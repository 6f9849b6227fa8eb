//! Where templates come from: each templates folder on disk or embedded in
//! the binary, searched in order (the project's folder first, then each
//! app's in mount order), as Django's app-directories loader does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use minijinja::{ErrorKind, TemplateSource};

/// Files embedded by `templates_dir!`: `(name, text)` sorted by name.
pub(crate) type EmbeddedFiles = &'static [(&'static str, &'static str)];

/// A templates folder of a project or an app, as [`templates_dir!`](crate::templates_dir)
/// records it at compile time: its path, and its files when the build embeds them.
#[derive(Clone, Copy)]
pub struct TemplateDir {
    absolute: &'static str,
    relative: &'static str,
    embedded: Option<EmbeddedFiles>,
}

impl TemplateDir {
    /// What the macros expand to; use [`templates_dir!`](crate::templates_dir)
    /// or [`embed_templates!`](crate::embed_templates).
    #[doc(hidden)]
    #[must_use]
    pub const fn new(
        absolute: &'static str,
        relative: &'static str,
        embedded: Option<EmbeddedFiles>,
    ) -> Self {
        Self {
            absolute,
            relative,
            embedded,
        }
    }

    /// The folder relative to the crate that declared it (`templates`, `src/polls/templates`).
    #[must_use]
    pub fn relative(&self) -> &'static str {
        self.relative
    }

    /// Whether the build embedded the folder's files in the binary.
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Where the files are read from at run time: the embedded copy unless
    /// `from_disk` or the build did not embed them; on disk, the folder the
    /// macro saw at compile time when it still exists (a checkout), else the
    /// same relative path under the project folder (a deploy with `KILN_ROOT`).
    pub(crate) fn resolve(&self, root: &Path, from_disk: bool) -> Source {
        match self.embedded {
            Some(files) if !from_disk => Source::Embedded(files),
            _ => {
                let absolute = Path::new(self.absolute);
                let under_root = root.join(self.relative);
                // When neither exists, the compile-time path is the one the
                // developer wrote, so it is the one `check` reports.
                if absolute.is_dir() || !under_root.is_dir() {
                    Source::Disk(absolute.to_owned())
                } else {
                    Source::Disk(under_root)
                }
            }
        }
    }
}

impl std::fmt::Debug for TemplateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateDir")
            .field("absolute", &self.absolute)
            .field("embedded", &self.embedded.map(<[_]>::len))
            .finish()
    }
}

/// Where one folder's files are read from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Disk(PathBuf),
    Embedded(EmbeddedFiles),
}

/// A templates folder and whose it is (`the project`, `app \`polls\``).
#[derive(Clone, Debug)]
pub(crate) struct SourceDir {
    pub(crate) owner: String,
    pub(crate) relative: String,
    pub(crate) source: Source,
}

impl SourceDir {
    /// How error messages name the folder.
    pub(crate) fn describe(&self) -> String {
        match &self.source {
            Source::Disk(path) => format!("{} ({})", path.display(), self.owner),
            Source::Embedded(_) => {
                format!("{} embedded in the binary ({})", self.relative, self.owner)
            }
        }
    }

    /// The file `name` of this folder, as error messages and `check` show it.
    pub(crate) fn file(&self, name: &str) -> String {
        match &self.source {
            Source::Disk(path) => path.join(name).display().to_string(),
            Source::Embedded(_) => format!("{}/{name} (embedded)", self.relative),
        }
    }

    /// Whether a folder on disk is missing.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(&self.source, Source::Disk(path) if !path.is_dir())
    }

    /// Every template name in the folder, sorted.
    pub(crate) fn names(&self) -> std::io::Result<Vec<String>> {
        match &self.source {
            Source::Embedded(files) => {
                Ok(files.iter().map(|(name, _)| (*name).to_owned()).collect())
            }
            Source::Disk(root) => {
                let mut names = Vec::new();
                let mut pending = vec![root.clone()];
                while let Some(dir) = pending.pop() {
                    for entry in std::fs::read_dir(&dir)? {
                        let path = entry?.path();
                        let hidden = path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_none_or(|n| n.starts_with('.') || n.ends_with('~'));
                        if hidden {
                            continue;
                        }
                        if path.is_dir() {
                            pending.push(path);
                        } else if let Ok(relative) = path.strip_prefix(root) {
                            let parts: Vec<_> = relative
                                .components()
                                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                                .collect();
                            names.push(parts.join("/"));
                        }
                    }
                }
                names.sort();
                Ok(names)
            }
        }
    }
}

/// A template name that cannot leave its folder: relative, `/`-separated, no `..`.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The modification time and size of a file: what the reload check compares.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// The text of template `name` from the first folder that has it, and the
/// folder's index.
pub(crate) fn read(dirs: &[SourceDir], name: &str) -> Option<(usize, String)> {
    if !is_safe_name(name) {
        return None;
    }
    dirs.iter()
        .enumerate()
        .find_map(|(index, dir)| match &dir.source {
            Source::Embedded(files) => files
                .binary_search_by(|(file, _)| (*file).cmp(name))
                .ok()
                .map(|found| (index, files[found].1.to_owned())),
            Source::Disk(path) => std::fs::read_to_string(path.join(name))
                .ok()
                .map(|text| (index, text)),
        })
}

/// minijinja's loader: the first folder that has `name` wins. With `reload`,
/// a template read from disk carries a check that minijinja runs on each
/// lookup: the file's time and size are unchanged and no earlier folder has
/// gained a file of that name (an override added while the server runs).
pub(crate) fn load(
    dirs: &Arc<[SourceDir]>,
    name: &str,
    reload: bool,
) -> Result<Option<TemplateSource>, minijinja::Error> {
    if !is_safe_name(name) {
        return Ok(None);
    }
    let mut earlier = Vec::new();
    for dir in dirs.iter() {
        match &dir.source {
            Source::Embedded(files) => {
                if let Ok(found) = files.binary_search_by(|(file, _)| (*file).cmp(name)) {
                    return Ok(Some(TemplateSource::new(files[found].1)));
                }
            }
            Source::Disk(path) => {
                let file = path.join(name);
                match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        let source = TemplateSource::new(text);
                        if !reload {
                            return Ok(Some(source));
                        }
                        let loaded = stamp(&file);
                        return Ok(Some(source.with_uptodate_check(move || {
                            stamp(&file) == loaded && earlier.iter().all(|p: &PathBuf| !p.exists())
                        })));
                    }
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                        ) =>
                    {
                        earlier.push(file);
                    }
                    Err(error) => {
                        return Err(minijinja::Error::new(
                            ErrorKind::InvalidOperation,
                            format!("cannot read template file {}: {error}", file.display()),
                        ));
                    }
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_their_folder() {
        assert!(is_safe_name("polls/detail.html"));
        for bad in [
            "",
            "/etc/passwd",
            "../secret",
            "a/../../b",
            "a\\b",
            "a//b",
            "./a",
        ] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn embedded_files_are_found_by_name() {
        static FILES: EmbeddedFiles = &[("a.html", "A"), ("b/c.html", "C")];
        let dirs: Arc<[SourceDir]> = Arc::from(vec![SourceDir {
            owner: "the project".into(),
            relative: "templates".into(),
            source: Source::Embedded(FILES),
        }]);
        assert_eq!(read(&dirs, "b/c.html"), Some((0, "C".to_owned())));
        assert!(load(&dirs, "missing.html", false).unwrap().is_none());
        assert_eq!(dirs[0].names().unwrap(), vec!["a.html", "b/c.html"]);
    }
}
