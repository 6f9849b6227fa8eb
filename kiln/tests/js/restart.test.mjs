// kiln.js across a graceful restart of its server: the server stops as on
// SIGTERM (open WebSockets get close code 1001, "server shutting down") and
// a new one starts on the same port. kiln/tests/js_client.rs serves it at
// KILN_RESTART_URL, on a port of its own so that the restarts do not
// disturb the other test files; `POST /restart/` restarts it.
//
// What docs/topics/realtime.md promises: after 1001 the client reconnects
// and rejoins its rooms with their last_id, "so it misses nothing the
// history still holds". A layer that outlives the process (Redis, NATS)
// still holds it; an in-process layer starts empty, and the client must be
// told to resync rather than silently miss messages.
import assert from "node:assert/strict";
import { test } from "node:test";

import { broadcast, deferred, gated, next, record, until } from "./support.mjs";

const BASE = process.env.KILN_RESTART_URL;
if (!BASE) throw new Error("KILN_RESTART_URL is not set: run these through `cargo test -p kiln --test js_client`");
const T = { timeout: 60000 };

/** Which server answers (1, 2, ...), or null while none does. */
async function incarnation() {
  try {
    const response = await fetch(`${BASE}/incarnation/`);
    return response.ok ? Number(await response.text()) : null;
  } catch {
    return null;
  }
}

/**
 * Asks the server to restart. With `keepLayer` the new server shares the old
 * one's channel layer, as a Redis or NATS layer outlives the process;
 * otherwise its in-process layer is new. Returns the number of the server
 * that answered before.
 */
async function restart(keepLayer) {
  const before = await incarnation();
  assert.ok(before !== null, "the server answers before the restart");
  const response = await fetch(`${BASE}/restart/?keep_layer=${keepLayer}`, { method: "POST" });
  assert.equal(await response.text(), "restarting");
  return before;
}

/** Resolves once a server after `before` answers (refusals while the port is free are asked again). */
async function restarted(before) {
  let current = null;
  let stopped = false;
  (async () => {
    while (!stopped && !(current > before)) {
      current = await incarnation();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await until(() => current !== null && current > before, `server ${before + 1}`);
  } finally {
    stopped = true;
  }
}

test("after a graceful restart the socket reconnects, rejoins, and gets what was sent meanwhile from a layer that kept it", T, async (t) => {
  const { socket, state } = gated(t, "ivan", BASE);
  const room = socket.join("restart-kept");
  const seen = record(room, "n");
  let resyncs = 0;
  room.on("resync", () => (resyncs += 1));
  await room.joined;
  const first = await broadcast("restart-kept", "n", 1, BASE);
  await until(() => seen.length === 1, "the first message");

  state.gate = deferred();
  const closed = next(socket, "close");
  const before = await restart(true);
  const [event] = await closed;
  assert.equal(event.code, 1001);
  assert.equal(event.reason, "server shutting down");
  assert.equal(event.willReconnect, true);
  await restarted(before);

  // Sent to the new server while the client is away.
  const missed = [];
  for (const n of [2, 3]) missed.push(await broadcast("restart-kept", "n", n, BASE));
  const reopened = next(socket, "open");
  state.gate.resolve();
  await reopened;
  await until(() => seen.length === 3, "the messages sent while away");
  const live = await broadcast("restart-kept", "n", 4, BASE);
  await until(() => seen.length === 4, "the live message");
  assert.deepEqual(seen, [
    [first, 1],
    [missed[0], 2],
    [missed[1], 3],
    [live, 4],
  ]);
  assert.equal(resyncs, 0);
  await until(() => room.users().length === 1, "ivan's presence on the new server");
  assert.deepEqual(room.users(), ["ivan"]);
});

test("after a restart that lost the history the room gets resync, then live messages", T, async (t) => {
  const { socket } = gated(t, "judy", BASE);
  const room = socket.join("restart-lost");
  const seen = record(room, "n");
  let resyncs = 0;
  room.on("resync", () => (resyncs += 1));
  await room.joined;
  // Several messages, so that the client's last id is past the first ids
  // a new layer would give if its ids started afresh.
  const sent = [];
  for (const n of [1, 2, 3]) sent.push(await broadcast("restart-lost", "n", n, BASE));
  await until(() => seen.length === 3, "the first messages");

  const closed = next(socket, "close");
  const before = await restart(false);
  const [event] = await closed;
  assert.equal(event.code, 1001);
  // No gate: the socket retries, refused while the port is free, until
  // the new server answers.
  await restarted(before);
  await until(() => resyncs === 1, "the resync event");
  assert.equal(socket.state, "open");
  const live = await broadcast("restart-lost", "n", 4, BASE);
  await until(() => seen.length === 4, "the live message after the restart");
  assert.deepEqual(seen, [
    [sent[0], 1],
    [sent[1], 2],
    [sent[2], 3],
    [live, 4],
  ]);
  assert.ok(live > sent[2], `the new server's ids (${live}) follow the old one's (${sent[2]})`);
  assert.equal(resyncs, 1);
});
