//! Tic-tac-toe on a real port: matching, a full game, the rules enforced on
//! the server, spectators, and a player who leaves and comes back.

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

#[path = "support/server.rs"]
pub mod server;

use serde_json::{Value, json};
use server::{Client, Server};

const SOCKET: &str = "/games/tictactoe/ws/";

/// A started game between alice (X) and bob (O), both in its room.
async fn started(server: &Server) -> (u64, String, Client, Client) {
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    let found = alice.request(json!({ "type": "find" })).await;
    assert_eq!(
        (&found["ok"], &found["role"], &found["game"]["status"]),
        (&json!(true), &json!("X"), &json!("waiting")),
        "{found}"
    );
    let id = found["game"]["id"].as_u64().unwrap();
    let room = format!("tictactoe.{id}");
    assert_eq!(alice.join(&room).await["t"], "joined");
    let found = bob.request(json!({ "type": "find" })).await;
    assert_eq!(found["game"]["id"], id, "bob is matched with alice");
    assert_eq!(found["role"], "O");
    assert_eq!(bob.join(&room).await["t"], "joined");
    // Alice learns that the game started.
    let state = alice.room_event(&room, "state").await;
    assert_eq!(state["data"]["status"], "playing");
    assert_eq!(state["data"]["o"], "bob");
    (id, room, alice, bob)
}

async fn play(client: &mut Client, game: u64, cell: u64) -> Value {
    client
        .request(json!({ "type": "move", "game": game, "cell": cell }))
        .await
}

fn refused(reply: &Value, code: &str) {
    assert_eq!(
        (&reply["ok"], &reply["code"]),
        (&json!(false), &json!(code)),
        "{reply}"
    );
}

#[tokio::test]
async fn two_players_are_matched_and_play_to_a_win() {
    let server = Server::start().await;
    let (id, room, mut alice, mut bob) = started(&server).await;
    let mut seq = 0;
    for (cell, x_moves) in [(0, true), (3, false), (1, true), (4, false), (2, true)] {
        let player = if x_moves { &mut alice } else { &mut bob };
        let reply = play(player, id, cell).await;
        assert_eq!(reply["ok"], true, "{reply}");
        // Both see each move, in order.
        for client in [&mut alice, &mut bob] {
            let state = client.room_event(&room, "state").await["data"].clone();
            assert!(state["seq"].as_u64().unwrap() > seq);
            assert_eq!(
                state["board"][cell as usize],
                if x_moves { "X" } else { "O" }
            );
        }
        seq = reply["game"]["seq"].as_u64().unwrap();
    }
    let state = alice.request(json!({ "type": "state", "game": id })).await;
    assert_eq!(
        state["game"]["status"],
        json!({ "won": { "winner": "X", "line": [0, 1, 2] } })
    );
    assert_eq!(state["role"], "X");
    refused(&play(&mut bob, id, 5).await, "game_over");
}

#[tokio::test]
async fn illegal_moves_are_refused_and_change_nothing() {
    let server = Server::start().await;
    let mut waiting = server.connect(SOCKET, Some("zoe")).await;
    let lonely = waiting.request(json!({ "type": "find" })).await;
    let lonely_id = lonely["game"]["id"].as_u64().unwrap();
    refused(&play(&mut waiting, lonely_id, 0).await, "waiting");
    let (id, _room, mut alice, mut bob) = {
        // Zoe's game takes the next player: start alice and bob's own game
        // once it has its O.
        let mut yann = server.connect(SOCKET, Some("yann")).await;
        let joined = yann.request(json!({ "type": "find" })).await;
        assert_eq!(joined["game"]["id"], lonely_id);
        started(&server).await
    };
    refused(&play(&mut bob, id, 4).await, "not_your_turn");
    assert_eq!(play(&mut alice, id, 4).await["ok"], true);
    refused(&play(&mut bob, id, 4).await, "cell_taken");
    refused(&play(&mut bob, id, 9).await, "bad_cell");
    refused(&play(&mut alice, id, 0).await, "not_your_turn");
    // A third player and an anonymous visitor only watch.
    let mut carol = server.connect(SOCKET, Some("carol")).await;
    refused(&play(&mut carol, id, 0).await, "spectator");
    let mut guest = server.connect(SOCKET, None).await;
    refused(&play(&mut guest, id, 0).await, "spectator");
    let found = guest.request(json!({ "type": "find" })).await;
    assert_eq!(
        (&found["ok"], &found["code"]),
        (&json!(false), &json!("log_in"))
    );
    refused(&play(&mut alice, 999, 0).await, "no_such_game");
    // A move that is not a move at all is a protocol error.
    let (reply, _) = alice
        .exchange(json!({ "type": "move", "game": id, "cell": "middle" }))
        .await;
    assert_eq!(reply["code"], "bad_message", "{reply}");
    // Only the one legal move was played.
    let state = bob.request(json!({ "type": "state", "game": id })).await;
    let board: Vec<Value> = state["game"]["board"].as_array().unwrap().clone();
    let marks: Vec<&Value> = board.iter().filter(|cell| !cell.is_null()).collect();
    assert_eq!(marks, [&json!("X")]);
    assert_eq!(board[4], "X");
    assert_eq!(state["game"]["turn"], "O");
}

