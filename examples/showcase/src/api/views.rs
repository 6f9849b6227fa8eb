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
