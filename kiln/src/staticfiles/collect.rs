//! `collectstatic`: copies every app's static files into `static_root` for
//! production, each under its name and a content-hashed name, with `.gz`
//! and `.br` variants of text files and the manifest that maps one name to
//! the other. In `.css` files, `url(...)` and `@import "..."` references to
//! other static files are rewritten to their hashed names first (Django's
//! `ManifestStaticFilesStorage`), so a changed image changes the name of
//! the stylesheet that uses it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{MANIFEST, StaticFiles};
use crate::project::BootError;

/// `collectstatic [--clear]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CollectArgs {
    /// Delete what `static_root` holds before copying, so files removed
    /// from the apps go too.
    #[arg(long)]
    clear: bool,
}

/// Files this small gain nothing from compression.
const COMPRESS_FROM_BYTES: u64 = 256;

/// What a `collectstatic` run did.
#[derive(Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Collected {
    /// Files written (new or changed).
    pub copied: usize,
    /// Files already in `static_root` with the same content.
    pub unmodified: usize,
    /// Names found in more than one folder, with the later folder, whose
    /// file was skipped: the first folder wins.
    pub shadowed: Vec<(String, PathBuf)>,
    /// References in stylesheets left as written, each naming the
    /// stylesheet, the reference and why (no such static file, or a path
    /// that climbs out of the static files).
    pub warnings: Vec<String>,
}

/// Runs `collectstatic`, printing a summary to `out`.
///
/// # Errors
///
/// [`BootError::Usage`] naming the file or folder that could not be read or
/// written, and why.
pub(crate) fn collectstatic(
    files: &StaticFiles,
    args: &CollectArgs,
    out: &mut impl Write,
) -> Result<(), BootError> {
    let root = files.root();
    if files.sources().iter().any(|source| source == root) {
        return Err(BootError::Usage(format!(
            "static_root ({}) is also a folder the static files are collected from; \
             set static_root to a folder of its own, e.g. static_root = \"staticfiles\"",
            root.display()
        )));
    }
    if args.clear && root.exists() {
        fs::remove_dir_all(root).map_err(|error| io_error("clear", root, &error))?;
        writeln!(out, "Deleted the contents of {}.", root.display()).ok();
    }
    let collected = files.collect()?;
    for (name, folder) in &collected.shadowed {
        writeln!(
            out,
            "  Skipping {name} in {}: an earlier folder has a file of that name.",
            folder.display()
        )
        .ok();
    }
    for warning in &collected.warnings {
        writeln!(out, "  Warning: {warning}").ok();
    }
    writeln!(
        out,
        "{} static file{} copied to {}, {} unmodified.",
        collected.copied,
        if collected.copied == 1 { "" } else { "s" },
        root.display(),
        collected.unmodified
    )
    .ok();
    Ok(())
}

/// Copies the files of `sources` (first folder wins), then Kiln's built-in
/// files that no folder replaces, into `root` and writes the manifest.
pub(crate) fn collect(sources: &[PathBuf], root: &Path) -> Result<Collected, BootError> {
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut collected = Collected::default();
    for source in sources.iter().filter(|source| source.is_dir()) {
        for (name, path) in walk(source)? {
            match found.entry(name) {
                Entry::Occupied(first) => {
                    collected
                        .shadowed
                        .push((first.key().clone(), source.clone()));
                }
                Entry::Vacant(slot) => {
                    slot.insert(path);
                }
            }
        }
    }
    let builtins = super::builtin::BUILTINS
        .iter()
        // A project's or an app's file of the same name replaces Kiln's own.
        .filter(|builtin| !found.contains_key(builtin.name))
        .map(|builtin| (builtin.name.to_owned(), builtin.content.to_vec()));
    let files = found.iter().map(|(name, path)| {
        fs::read(path)
            .map(|content| (name.clone(), content))
            .map_err(|error| io_error("read", path, &error))
    });
    let mut contents = BTreeMap::new();
    for file in files.chain(builtins.map(Ok)) {
        let (name, content) = file?;
        contents.insert(name, content);
    }
    let mut manifest: BTreeMap<String, String> = contents
        .iter()
        .map(|(name, content)| (name.clone(), hashed_name(name, content)))
        .collect();
    collected.warnings = rewrite_stylesheets(&mut contents, &mut manifest);
    for (name, content) in contents {
        let hashed = manifest[&name].clone();
        let mut changed = false;
        for target in [name.as_str(), hashed.as_str()] {
            changed |= write_with_variants(&root.join(target), &content)?;
        }
        if changed {
            collected.copied += 1;
        } else {
            collected.unmodified += 1;
        }
    }
    write_manifest(root, &manifest)?;
    Ok(collected)
}