#[tokio::test]
async fn a_spectator_joining_mid_game_gets_the_state_then_follows_it() {
    let server = Server::start().await;
    let (id, room, mut alice, mut bob) = started(&server).await;
    assert_eq!(play(&mut alice, id, 4).await["ok"], true);
    assert_eq!(play(&mut bob, id, 0).await["ok"], true);
    let mut carol = server.connect(SOCKET, Some("carol")).await;
    assert_eq!(carol.join(&room).await["t"], "joined");
    let state = carol.request(json!({ "type": "state", "game": id })).await;
    assert_eq!(state["role"], "spectator");
    assert_eq!(state["game"]["board"][4], "X");
    assert_eq!(state["game"]["board"][0], "O");
    assert_eq!(state["game"]["turn"], "X");
    // Players see the spectator arrive.
    alice.presence_change(&room, "joins", "carol").await;
    assert_eq!(play(&mut alice, id, 8).await["ok"], true);
    let live = carol.room_event(&room, "state").await;
    assert_eq!(live["data"]["board"][8], "X");
    assert_eq!(
        live["data"]["seq"].as_u64().unwrap(),
        state["game"]["seq"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn a_player_who_leaves_finds_the_game_waiting_for_them() {
    let server = Server::start().await;
    let (id, room, mut alice, mut bob) = started(&server).await;
    assert_eq!(play(&mut alice, id, 4).await["ok"], true);
    bob.ws.close(None).await.unwrap();
    alice.presence_change(&room, "leaves", "bob").await;
    // Nothing is forfeited: alice cannot play bob's turn, and the game is on.
    refused(&play(&mut alice, id, 0).await, "not_your_turn");
    let mut bob = server.connect(SOCKET, Some("bob")).await;
    bob.join(&room).await;
    let state = bob.request(json!({ "type": "state", "game": id })).await;
    assert_eq!(
        (
            &state["role"],
            &state["game"]["status"],
            &state["game"]["turn"]
        ),
        (&json!("O"), &json!("playing"), &json!("O"))
    );
    assert_eq!(play(&mut bob, id, 0).await["ok"], true);
}

#[tokio::test]
async fn the_pages_render_with_the_socket_url_and_the_client() {
    let server = Server::start().await;
    server.user("alice").await;
    let client = &server.client;
    let index = client.get("/games/tictactoe/").send().await;
    assert_eq!(index.status(), 200);
    assert!(
        index.text().contains("Log in</a> to play"),
        "{}",
        index.text()
    );
    server.log_in("alice").await;
    let socket = client.reverse("games:tictactoe_socket", ());
    let index = client.get("/games/tictactoe/").send().await.text();
    assert!(
        index.contains(&format!("data-socket=\"{socket}\"")),
        "{index}"
    );
    assert!(index.contains("/static/kiln/kiln.js"), "{index}");
    assert!(index.contains("src=\"/static/games/play.js\""), "{index}");
    // A game made over the socket is listed and has its page (for anyone),
    // on the served site, whose process holds the games.
    let mut alice = server.connect(SOCKET, Some("alice")).await;
    let found = alice.request(json!({ "type": "find" })).await;
    let id = found["game"]["id"].as_u64().unwrap();
    let url = client.reverse("games:tictactoe_game", [("id", id)]);
    let get = async |path: &str| {
        let response = reqwest::get(server.http(path)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (_, index) = get("/games/tictactoe/").await;
    assert!(index.contains(&format!("href=\"{url}\"")), "{index}");
    let (status, page) = get(&url).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("data-socket=\"{socket}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("data-room=\"tictactoe.{id}\"")),
        "{page}"
    );
    assert!(page.contains("/static/kiln/kiln.js"), "{page}");
    assert!(page.contains("src=\"/static/games/game.js\""), "{page}");
    let (status, script) = get("/static/games/game.js").await;
    assert_eq!(status, 200);
    assert!(script.contains("socket.join(config.room)"), "{script}");
    assert_eq!(get("/games/tictactoe/999/").await.0, 404);
}
