//! Views of the `videos` app.

use kiln::messages::Messages;
use kiln::prelude::*;
use kiln::storage::{FileSystemStorage, Storage};
use kiln::templates::{context, render};
use kiln::uploads::MultipartForm;

/// The extensions a browser's `<video>` plays, and their content types.
const PLAYABLE: [(&str, &str); 3] = [
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
];

/// The uploaded videos, newest first, with the upload form.
pub(super) async fn index(parts: Parts, site: Site) -> Result<Response, Error> {
    let storage = FileSystemStorage::media(&site);
    let mut videos: Vec<(std::time::SystemTime, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(storage.root().join("videos")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            if playable_type(&name).is_some() {
                videos.push((modified, name));
            }
        }
    }
    videos.sort_by(|a, b| b.cmp(a));
    let videos: Vec<_> = videos
        .into_iter()
        .map(|(_, name)| {
            let url = storage.url(&format!("videos/{name}"));
            context! { name => name.clone(), url => url, content_type => playable_type(&name) }
        })
        .collect();
    let max_size = site.settings().upload_max_file_size.to_string();
    render(
        &parts,
        "videos/index.html",
        context! { videos => videos, max_size => max_size },
    )
}

/// Saves an uploaded video, then back to the list (Post/Redirect/Get) with
/// a message saying what happened.
pub(super) async fn upload(
    site: Site,
    mut messages: Messages,
    form: MultipartForm,
) -> (Messages, Redirect) {
    let back = Redirect::to(&reverse("videos:index", ()).unwrap_or_else(|_| "/".to_owned()));
    let Some(video) = form.file("video") else {
        messages.error("Choose a video file to upload.");
        return (messages, back);
    };
    if playable_type(video.file_name()).is_none() {
        messages.error(format!(
            "`{}` is not a video a browser plays: upload an .mp4, .webm or .ogv file.",
            video.file_name()
        ));
        return (messages, back);
    }
    let storage = FileSystemStorage::media(&site);
    match storage
        .save(&format!("videos/{}", video.file_name()), video)
        .await
    {
        Ok(name) => messages.success(format!(
            "Uploaded {} ({} bytes).",
            name.trim_start_matches("videos/"),
            video.size()
        )),
        Err(error) => {
            kiln::deps::tracing::error!(%error, "could not save an upload");
            messages.error("The video could not be saved; try again.");
        }
    }
    (messages, back)
}

fn playable_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    PLAYABLE
        .iter()
        .find(|(known, _)| *known == extension)
        .map(|(_, content_type)| *content_type)
}