/// How many times stylesheets are rewritten at most: a stylesheet that
/// imports another takes its hashed name from the other's rewritten
/// content, so each pass settles one more level of `@import` (Django's
/// `max_post_process_passes`, 5). A cycle of imports stops here.
const STYLESHEET_PASSES: usize = 5;

/// Rewrites the references of every `.css` file in `contents` to hashed
/// names and gives each its hashed name from the rewritten content;
/// returns the warnings about references left alone.
fn rewrite_stylesheets(
    contents: &mut BTreeMap<String, Vec<u8>>,
    manifest: &mut BTreeMap<String, String>,
) -> Vec<String> {
    let originals: Vec<(String, String)> = contents
        .iter()
        .filter(|(name, _)| name.ends_with(".css"))
        .filter_map(|(name, content)| {
            Some((name.clone(), String::from_utf8(content.clone()).ok()?))
        })
        .collect();
    let mut warnings = Vec::new();
    for _ in 0..STYLESHEET_PASSES {
        warnings.clear();
        let mut changed = false;
        for (name, original) in &originals {
            let rewritten = rewrite_css(name, original, manifest, &mut warnings);
            let hashed = hashed_name(name, rewritten.as_bytes());
            if manifest.get(name) != Some(&hashed) {
                changed = true;
                manifest.insert(name.clone(), hashed);
            }
            contents.insert(name.clone(), rewritten.into_bytes());
        }
        if !changed {
            break;
        }
    }
    warnings
}

/// `url(...)` (quoted or not) and `@import "..."` / `@import '...'`.
fn css_references() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(
            r#"(?i)url\(\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^'"\s)][^\s)]*))\s*\)|@import\s+(?:"(?P<idq>[^"]*)"|'(?P<isq>[^']*)')"#,
        )
        .unwrap_or_else(|error| unreachable!("the CSS reference pattern is valid: {error}"))
    })
}

/// The stylesheet `name` with each reference to a collected file replaced
/// by that file's hashed name, written relative as it was.
fn rewrite_css(
    name: &str,
    css: &str,
    manifest: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> String {
    let folder = name.rsplit_once('/').map_or("", |(folder, _)| folder);
    let mut out = String::with_capacity(css.len());
    let mut last = 0;
    for captures in css_references().captures_iter(css) {
        let Some(reference) = ["dq", "sq", "bare", "idq", "isq"]
            .iter()
            .find_map(|group| captures.name(group))
        else {
            continue;
        };
        let Some(hashed) = hashed_reference(folder, reference.as_str(), manifest)
            .map_err(|why| {
                warnings.push(format!(
                    "{name}: the reference {:?} {why}; left as written",
                    reference.as_str()
                ));
            })
            .ok()
            .flatten()
        else {
            continue;
        };
        out.push_str(&css[last..reference.start()]);
        out.push_str(&hashed);
        last = reference.end();
    }
    out.push_str(&css[last..]);
    out
}

/// The reference with its file name hashed; `Ok(None)` for references that
/// are not to static files (`data:`, `http(s):`, `//host`, `#fragment`,
/// `/absolute`); `Err(why)` for a static file that cannot be named.
fn hashed_reference(
    folder: &str,
    reference: &str,
    manifest: &BTreeMap<String, String>,
) -> Result<Option<String>, &'static str> {
    let reference = reference.trim();
    // A scheme (`data:`, `http:`, `https:`) has a colon, and `//host` and
    // `/absolute` start with a slash: none of these is a collected file.
    let external =
        reference.is_empty() || reference.starts_with(['#', '/']) || reference.contains(':');
    if external {
        return Ok(None);
    }
    let split = reference.find(['?', '#']).unwrap_or(reference.len());
    let (path, suffix) = reference.split_at(split);
    let mut segments: Vec<&str> = folder.split('/').filter(|s| !s.is_empty()).collect();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                // Climbing above the static files would name a file that
                // is not one (`../../etc/passwd`): never looked up.
                if segments.pop().is_none() {
                    return Err("climbs out of the static files");
                }
            }
            _ => segments.push(segment),
        }
    }
    let target = segments.join("/");
    let Some(hashed) = manifest.get(&target) else {
        return Err("names no collected static file");
    };
    let file_name = hashed.rsplit('/').next().unwrap_or(hashed);
    let kept = path.rfind('/').map_or("", |at| &path[..=at]);
    Ok(Some(format!("{kept}{file_name}{suffix}")))
}

/// The manifest in `root`, if `collectstatic` wrote one.
pub(crate) fn read_manifest(root: &Path) -> Option<BTreeMap<String, String>> {
    let text = fs::read_to_string(root.join(MANIFEST)).ok()?;
    let manifest: Manifest = serde_json::from_str(&text).ok()?;
    Some(manifest.paths)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    version: u32,
    paths: BTreeMap<String, String>,
}

