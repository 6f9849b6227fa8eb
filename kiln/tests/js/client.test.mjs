// kiln.js against a real Kiln server: messages, rooms, acks, presence.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Kiln, WS_URL, broadcast, connect, countingWebSocket, next, token, until } from "./support.mjs";

const T = { timeout: 30000 };

test("connects with a token, gets the consumer's direct message and answers requests", T, async (t) => {
  const socket = connect(t, "alice");
  const [hello] = await next(socket, "hello");
  assert.deepEqual(hello, { user: "alice" });
  assert.equal(socket.state, "open");
  assert.equal(socket.connected, true);
  assert.deepEqual(await socket.request({ type: "echo", text: "hi" }), { echoed: "hi" });
});

test("a string token works as well as a function", T, async (t) => {
  const socket = Kiln.connect(WS_URL, { token: await token("dora") });
  t.after(() => socket.close());
  const [hello] = await next(socket, "hello");
  assert.equal(hello.user, "dora");
});

test("join gives one room object, and room messages carry their ids", T, async (t) => {
  const socket = connect(t, "alice");
  const room = socket.join("js-lobby");
  assert.equal(socket.room("js-lobby"), room);
  assert.equal(socket.join("js-lobby"), room, "joining again returns the same room");
  assert.equal(await room.joined, room);
  const said = next(room, "said");
  const reply = await socket.request({ type: "say", room: "js-lobby", text: "hello" });
  assert.equal(typeof reply.id, "number");
  const [data, msg] = await said;
  assert.deepEqual(data, { user: "alice", text: "hello" });
  assert.equal(msg.id, reply.id);
  assert.equal(msg.room, "js-lobby");
  assert.equal(room.lastId, reply.id);
  // A view's broadcast reaches the room too, with the next id.
  const fromView = next(room, "news");
  const id = await broadcast("js-lobby", "news", { n: 1 });
  const [news, newsMsg] = await fromView;
  assert.deepEqual(news, { n: 1 });
  assert.equal(newsMsg.id, id);
  assert.ok(id > reply.id);
});

test("send is fire-and-forget: the consumer handles it without an answer", T, async (t) => {
  const socket = connect(t, "alice");
  const room = socket.join("js-send");
  await room.joined;
  const said = next(room, "said");
  socket.send({ type: "say", room: "js-send", text: "no ack" });
  const [data] = await said;
  assert.equal(data.text, "no ack");
});

test("request rejects with the server's error code, and on its own timeout", T, async (t) => {
  const socket = connect(t, "alice");
  await next(socket, "open");
  await assert.rejects(socket.request({ type: "no-such-type" }), (error) => {
    assert.equal(error.name, "KilnError");
    assert.ok(error instanceof Kiln.KilnError && error instanceof Error);
    assert.equal(error.code, "bad_message");
    return true;
  });
  // Nobody answers the server's question here, so the consumer never replies.
  await assert.rejects(socket.request({ type: "ask", text: "?", wait_ms: 1000 }, { timeout: 100 }), { code: "timeout" });
});

test("the server's emit_with_ack is answered by the handler's return value", T, async (t) => {
  const socket = connect(t, "alice");
  socket.on("question", async (data) => ({ seen: data.text, answer: 42 }));
  const reply = await socket.request({ type: "ask", text: "6x7?" });
  assert.deepEqual(reply, { answer: { seen: "6x7?", answer: 42 } });
});

test("a handler may answer through reply() instead", T, async (t) => {
  const socket = connect(t, "alice");
  socket.on("question", (data, reply) => {
    setTimeout(() => reply(data.text.toUpperCase()), 1);
  });
  assert.deepEqual(await socket.request({ type: "ask", text: "later" }), { answer: "LATER" });
});

