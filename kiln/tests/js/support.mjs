// Helpers of the kiln.js tests (kiln/tests/js_client.rs starts the server
// and runs them). Waits are bounded only so that a broken feature fails
// instead of hanging; no assertion depends on how long anything takes.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const Kiln = require("../../static/kiln/kiln.js");

export const BASE = process.env.KILN_TEST_URL;
if (!BASE) {
  throw new Error("KILN_TEST_URL is not set: run these through `cargo test -p kiln --test js_client`");
}
export const WS_URL = BASE.replace(/^http/, "ws") + "/ws/";

/** The longest any single wait may take. */
export const GUARD_MS = 15000;

/** A signed token for `user`, from the test server at `base`. */
export async function token(user, base = BASE) {
  const response = await fetch(`${base}/token/?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`token for ${user}: ${response.status}`);
  return response.text();
}

/** Broadcasts `event` with `data` to `room` from a view of the server at `base`; the message id. */
export async function broadcast(room, event, data, base = BASE) {
  const response = await fetch(`${base}/post/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ room, event, data }),
  });
  if (!response.ok) throw new Error(`broadcast: ${response.status} ${await response.text()}`);
  return Number(await response.text());
}

/** A socket logged in as `user` to the server at `base`, closed when test `t` ends. */
export function connect(t, user, options = {}, base = BASE) {
  const url = base.replace(/^http/, "ws") + "/ws/";
  const socket = Kiln.connect(url, { token: () => token(user, base), minDelay: 20, maxDelay: 200, ...options });
  t.after(() => socket.close());
  return socket;
}

/** A socket for `user` whose reconnections wait for `state.gate.resolve()` once a gate is set. */
export function gated(t, user, base = BASE) {
  const state = { gate: null, connections: 0 };
  const socket = connect(
    t,
    user,
    {
      token: async () => {
        state.connections += 1;
        if (state.gate) await state.gate.promise;
        return token(user, base);
      },
    },
    base,
  );
  return { socket, state };
}

/** The messages of `event` that `room` gets, as [id, data] pairs. */
export function record(room, event) {
  const seen = [];
  room.on(event, (data, msg) => seen.push([msg.id, data]));
  return seen;
}

/** `promise`, or a failure naming `what` after GUARD_MS. */
export function guard(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${GUARD_MS} ms`)), GUARD_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The arguments of the next `event` of `emitter` (a socket or a room) that `accept` takes. */
export function next(emitter, event, accept = () => true) {
  return guard(
    new Promise((resolve) => {
      const off = emitter.on(event, (...args) => {
        if (accept(...args)) {
          off();
          resolve(args);
        }
      });
    }),
    `event "${event}"`,
  );
}

/** Resolves once `condition()` holds (checked every few ms, up to GUARD_MS). */
export function until(condition, what) {
  let stopped = false;
  const polled = new Promise((resolve) => {
    const check = () => {
      if (stopped) return;
      if (condition()) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
  // Polling stops either way, so that a failed wait does not keep Node alive.
  return guard(polled, what).finally(() => (stopped = true));
}

/** A promise with its resolve function outside. */
export function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** A WebSocket class that counts the connections it makes: `made()`. */
export function countingWebSocket() {
  let made = 0;
  class CountingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      made += 1;
    }
  }
  return { WebSocket: CountingWebSocket, made: () => made };
}