fn write_manifest(root: &Path, paths: &BTreeMap<String, String>) -> Result<(), BootError> {
    let manifest = Manifest {
        version: 1,
        paths: paths.clone(),
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|error| BootError::Usage(format!("cannot write the manifest: {error}")))?;
    fs::create_dir_all(root).map_err(|error| io_error("create", root, &error))?;
    write_atomically(&root.join(MANIFEST), text.as_bytes())
}

/// Every file under `folder` as (`a/b.css`, path), skipping hidden files and
/// folders and editor backups (`name~`), as Django does.
fn walk(folder: &Path) -> Result<Vec<(String, PathBuf)>, BootError> {
    let mut files = Vec::new();
    let mut pending = vec![(String::new(), folder.to_path_buf())];
    while let Some((prefix, dir)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|error| io_error("read", &dir, &error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error("read", &dir, &error))?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue; // a name that is not UTF-8 has no URL
            };
            if file_name.starts_with('.') || file_name.ends_with('~') {
                continue;
            }
            let name = format!("{prefix}{file_name}");
            let path = entry.path();
            if path.is_dir() {
                pending.push((format!("{name}/"), path));
            } else if path.is_file() {
                files.push((name, path));
            }
        }
    }
    Ok(files)
}

/// `polls/style.css` → `polls/style.<12 hex digits of SHA-256>.css`.
fn hashed_name(name: &str, content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hash: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    super::tag_name(name, '.', &hash)
}

/// Writes `content` to `path` (and `.gz` / `.br` beside it for text), unless
/// it already holds exactly that. Returns whether anything was written.
fn write_with_variants(path: &Path, content: &[u8]) -> Result<bool, BootError> {
    if fs::read(path).is_ok_and(|existing| existing == content) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|error| io_error("create", parent, &error))?;
    }
    write_atomically(path, content)?;
    let compressible = content.len() as u64 >= COMPRESS_FROM_BYTES && is_text(path);
    for (extension, compress) in [
        ("gz", gzip as fn(&[u8]) -> io::Result<Vec<u8>>),
        ("br", brotli),
    ] {
        let variant = PathBuf::from(format!("{}.{extension}", path.display()));
        let smaller = compressible
            .then(|| compress(content))
            .transpose()
            .map_err(|error| io_error("compress", path, &error))?
            .filter(|compressed| compressed.len() < content.len());
        match smaller {
            Some(compressed) => write_atomically(&variant, &compressed)?,
            // A stale variant of an older version must not be served.
            None => match fs::remove_file(&variant) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("remove", &variant, &error)),
            },
        }
    }
    Ok(true)
}

/// Whether the file's type is text-like (worth compressing), by extension.
fn is_text(path: &Path) -> bool {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    mime.type_() == mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "xml" | "svg" | "wasm" | "manifest+json"
        )
        || mime
            .suffix()
            .is_some_and(|suffix| suffix == mime::XML || suffix == mime::JSON)
}

fn gzip(content: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(content)?;
    encoder.finish()
}

fn brotli(content: &[u8]) -> io::Result<Vec<u8>> {
    let mut output = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut output, 4096, 11, 22);
        writer.write_all(content)?;
    }
    Ok(output)
}

/// Writes through a temporary file in the same folder, then renames it, so
/// a server reading the folder never sees half a file.
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), BootError> {
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file =
        tempfile::NamedTempFile::new_in(folder).map_err(|error| io_error("write", path, &error))?;
    file.write_all(content)
        .map_err(|error| io_error("write", path, &error))?;
    file.persist(path)
        .map_err(|error| io_error("write", path, &error.error))?;
    Ok(())
}

fn io_error(action: &str, path: &Path, error: &io::Error) -> BootError {
    BootError::Usage(format!(
        "collectstatic cannot {action} {}: {error}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_keep_folder_and_extension() {
        let hashed = hashed_name("polls/style.css", b"body{}");
        let (stem, rest) = hashed.split_once('.').unwrap_or_default();
        assert_eq!(stem, "polls/style");
        assert!(rest.ends_with(".css") && rest.len() == 12 + 4, "{hashed}");
        assert_ne!(hashed, hashed_name("polls/style.css", b"body{ }"));
        assert!(hashed_name("LICENSE", b"x").starts_with("LICENSE."));
        assert!(hashed_name(".env", b"x").starts_with(".env."));
    }

    #[test]
    fn text_is_compressed_and_images_are_not() {
        for text in ["a.css", "a.js", "a.svg", "a.html", "a.json", "a.txt"] {
            assert!(is_text(Path::new(text)), "{text}");
        }
        for binary in ["a.png", "a.mp4", "a.woff2", "a.gz"] {
            assert!(!is_text(Path::new(binary)), "{binary}");
        }
    }
}
