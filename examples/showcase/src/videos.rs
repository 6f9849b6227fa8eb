//! The `videos` app: upload a video, then play it back in the browser with
//! seeking. Uploads stream to disk (`MultipartForm`), are saved by the media
//! storage (`media_root`, `media/` in the project folder) and are served
//! under `/media/` with `Range` support, which `<video>` needs to seek.

use kiln::prelude::*;

mod urls;
mod views;

/// The app, mounted at `/videos` by the project.
#[must_use]
pub fn app() -> App {
    App::new("videos")
        .templates(kiln::templates_dir!("src/videos/templates"))
        .urls(urls::urls())
}
