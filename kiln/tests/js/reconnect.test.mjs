// kiln.js reconnection against a real Kiln server: resume by last_id,
// resync, close codes, back-off, refusals.
//
// The server drops a connection on request (`kick`). The next connection
// waits for the test's go-ahead through the token function (called once per
// connection), so that messages are broadcast while the client is certainly
// away: the tests do not depend on how fast anything is.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Kiln, WS_URL, broadcast, connect, countingWebSocket, deferred, gated, next, record, token, until } from "./support.mjs";

const T = { timeout: 30000 };

test("after the server drops it, the socket reconnects, rejoins and gets the missed messages once, in order", T, async (t) => {
  const { socket, state } = gated(t, "carol");
  const room = socket.join("js-resume");
  const seen = record(room, "n");
  await room.joined;
  await until(() => room.presence.size === 1, "carol's own presence");
  const [oldKey] = room.presence.keys();
  const first = await broadcast("js-resume", "n", 1);
  await until(() => seen.length === 1, "the first message");

  state.gate = deferred();
  const closed = next(socket, "close");
  const reconnecting = next(socket, "reconnecting");
  socket.send({ type: "kick", code: 4100 });
  // Already sent when the connection drops: rejected, never resent.
  const lost = socket.request({ type: "echo", text: "lost" }, { timeout: 0 });
  const [event] = await closed;
  assert.equal(event.code, 4100);
  assert.equal(event.reason, "kicked");
  assert.equal(event.willReconnect, true);
  await assert.rejects(lost, { code: "closed" });
  const [{ attempt, delay }] = await reconnecting;
  assert.equal(attempt, 1);
  assert.ok(delay >= 20 && delay <= 200, `delay ${delay} within minDelay..maxDelay`);
  assert.equal(socket.state, "reconnecting");

  const missed = [];
  for (const n of [2, 3, 4]) missed.push(await broadcast("js-resume", "n", n));
  // Made while away: queued, and answered once the socket is back.
  const queued = socket.request({ type: "echo", text: "queued" });
  const reopened = next(socket, "open");
  state.gate.resolve();
  await reopened;
  assert.equal(state.connections, 2);
  assert.deepEqual(await queued, { echoed: "queued" });
  await until(() => seen.length === 4, "the missed messages");
  const live = await broadcast("js-resume", "n", 5);
  await until(() => seen.length === 5, "the live message");
  assert.deepEqual(seen, [
    [first, 1],
    [missed[0], 2],
    [missed[1], 3],
    [missed[2], 4],
    [live, 5],
  ]);
  // The presence state of the new connection replaced the old one.
  await until(
    () => room.presence.size === 1 && !room.presence.has(oldKey),
    "presence of the new connection only",
  );
  assert.deepEqual(room.users(), ["carol"]);
});

test("when the missed messages have left the history, the room gets resync", T, async (t) => {
  const { socket, state } = gated(t, "erin");
  const room = socket.join("js-resync");
  const seen = record(room, "n");
  let resyncs = 0;
  room.on("resync", () => (resyncs += 1));
  await room.joined;
  const first = await broadcast("js-resync", "n", 0);
  await until(() => seen.length === 1, "the first message");

  state.gate = deferred();
  const closed = next(socket, "close");
  socket.send({ type: "kick", code: 4100 });
  await closed;
  // The server keeps 5 (realtime_history = 5): 8 is past it.
  for (let n = 1; n <= 8; n++) await broadcast("js-resync", "n", n);
  state.gate.resolve();
  await until(() => resyncs === 1, "the resync event");
  const live = await broadcast("js-resync", "n", 9);
  await until(() => seen.length === 2, "the live message");
  assert.deepEqual(seen, [
    [first, 0],
    [live, 9],
  ]);
  assert.equal(resyncs, 1);
});

test("a message over the server's limit surfaces close code 1009, then the socket comes back", T, async (t) => {
  const socket = connect(t, "frank");
  await next(socket, "open");
  const closed = next(socket, "close");
  socket.send({ type: "echo", text: "x".repeat(20 * 1024) });
  const [event] = await closed;
  assert.equal(event.code, 1009);
  assert.equal(event.willReconnect, true);
  await next(socket, "open");
  assert.deepEqual(await socket.request({ type: "echo", text: "small" }), { echoed: "small" });
});

test("close() while reconnecting stops the reconnection", T, async (t) => {
  const counting = countingWebSocket();
  let calls = 0;
  const asked = deferred();
  const gate = deferred();
  const returned = deferred();
  const socket = connect(t, "hank", {
    WebSocket: counting.WebSocket,
    token: async () => {
      calls += 1;
      if (calls > 1) {
        asked.resolve();
        await gate.promise;
      }
      const value = await token("hank");
      if (calls > 1) returned.resolve();
      return value;
    },
  });
  await next(socket, "open");
  socket.send({ type: "kick", code: 4100 });
  // The back-off is over and the next connection waits for its token.
  await asked.promise;
  socket.close();
  assert.equal(socket.state, "closed");
  gate.resolve();
  await returned.promise;
  // One macrotask later every promise callback of the socket has run.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(counting.made(), 1, "no connection after close()");
});

test("a close with 1000 by the server is final", T, async (t) => {
  const counting = countingWebSocket();
  const socket = connect(t, "gina", { WebSocket: counting.WebSocket });
  await next(socket, "open");
  const closed = next(socket, "close");
  socket.send({ type: "kick", code: 1000 });
  // Behind the kick: the consumer never handles it.
  const pending = socket.request({ type: "echo", text: "after the kick" }, { timeout: 0 });
  const [event] = await closed;
  assert.equal(event.code, 1000);
  assert.equal(event.willReconnect, false);
  assert.equal(socket.state, "closed");
  await assert.rejects(pending, { code: "closed" });
  assert.equal(counting.made(), 1);
});

test("a server that refuses the connection is retried with back-off up to maxAttempts", T, async (t) => {
  const socket = Kiln.connect(WS_URL, { token: "not-a-valid-token", minDelay: 10, maxDelay: 40, maxAttempts: 3 });
  t.after(() => socket.close());
  const delays = [];
  socket.on("reconnecting", ({ attempt, delay }) => delays.push([attempt, delay]));
  socket.on("error", () => {});
  const opened = [];
  socket.on("open", () => opened.push(true));
  const final = await next(socket, "close", (event) => !event.willReconnect);
  assert.equal(final[0].code, 1006);
  assert.deepEqual(
    delays.map(([attempt]) => attempt),
    [1, 2, 3],
  );
  for (const [attempt, delay] of delays) {
    assert.ok(delay >= 10 && delay <= Math.min(40, 10 * 2 ** (attempt - 1)), `attempt ${attempt}: ${delay} ms`);
  }
  assert.equal(opened.length, 0);
  assert.equal(socket.state, "closed");
});
