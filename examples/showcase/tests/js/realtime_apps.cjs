// The showcase's chat and tic-tac-toe consumers through Kiln's JavaScript
// client, as the pages use it. Run by tests/js_client.rs against a real
// server: KILN_JS is the client's file, BASE the server's ws:// URL, ALICE and
// BOB tokens for two users. Any failed assertion exits non-zero.
"use strict";
const assert = require("node:assert/strict");
const Kiln = require(process.env.KILN_JS);

const connect = (path, token, options = {}) =>
  Kiln.connect(process.env.BASE + path, { token, WebSocket, ...options });
const next = (emitter, event) => new Promise((resolve) => emitter.on(event, (...args) => resolve(args)));

async function chat() {
  const alice = connect("/chat/ws/", process.env.ALICE);
  const bob = connect("/chat/ws/", process.env.BOB);
  const aliceRoom = alice.join("chat.lobby");
  const bobRoom = bob.join("chat.lobby");
  await aliceRoom.joined;
  await bobRoom.joined;

  const typing = next(bob, "typing");
  alice.send({ type: "typing", room: "lobby" });
  assert.deepEqual((await typing)[0], { room: "lobby", user: "alice" });

  const said = next(bobRoom, "said");
  const reply = await alice.request({ type: "say", room: "lobby", text: "<b>hi</b>" });
  assert.equal(reply.ok, true);
  const [data, message] = await said;
  assert.equal(data.id, reply.id);
  assert.equal(data.text, "<b>hi</b>");
  assert.equal(typeof message.id, "number");

  // The page shows `refused.detail` when a request is refused.
  await assert.rejects(alice.request({ type: "say", room: "lobby", text: "  " }), (error) => {
    assert.equal(error.code, "bad_message");
    assert.match(error.detail, /the message is empty/);
    return true;
  });
  const since = await bob.request({ type: "since", room: "lobby", after: 0 });
  assert.deepEqual(since.messages.map((m) => m.text), ["<b>hi</b>"]);
  assert.equal(since.more, false);

  while (bobRoom.users().length < 2) await next(bobRoom, "presence");
  assert.deepEqual([...bobRoom.users()].sort(), ["alice", "bob"]);

  // Anonymous: refused before the upgrade; the page's socket gives up.
  const anonymous = connect("/chat/ws/", undefined, { reconnect: false });
  const [closed] = await next(anonymous, "close");
  assert.equal(closed.willReconnect, false);
  alice.close();
  bob.close();
}

async function tictactoe() {
  const alice = connect("/games/tictactoe/ws/", process.env.ALICE);
  const bob = connect("/games/tictactoe/ws/", process.env.BOB);
  const found = await alice.request({ type: "find" });
  assert.equal(found.role, "X");
  const game = found.game.id;
  const room = alice.join("tictactoe." + game);
  await room.joined;
  const started = next(room, "state");
  assert.equal((await bob.request({ type: "find" })).role, "O");
  assert.equal((await started)[0].status, "playing");
  assert.equal((await alice.request({ type: "move", game, cell: 4 })).ok, true);
  const refused = await alice.request({ type: "move", game, cell: 0 });
  assert.deepEqual([refused.ok, refused.code], [false, "not_your_turn"]);
  const watcher = connect("/games/tictactoe/ws/", undefined);
  const watched = await watcher.request({ type: "state", game });
  assert.equal(watched.role, "spectator");
  assert.equal(watched.game.board[4], "X");
  [alice, bob, watcher].forEach((socket) => socket.close());
}

chat()
  .then(tictactoe)
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
