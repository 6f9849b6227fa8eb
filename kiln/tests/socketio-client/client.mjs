// The official socket.io-client against a Kiln server, for kiln/tests/socketio.rs.
//
//   node client.mjs basic URL [websocket]   connect, emit/receive, acks both ways, disconnect
//   node client.mjs rooms URL               rooms and broadcasts between three clients
//   node client.mjs cross URL_A URL_B       a room broadcast on B reaches a client on A
//   node client.mjs limit URL               the server holds 2 connections: a third gets a
//                                           connect_error, the others carry on, a freed place is reused
//   node client.mjs flood URL TRANSPORT     a client over the rate limit (5/s) is cut off, alone
//
// Prints "ok SCENARIO" and exits 0 when every check passed; prints the first
// failed check and exits 1 otherwise.
import { io } from "socket.io-client";

const [scenario, ...args] = process.argv.slice(2);

// A hang guard only: every step below waits for an event, never for time.
setTimeout(() => fail("timed out waiting for the server"), 15000).unref();

function fail(message) {
  console.error(`FAIL ${scenario}: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

// JSON with object keys sorted: the server's maps need not keep their order.
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical(value[key])]));
  }
  return value;
}

function same(actual, expected, what) {
  const [a, e] = [JSON.stringify(canonical(actual)), JSON.stringify(canonical(expected))];
  check(a === e, `${what}: expected ${e}, got ${a}`);
}

function connect(url, transports) {
  const socket = io(url, { reconnection: false, transports: transports ?? ["polling", "websocket"] });
  socket.on("connect_error", (error) => fail(`connect_error on ${url}: ${error.message}`));
  return socket;
}

function next(socket, event) {
  return new Promise((resolve) => socket.once(event, (...values) => resolve(values)));
}

async function connected(socket) {
  // The server greets every socket as soon as its connect handler ran.
  const [welcome] = await next(socket, "welcome");
  check(socket.connected, "not connected after the welcome");
  return welcome;
}

async function basic(url, transport) {
  const socket = connect(url, transport ? [transport] : undefined);
  // The server asks a question with an ack as soon as the socket connects.
  socket.on("question", (n, answer) => answer(n + 1));
  const answered = next(socket, "answered");
  const welcome = await connected(socket);
  same(welcome.site, "sio", "the Site extractor's project name");
  same(welcome.sid, socket.id, "the socket id the server sees");

  // Server -> client ack: the server got our answer to its question.
  same((await answered)[0], 21, "the server's emit_with_ack result");

  // Client -> server ack.
  same(await socket.emitWithAck("echo", { text: "hi", n: [1, 2] }), { echo: { text: "hi", n: [1, 2] } }, "emitWithAck");

  // Plain emit, answered by an emit.
  const shouted = next(socket, "shouted");
  socket.emit("shout", "hello");
  same((await shouted)[0], "HELLO", "emit then receive");

  // Data that does not fit the handler's type: the server says so and the
  // connection stays usable.
  same(await socket.emitWithAck("typed", "not a number"), { error: "bad data" }, "typed handler with bad data");
  same(await socket.emitWithAck("typed", 41), { ok: 42 }, "typed handler");

  if (transport !== "websocket") {
    // The default client starts on long-polling (posts go through Kiln's
    // stack) and upgrades to a WebSocket.
    if (socket.io.engine.transport.name !== "websocket") await next(socket.io.engine, "upgrade");
    same(socket.io.engine.transport.name, "websocket", "the upgraded transport");
    same(await socket.emitWithAck("echo", 7), { echo: 7 }, "emitWithAck after the upgrade");
  }

  const gone = next(socket, "disconnect");
  socket.disconnect();
  same((await gone)[0], "io client disconnect", "the disconnect reason");
}

async function rooms(url) {
  const [a, b, c] = [connect(url), connect(url), connect(url)];
  await Promise.all([a, b, c].map(connected));
  same(await a.emitWithAck("join", "lobby"), "joined", "a joins");
  same(await b.emitWithAck("join", "lobby"), "joined", "b joins");
  const said = { a: [], c: [] };
  a.on("said", (text) => said.a.push(text));
  c.on("said", (text) => said.c.push(text));
  const heard = next(b, "said");
  const announced = [a, b, c].map((socket) => next(socket, "announce"));

  // "say" sends to the room's other members, then announces to everyone.
  a.emit("say", { room: "lobby", text: "hello lobby" });
  same((await heard)[0], "hello lobby", "the room member's message");
  for (const [socket, announce] of [[a, announced[0]], [b, announced[1]], [c, announced[2]]]) {
    same((await announce)[0], "after hello lobby", `announce to ${socket.id}`);
  }
  // The announce was queued after the room message on every socket, so a
  // room message to a or c would have arrived before it.
  same(said.a, [], "the sender got its own room message");
  same(said.c, [], "a socket outside the room got the room message");

  same(await b.emitWithAck("leave", "lobby"), "left", "b leaves");
  const announcedAgain = next(b, "announce");
  b.on("said", (text) => fail(`b got "${text}" after leaving the room`));
  a.emit("say", { room: "lobby", text: "anyone?" });
  same((await announcedAgain)[0], "after anyone?", "announce after the leave");
  [a, b, c].forEach((socket) => socket.disconnect());
}

async function cross(urlA, urlB) {
  const [onA, onB] = [connect(urlA), connect(urlB)];
  const [welcomeA, welcomeB] = await Promise.all([connected(onA), connected(onB)]);
  check(welcomeA.site !== welcomeB.site, "both clients reached the same server");
  same(await onA.emitWithAck("join", "lobby"), "joined", "the client on A joins");
  same(await onB.emitWithAck("join", "lobby"), "joined", "the client on B joins");
  const heard = next(onA, "said");
  const announced = next(onA, "announce");
  onB.emit("say", { room: "lobby", text: "from B" });
  same((await heard)[0], "from B", "the room message from the other node");
  same((await announced)[0], "after from B", "the everyone-broadcast from the other node");
  [onA, onB].forEach((socket) => socket.disconnect());
}

// A client that answers the server's question, so that the server's
// emit_with_ack task does not hold the socket after it disconnects.
function polite(url, transports) {
  const socket = io(url, { reconnection: false, transports: transports ?? ["websocket"] });
  socket.on("question", (n, answer) => answer(n + 1));
  return socket;
}

// Resolves with the connect_error's message, or fails if the socket connects.
function refused(socket) {
  return new Promise((resolve) => {
    socket.once("connect", () => fail("a connection over the limit was accepted"));
    socket.once("connect_error", (error) => resolve(error.message));
  });
}

async function limit(url) {
  const [a, b] = [polite(url), polite(url)];
  for (const socket of [a, b]) socket.on("connect_error", (error) => fail(`connect_error under the limit: ${error.message}`));
  await Promise.all([a, b].map(connected));
  const third = polite(url);
  const message = await refused(third);
  check(message.includes("realtime_max_connections"), `the refusal names the limit: ${message}`);
  third.close();
  // The two connections carry on.
  same(await a.emitWithAck("echo", "a"), { echo: "a" }, "a still served");
  same(await b.emitWithAck("echo", "b"), { echo: "b" }, "b still served");
  // A connection that goes gives its place back: a new client gets in
  // (retried while the server is still dropping the old socket).
  a.disconnect();
  for (;;) {
    const next = polite(url);
    const outcome = await new Promise((resolve) => {
      next.once("connect", () => resolve("connected"));
      next.once("connect_error", () => resolve("refused"));
    });
    if (outcome === "connected") {
      same(await next.emitWithAck("echo", "next"), { echo: "next" }, "the new client is served");
      next.disconnect();
      break;
    }
    next.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  b.disconnect();
}

async function flood(url, transport) {
  const calm = polite(url);
  calm.on("connect_error", (error) => fail(`connect_error: ${error.message}`));
  const flooder = polite(url, [transport]);
  flooder.on("connect_error", (error) => fail(`connect_error: ${error.message}`));
  await Promise.all([calm, flooder].map(connected));
  const cut = next(flooder, "disconnect");
  // Far more than the burst of 5, as fast as the client sends.
  for (let n = 0; n < 200; n++) flooder.emit("shout", `flood ${n}`);
  const [reason] = await cut;
  const cutOff = ["transport close", "transport error", "io server disconnect"];
  check(cutOff.includes(reason), `the flooder was cut off by the server: ${reason}`);
  // The other client carries on.
  same(await calm.emitWithAck("echo", "calm"), { echo: "calm" }, "the calm client is still served");
  calm.disconnect();
}

const scenarios = { basic, rooms, cross, limit, flood };
if (!scenarios[scenario]) fail(`unknown scenario; use ${Object.keys(scenarios).join(", ")}`);
await scenarios[scenario](...args);
console.log(`ok ${scenario}`);
process.exit(0);
