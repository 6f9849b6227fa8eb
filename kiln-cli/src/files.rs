//! Template rendering and all-or-nothing writes.
//!
//! Templates are plain files with `{{placeholder}}`s filled by string
//! replacement: the few values are names already checked to be identifiers,
//! so a template engine would add a dependency and nothing else.

use std::fs;
use std::path::{Path, PathBuf};

/// A file to create and its contents.
#[derive(Debug)]
pub(crate) struct NewFile {
    pub(crate) path: PathBuf,
    pub(crate) contents: String,
}

/// Fills every `{{key}}` of `template` with its value.
pub(crate) fn render(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// Writes `files` (creating their folders), then `then` if any; on the first
/// failure removes whatever it had created, so a failed command leaves no half
/// project behind. `then` is an existing file to replace, written last because
/// it is the one write that cannot be undone by removing.
pub(crate) fn write_all(files: &[NewFile], then: Option<&NewFile>) -> Result<(), String> {
    let mut created: Vec<PathBuf> = Vec::new();
    let result = write_each(files, then, &mut created);
    if result.is_err() {
        // Newest first, so folders are empty by the time they are removed;
        // `remove_dir` (not `remove_dir_all`) never deletes anything else.
        for path in created.iter().rev() {
            let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
        }
    }
    result
}

fn write_each(
    files: &[NewFile],
    then: Option<&NewFile>,
    created: &mut Vec<PathBuf>,
) -> Result<(), String> {
    for file in files {
        if let Some(parent) = file.path.parent() {
            create_dirs(parent, created)?;
        }
        if file.path.exists() {
            return Err(format!(
                "{} already exists; nothing was written",
                file.path.display()
            ));
        }
        fs::write(&file.path, &file.contents).map_err(|e| cannot_write(&file.path, &e))?;
        created.push(file.path.clone());
    }
    if let Some(file) = then {
        fs::write(&file.path, &file.contents).map_err(|e| cannot_write(&file.path, &e))?;
    }
    Ok(())
}

/// `create_dir_all`, recording each folder it creates.
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, created)?;
    }
    fs::create_dir(dir).map_err(|e| cannot_write(dir, &e))?;
    created.push(dir.to_owned());
    Ok(())
}

fn cannot_write(path: &Path, error: &std::io::Error) -> String {
    format!("cannot write {}: {error}; nothing was kept", path.display())
}

#[cfg(test)]
mod tests {
    use super::{NewFile, render, write_all};

    #[test]
    fn render_fills_every_placeholder_and_nothing_else() {
        let text = render("{{a}}-{{b}}-{{a}} {x} {{c}}", &[("a", "1"), ("b", "2")]);
        assert_eq!(text, "1-2-1 {x} {{c}}");
    }

    #[test]
    fn failed_write_removes_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("taken");
        std::fs::write(&blocker, "keep me").unwrap();
        let files = [
            NewFile {
                path: dir.path().join("new/a/one.txt"),
                contents: "1".into(),
            },
            NewFile {
                path: blocker.clone(),
                contents: "2".into(),
            },
        ];
        assert!(write_all(&files, None).is_err());
        assert!(!dir.path().join("new").exists());
        assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "keep me");
    }
}
