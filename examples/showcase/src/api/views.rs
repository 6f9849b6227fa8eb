//! Views of the `api` app.

use kiln::prelude::*;

#[derive(Serialize)]
pub(super) struct Status {
    project: String,
    debug: bool,
    request_id: String,
}

pub(super) async fn status(site: Site, id: RequestId) -> Json<Status> {
    Json(Status {
        project: site.name().to_owned(),
        debug: site.settings().debug,
        request_id: id.to_string(),
    })
}

#[derive(Serialize)]
pub(super) struct Square {
    n: u64,
    square: u64,
    url: String,
}

pub(super) async fn square(Path(n): Path<u64>) -> Result<Json<Square>, Error> {
    let square = n
        .checked_mul(n)
        .ok_or_else(|| Error::bad_request(format!("{n} squared does not fit in 64 bits")))?;
    Ok(Json(Square {
        n,
        square,
        url: reverse("api:square", [("n", n)])?,
    }))
}

#[derive(Deserialize, Serialize)]
pub(super) struct Message {
    message: String,
}

pub(super) async fn echo(Json(message): Json<Message>) -> Json<Message> {
    Json(message)
}

/// Waits without blocking anyone: thousands of these can be in flight on one
/// core, as in Node. Capped so a client cannot park requests for long.
pub(super) async fn sleep(Path(ms): Path<u64>) -> Result<String, Error> {
    if ms > 5_000 {
        return Err(Error::bad_request("ms must be at most 5000"));
    }
    kiln::deps::tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    Ok(format!("slept {ms} ms"))
}
