//! The chat app on a real port, driven by WebSocket clients speaking Kiln's
//! wire protocol: stored then broadcast, history on the page, presence,
//! typing notices, refused messages and visitors.

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

#[path = "support/server.rs"]
pub mod server;

use kiln::db::prelude::*;
use serde_json::json;
use server::{Server, refused_status, users};
use showcase::chat::models::message;

const SOCKET: &str = "/chat/ws/";

async fn stored(server: &Server) -> Vec<message::Model> {
    message::Entity::find()
        .order_by_asc(message::Column::Id)
        .all(&server.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_is_stored_then_reaches_the_other_member() {
    let server = Server::start().await;
    let alice_id = server.user("alice").await;
    server.user("bob").await;
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    assert_eq!(alice.join("chat.lobby").await["t"], "joined");
    assert_eq!(bob.join("chat.lobby").await["t"], "joined");
    let reply = alice
        .request(json!({ "type": "say", "room": "lobby", "text": "hello" }))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let said = bob.room_event("chat.lobby", "said").await;
    assert_eq!(said["data"]["id"], reply["id"]);
    assert_eq!(said["data"]["user"], "alice");
    assert_eq!(said["data"]["text"], "hello");
    let rows = stored(&server).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(Some(rows[0].id), reply["id"].as_i64());
    assert_eq!(
        (
            rows[0].room.as_str(),
            rows[0].user_id,
            rows[0].text.as_str()
        ),
        ("lobby", alice_id, "hello")
    );
}

#[tokio::test]
async fn the_room_page_shows_the_last_messages_escaped_and_the_socket() {
    let server = Server::start().await;
    let alice_id = server.user("alice").await;
    // Older than the window of the page, then one with markup.
    for n in 0..showcase::chat::HISTORY + 2 {
        message::ActiveModel {
            room: Set("lobby".to_owned()),
            user_id: Set(alice_id),
            text: Set(format!("message number {n}.")),
            created: Set(ChronoUtc::now()),
            ..Default::default()
        }
        .insert(&server.db)
        .await
        .unwrap();
    }
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    alice.join("chat.lobby").await;
    let markup = "<script>alert('x')</script><b>bold</b>";
    let reply = alice
        .request(json!({ "type": "say", "room": "lobby", "text": markup }))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    // Stored as typed: escaping is the page's job.
    assert_eq!(stored(&server).await.last().unwrap().text, markup);

    let client = &server.client;
    let anonymous = client.get("/chat/rooms/lobby/").send().await;
    assert_eq!(anonymous.status(), 200);
    let page = anonymous.text();
    assert!(page.contains("/accounts/login/?next="), "{page}");
    assert!(!page.contains("message number"), "{page}");
    assert!(!page.contains("kiln.js"), "{page}");

    server.log_in("alice").await;
    let page = client.get("/chat/rooms/lobby/").send().await;
    assert_eq!(page.status(), 200);
    let page = page.text();
    assert!(
        page.contains(
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&lt;b&gt;bold&lt;&#x2f;b&gt;"
        ) || page
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>bold</b>"), "{page}");
    // The last HISTORY messages, oldest first: numbers 3 to 51, then the markup.
    assert!(!page.contains("message number 2."), "{page}");
    let third = page.find("message number 3.").unwrap();
    let last = page.find("message number 51.").unwrap();
    assert!(third < last, "oldest first");
    let socket = client.reverse("chat:socket", ());
    assert!(
        page.contains(&format!("data-socket=\"{socket}\"")),
        "{page}"
    );
    assert!(page.contains("/static/kiln/kiln.js"), "{page}");
    // The page's own script, served as a static file (no inline script).
    assert!(page.contains("src=\"/static/chat/room.js\""), "{page}");
    let script = client.get("/static/chat/room.js").send().await;
    assert_eq!(script.status(), 200);
    assert!(script.text().contains("Kiln.connect("), "{}", script.text());
    assert!(
        page.contains(&format!("data-last-id=\"{}\"", reply["id"])),
        "{page}"
    );
    // A name that is not a room name is a 404.
    assert_eq!(
        client
            .get("/chat/rooms/Not%20a%20room/")
            .send()
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn since_returns_what_was_saved_after_the_rendered_history() {
    let server = Server::start().await;
    server.user("alice").await;
    server.user("bob").await;
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    alice.join("chat.rust").await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let reply = alice
            .request(json!({ "type": "say", "room": "rust", "text": text }))
            .await;
        ids.push(reply["id"].as_i64().unwrap());
    }
    // Bob's page rendered up to "one".
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    bob.join("chat.rust").await;
    let reply = bob
        .request(json!({ "type": "since", "room": "rust", "after": ids[0] }))
        .await;
    let texts: Vec<&str> = reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["two", "three"]);
    assert_eq!(reply["messages"][0]["id"], ids[1]);
    assert_eq!(reply["more"], false);
    // More than a page: the first page says so, the next one ends it.
    for n in 0..showcase::chat::HISTORY {
        alice
            .request(json!({ "type": "say", "room": "rust", "text": format!("n{n}") }))
            .await;
    }
    let page = bob
        .request(json!({ "type": "since", "room": "rust", "after": ids[0] }))
        .await;
    let got = page["messages"].as_array().unwrap();
    assert_eq!(
        (got.len() as u64, &page["more"]),
        (showcase::chat::HISTORY, &json!(true))
    );
    let rest = bob
        .request(json!({ "type": "since", "room": "rust", "after": got.last().unwrap()["id"] }))
        .await;
    assert_eq!(rest["more"], false);
    // two, three, then n0..n49: 52 after "one"; 50 then 2.
    assert_eq!(rest["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn presence_shows_who_is_in_the_room() {
    let server = Server::start().await;
    server.user("alice").await;
    server.user("bob").await;
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    alice.join("chat.lobby").await;
    let state = alice.until(|f| f["t"] == "presence_state").await;
    assert_eq!(users(&state["entries"]), ["alice"]);
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    bob.join("chat.lobby").await;
    let state = bob.until(|f| f["t"] == "presence_state").await;
    assert_eq!(users(&state["entries"]), ["alice", "bob"]);
    alice.presence_change("chat.lobby", "joins", "bob").await;
    bob.ws.close(None).await.unwrap();
    alice.presence_change("chat.lobby", "leaves", "bob").await;
}

#[tokio::test]
async fn typing_reaches_the_others_but_not_the_typist() {
    let server = Server::start().await;
    for name in ["alice", "bob", "carol"] {
        server.user(name).await;
    }
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    let mut carol = server.connect(SOCKET, Some("carol")).await;
    for client in [&mut alice, &mut bob, &mut carol] {
        client.join("chat.lobby").await;
    }
    // Everyone is in the room before alice types.
    alice.presence_change("chat.lobby", "joins", "carol").await;
    let (reply, before) = alice
        .exchange(json!({ "type": "typing", "room": "lobby" }))
        .await;
    assert_eq!(reply["data"]["ok"], true, "{reply}");
    for other in [&mut bob, &mut carol] {
        let typing = other.until(|f| f["event"] == "typing").await;
        assert_eq!(typing["data"], json!({ "room": "lobby", "user": "alice" }));
        assert!(typing.get("room").is_none(), "a direct message: {typing}");
    }
    // Alice's own notice would have been sent before her ack; and after it,
    // her next frame is the answer to her next request.
    assert!(before.iter().all(|f| f["event"] != "typing"), "{before:?}");
    let (_, between) = alice
        .exchange(json!({ "type": "since", "room": "lobby", "after": 0 }))
        .await;
    assert!(
        between.iter().all(|f| f["event"] != "typing"),
        "{between:?}"
    );
}

#[tokio::test]
async fn empty_oversized_and_unjoined_messages_are_refused_and_not_stored() {
    let server = Server::start().await;
    server.user("alice").await;
    server.user("bob").await;
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    alice.join("chat.lobby").await;
    bob.join("chat.lobby").await;
    let long = "é".repeat(showcase::chat::MAX_LENGTH + 1);
    for (text, detail) in [
        ("", "the message is empty"),
        ("  \n ", "the message is empty"),
        (
            long.as_str(),
            "the message has 501 characters; the limit is 500",
        ),
    ] {
        let (reply, _) = alice
            .exchange(json!({ "type": "say", "room": "lobby", "text": text }))
            .await;
        assert_eq!(
            (&reply["t"], &reply["code"]),
            (&json!("error"), &json!("bad_message")),
            "{reply}"
        );
        assert!(
            reply["detail"].as_str().unwrap().contains(detail),
            "{reply}"
        );
    }
    let (reply, _) = alice
        .exchange(json!({ "type": "say", "room": "No Room!", "text": "hi" }))
        .await;
    assert_eq!(reply["code"], "bad_message", "{reply}");
    // A room alice has not joined.
    let reply = alice
        .request(json!({ "type": "say", "room": "elsewhere", "text": "hi" }))
        .await;
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(stored(&server).await.is_empty());
    // Exactly 500 characters is fine, and it is the first thing bob gets.
    let fits = "é".repeat(showcase::chat::MAX_LENGTH);
    let reply = alice
        .request(json!({ "type": "say", "room": "lobby", "text": fits }))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let said = bob.room_event("chat.lobby", "said").await;
    assert_eq!(said["data"]["id"], reply["id"]);
    assert_eq!(stored(&server).await.len(), 1);
}

#[tokio::test]
async fn anonymous_visitors_are_refused_and_a_session_is_enough() {
    let server = Server::start().await;
    server.user("alice").await;
    assert_eq!(refused_status(&server.ws_url(SOCKET, None)).await, 403);
    let forged = format!("ws://{}{SOCKET}?token=alice:xyz:abc", server.addr);
    assert_eq!(refused_status(&forged).await, 403);
    // A valid token for a user who does not exist.
    assert_eq!(
        refused_status(&server.ws_url(SOCKET, Some("nobody"))).await,
        403
    );
    // The session cookie of a logged-in browser works without a token.
    server.log_in("alice").await;
    let session = server.client.cookie("kiln_session").unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws_url(SOCKET, None),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", format!("kiln_session={session}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut alice = server::Client::from(ws);
    alice.join("chat.lobby").await;
    let reply = alice
        .request(json!({ "type": "say", "room": "lobby", "text": "by session" }))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn the_index_lists_rooms_and_opens_one_by_name() {
    let server = Server::start().await;
    let client = &server.client;
    let index = client.get("/chat/").send().await;
    assert_eq!(index.status(), 200);
    let lobby = client.reverse("chat:room", [("room", "lobby")]);
    assert!(
        index.text().contains(&format!("href=\"{lobby}\"")),
        "{}",
        index.text()
    );
    let open = client.get("/chat/?room=%20Rust-Fans%20").send().await;
    assert_eq!(open.status(), 303);
    assert_eq!(open.header("location"), Some("/chat/rooms/rust-fans/"));
    let bad = client.get("/chat/?room=no%20spaces%21").send().await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text()
            .contains("a room name has 1 to 40 lowercase letters, digits or dashes"),
        "{}",
        bad.text()
    );
}
