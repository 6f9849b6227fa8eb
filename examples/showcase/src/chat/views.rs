//! Views of the `chat` app: the list of rooms and a room's page.

use kiln::auth::CurrentUser;
use kiln::db::prelude::*;
use kiln::db::{DatabaseConnection, Db};
use kiln::prelude::*;
use kiln::realtime::Channels;
use kiln::templates::{Value, context, render};

use super::models::message;

/// Rooms listed even before anyone spoke in them.
const DEFAULT_ROOMS: [&str; 3] = ["lobby", "rust", "random"];

/// The query string of the index: a room to open.
#[derive(Debug, Deserialize)]
pub(super) struct IndexQuery {
    room: Option<String>,
}

/// The rooms (the default ones and those with messages), and a form to
/// open any room by name.
pub(super) async fn index(
    parts: Parts,
    db: Db,
    Query(query): Query<IndexQuery>,
) -> Result<Response, Error> {
    let mut error = None;
    if let Some(name) = query.room {
        let name = name.trim().to_lowercase();
        match super::room_name(&name) {
            Ok(name) => {
                let url = reverse("chat:room", [("room", name)])?;
                return Ok(Redirect::to(&url).into_response());
            }
            Err(message) => error = Some(message),
        }
    }
    let mut rooms: Vec<String> = DEFAULT_ROOMS.iter().map(|&room| room.to_owned()).collect();
    let used: Vec<String> = message::Entity::find()
        .select_only()
        .column(message::Column::Room)
        .distinct()
        .order_by_asc(message::Column::Room)
        .limit(100)
        .into_tuple()
        .all(&*db)
        .await
        .map_err(Error::internal)?;
    for room in used {
        if !rooms.contains(&room) {
            rooms.push(room);
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = render(&parts, "chat/index.html", context! { rooms, error })?;
    Ok((status, page).into_response())
}

/// A stored message as the page and the socket show it.
#[derive(Debug, Serialize)]
pub(super) struct Said {
    pub(super) id: i64,
    pub(super) user: String,
    pub(super) text: String,
    pub(super) created: String,
}

impl Said {
    pub(super) fn new(message: &message::Model, user: &str) -> Self {
        Self {
            id: message.id,
            user: user.to_owned(),
            text: message.text.clone(),
            created: message.created.to_rfc3339(),
        }
    }
}

/// The messages of `room` after id `after` (oldest first, at most `limit`),
/// or the last `limit` messages when `after` is `None`.
pub(super) async fn messages(
    db: &DatabaseConnection,
    room: &str,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<Said>, DbErr> {
    let query = message::Entity::find()
        .filter(message::Column::Room.eq(room))
        .find_also_related(kiln::auth::user::Entity)
        .limit(limit);
    let rows = match after {
        Some(after) => {
            query
                .filter(message::Column::Id.gt(after))
                .order_by_asc(message::Column::Id)
                .all(db)
                .await?
        }
        None => {
            let mut rows = query.order_by_desc(message::Column::Id).all(db).await?;
            rows.reverse();
            rows
        }
    };
    Ok(rows
        .iter()
        .map(|(message, user)| {
            let name = user.as_ref().map_or("?", |user| user.username.as_str());
            Said::new(message, name)
        })
        .collect())
}

/// A room: its last messages from the database, then live. Anonymous
/// visitors get the page with a link to log in instead.
pub(super) async fn room(
    parts: Parts,
    db: Db,
    user: CurrentUser,
    channels: Channels,
    Path(room): Path<String>,
) -> Result<Response, Error> {
    let room = super::room_name(&room)
        .map_err(|_| Error::not_found("no such chat room"))?
        .to_owned();
    let Some(user) = user.user() else {
        return render(
            &parts,
            "chat/room.html",
            context! { room, anonymous => true },
        );
    };
    let history = messages(&db, &room, None, super::HISTORY)
        .await
        .map_err(Error::internal)?;
    let last_id = history.last().map_or(0, |message| message.id);
    let history: Vec<Value> = history
        .iter()
        .map(|m| context! { id => m.id, user => &m.user, text => &m.text, created => &m.created })
        .collect();
    // A token as well as the session cookie: the page's client sends it on
    // every reconnect, and it names the user without a database lookup of
    // the session.
    let token = channels.sign_token(&user.username);
    render(
        &parts,
        "chat/room.html",
        context! {
            realtime_room => super::realtime_room(&room),
            room,
            history,
            last_id,
            token,
            me => &user.username,
            max_length => super::MAX_LENGTH,
        },
    )
}