test("presence: the state on join, then diffs as a second client joins and leaves", T, async (t) => {
  const alice = connect(t, "alice");
  const aliceRoom = alice.join("js-presence");
  const [members] = await next(aliceRoom, "presence", (m) => m.some((e) => e.user === "alice"));
  assert.deepEqual(members.map((e) => e.user), ["alice"]);
  assert.deepEqual(aliceRoom.users(), ["alice"]);
  const [entry] = aliceRoom.presence.values();
  assert.deepEqual(entry.meta, { status: "here" });
  assert.equal(aliceRoom.presence.get(entry.key), entry);

  const bob = connect(t, "bob");
  const bobJoined = next(aliceRoom, "presence", (_, diff) => diff.joins.some((e) => e.user === "bob"));
  const bobRoom = bob.join("js-presence");
  const [bobsView] = await next(bobRoom, "presence", (m) => m.length === 2);
  assert.deepEqual(bobsView.map((e) => e.user).sort(), ["alice", "bob"]);
  const [afterJoin, diff] = await bobJoined;
  assert.deepEqual(afterJoin.map((e) => e.user).sort(), ["alice", "bob"]);
  assert.equal(diff.joins.find((e) => e.user === "bob").meta.status, "here");
  assert.deepEqual(aliceRoom.users().sort(), ["alice", "bob"]);

  // Bob's second connection: two entries, one user.
  const bob2 = connect(t, "bob");
  bob2.join("js-presence");
  await until(() => aliceRoom.presence.size === 3, "bob's second entry");
  assert.deepEqual(aliceRoom.users().sort(), ["alice", "bob"]);
  bob2.close();
  await until(() => aliceRoom.presence.size === 2, "bob's second entry leaving");

  const bobLeft = next(aliceRoom, "presence", (_, d) => d.leaves.some((e) => e.user === "bob"));
  await bobRoom.leave();
  assert.equal(bob.room("js-presence"), undefined);
  const [afterLeave] = await bobLeft;
  assert.deepEqual(afterLeave.map((e) => e.user), ["alice"]);
  assert.deepEqual(aliceRoom.users(), ["alice"]);
});

test("a forbidden join rejects room.joined and forgets the room", T, async (t) => {
  const alice = connect(t, "alice");
  const room = alice.join("private-js");
  const errors = [];
  room.on("error", (error) => errors.push(error.code));
  await assert.rejects(room.joined, (error) => {
    assert.equal(error.code, "forbidden");
    assert.equal(error.frame.room, "private-js");
    return true;
  });
  assert.deepEqual(errors, ["forbidden"]);
  assert.equal(alice.room("private-js"), undefined);
  assert.deepEqual(await alice.request({ type: "echo", text: "still here" }), { echoed: "still here" });
  const admin = connect(t, "admin");
  await admin.join("private-js").joined;
});

test("bad input is refused with clear errors, not thrown from deep inside", T, async (t) => {
  assert.throws(() => Kiln.connect("/relative/", {}), /absolute ws:\/\/ or wss:\/\//);
  assert.throws(() => Kiln.connect("ftp://example.test/ws/"), /not an http\(s\) or ws\(s\) URL/);
  assert.throws(() => Kiln.connect(WS_URL, { minDelay: 100, maxDelay: 10 }), RangeError);
  const socket = connect(t, "alice");
  assert.throws(() => socket.join(""), TypeError);
  assert.throws(() => socket.on("x", "not a function"), TypeError);
});

test("close() ends the socket for good: code 1000, no reconnection, pending requests rejected", T, async (t) => {
  const counting = countingWebSocket();
  const socket = connect(t, "alice", { WebSocket: counting.WebSocket, minDelay: 10, maxDelay: 10 });
  let reconnecting = 0;
  socket.on("reconnecting", () => (reconnecting += 1));
  const room = socket.join("js-close");
  await room.joined;
  // The server's question goes unanswered, so this request stays pending.
  const pending = socket.request({ type: "ask", text: "never answered", wait_ms: 1000 }, { timeout: 0 });
  const closed = next(socket, "close");
  socket.close();
  await assert.rejects(pending, { code: "closed" });
  const [event] = await closed;
  assert.equal(event.code, 1000);
  assert.equal(event.willReconnect, false);
  assert.equal(socket.state, "closed");
  assert.throws(() => socket.send({ type: "echo", text: "late" }), { code: "closed" });
  await assert.rejects(socket.request({ type: "echo", text: "late" }), { code: "closed" });
  // Room traffic goes on; this socket would have been back many times over
  // its 10 ms back-off if it were reconnecting.
  const other = connect(t, "bob");
  for (let n = 0; n < 5; n++) {
    await other.request({ type: "say", room: "js-close", text: String(n) });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(counting.made(), 1);
  assert.equal(reconnecting, 0);
});
