// The showcase's pages in headless Chromium, run by examples/showcase/tests/browser.rs
// against the real server on a free port:
//
//   BASE=http://127.0.0.1:PORT PASSWORD=... CHROMIUM=/usr/bin/chromium node showcase.mjs
//
// The users alice, bob and carol exist with PASSWORD (the Rust test makes them).
// Each part prints `ok <part>`; the first failed check ends the run with a
// non-zero exit and says what the page showed. No check depends on how fast
// anything is: every wait is for a state of the page, bounded by a guard so
// that a broken feature fails instead of hanging.
//
// clip.webm (4 s, 96x64 VP8, 25 KB) was made with ffmpeg 7 (the imageio-ffmpeg wheel):
//   ffmpeg -f lavfi -i testsrc=size=96x64:rate=10:duration=4 -c:v libvpx -b:v 60k -g 5 -an clip.webm
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const BASE = process.env.BASE;
const PASSWORD = process.env.PASSWORD;
assert.ok(BASE && PASSWORD, "BASE and PASSWORD must be set");
const CLIP = fileURLToPath(new URL("clip.webm", import.meta.url));
/** The longest one wait may take. */
const GUARD = 30_000;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
/** Console errors and uncaught exceptions of every page, checked at the end. */
const problems = [];

/** A new browser context (its own cookies: one user) with one watched page. */
async function open(label) {
  const context = await browser.newContext();
  context.setDefaultTimeout(GUARD);
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") {
      const source = message.location().url;
      problems.push(`${label} at ${page.url()}: console error: ${message.text()}${source ? ` (${source})` : ""}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${label} at ${page.url()}: uncaught ${error.stack || error}`));
  return page;
}

/** Logs `page` in as `user` through the log-in form, then lands on `next`. */
async function logIn(page, user, next) {
  await page.goto(`${BASE}/accounts/login/?next=${encodeURIComponent(next)}`);
  await page.fill("#id_username", user);
  await page.fill("#id_password", PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}${next}`), page.getByRole("button", { name: "Log in" }).click()]);
  await page.waitForLoadState("load");
}

/** `promise`, or a failure naming `what` after GUARD ms. */
async function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${GUARD} ms`)), GUARD);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the text of `selector` satisfies `wanted`; fails with what it was. */
async function textUntil(page, selector, wanted, what) {
  const deadline = Date.now() + GUARD;
  let text = null;
  for (;;) {
    text = await page.locator(selector).first().textContent({ timeout: GUARD });
    if (wanted(text)) return text;
    if (Date.now() > deadline) throw new Error(`${what}: ${selector} shows ${JSON.stringify(text)} at ${page.url()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const alice = await open("alice");
const bob = await open("bob");

// Polls: the home page -> index -> detail -> vote (the form's CSRF token is accepted) -> results.
{
  await logIn(alice, "alice", "/");
  await Promise.all([alice.waitForURL(`${BASE}/polls/`), alice.getByRole("link", { name: "Polls", exact: true }).click()]);
  const link = alice.getByRole("link", { name: "What's new?", exact: true });
  await Promise.all([alice.waitForURL(/\/polls\/\d+\/$/), link.click()]);
  assert.equal(await alice.textContent("h1"), "What's new?");
  await alice.getByLabel("The sky").check();
  await Promise.all([alice.waitForURL(/\/polls\/\d+\/results\/$/), alice.getByRole("button", { name: "Vote" }).click()]);
  const results = await alice.locator("ul li").allTextContents();
  assert.ok(results.includes("The sky — 1 vote"), `the results show the vote: ${JSON.stringify(results)}`);
  assert.ok(results.includes("Kiln — 0 votes"), `the other choices are unchanged: ${JSON.stringify(results)}`);
  console.log("ok polls");
}

// Chat: two users in one room, then a third who comes late.
{
  const room = "/chat/rooms/browser-test/";
  await logIn(alice, "alice", room);
  await logIn(bob, "bob", room);
  for (const [page, user] of [[alice, "alice"], [bob, "bob"]]) {
    await textUntil(page, "#status", (text) => text.startsWith("Connected as "), `${user} connects`);
    await textUntil(page, "#present", (text) => text.includes("alice") && text.includes("bob"), `${user} sees both present`);
  }
  // Typing: a notice reaches the other user, not the typist. The page
  // shows it for 3 s, so alice's page records it the moment it appears
  // rather than the test hoping to look within those 3 s.
  await alice.evaluate(() => {
    const typing = document.getElementById("typing");
    window.typingShown = new Promise((resolve) => {
      new MutationObserver(() => {
        if (typing.textContent) resolve(typing.textContent);
      }).observe(typing, { childList: true, characterData: true, subtree: true });
    });
  });
  await bob.locator("#text").pressSequentially("hello <i>alice</i>");
  const shown = await within(alice.evaluate(() => window.typingShown), "alice sees bob typing");
  assert.equal(shown, "bob is typing…");
  assert.equal(await bob.textContent("#typing"), "", "the typist gets no notice of their own");
  await bob.press("#text", "Enter");
  const said = (text) => text.includes("bob hello <i>alice</i>");
  await textUntil(alice, "#messages", said, "bob's message reaches alice");
  await textUntil(bob, "#messages", said, "bob's message is shown to bob");
  assert.equal(await alice.locator("#messages i").count(), 0, "a message is text, not HTML");
  assert.equal(await bob.inputValue("#text"), "", "the box is emptied once the message is stored");
  await alice.fill("#text", "hi bob");
  await alice.press("#text", "Enter");
  await textUntil(bob, "#messages", (text) => text.includes("alice hi bob"), "alice's answer reaches bob");

  const carol = await open("carol");
  await logIn(carol, "carol", room);
  const history = await carol.locator("#messages li").allTextContents();
  assert.deepEqual(
    history.map((line) => line.trim()),
    ["bob hello <i>alice</i>", "alice hi bob"],
    "carol sees the history, in order",
  );
  await textUntil(alice, "#present", (text) => text.includes("carol"), "alice sees carol arrive");
  await carol.close();
  await textUntil(alice, "#present", (text) => !text.includes("carol"), "alice sees carol leave");
  console.log("ok chat");
}

// Dashboard: the chart is drawn from the kept samples, then follows the
// event stream.
{
  const page = await open("dashboard");
  await page.goto(`${BASE}/dashboard/`);
  await textUntil(page, "#status", (text) => text === "Live", "the event stream opens");
  await textUntil(page, "#rps", (text) => /^\d+(\.\d+)?$/.test(text), "a sample arrives");
  const chart = () => page.evaluate(() => document.getElementById("chart").toDataURL());
  const blank = await page.evaluate(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 200;
    return canvas.toDataURL();
  });
  const first = await chart();
  assert.notEqual(first, blank, "the chart is drawn");
  // Every sample extends the line: the picture changes with the next one.
  await page.waitForFunction((first) => document.getElementById("chart").toDataURL() !== first, first, {
    timeout: GUARD,
  });
  // A page opened now draws the kept samples at once, before any event.
  await page.reload();
  const kept = await page.evaluate(() => JSON.parse(document.getElementById("dashboard").dataset.samples).length);
  assert.ok(kept >= 2, `the page embeds the samples kept so far: ${kept}`);
  assert.notEqual(await chart(), blank, "the chart is drawn from the kept samples");
  await textUntil(page, "#status", (text) => text === "Live", "the event stream opens again");
  await page.close();
  console.log("ok dashboard");
}

// Tic-tac-toe: two players matched into a game, a spectator, a win seen by all.
{
  await alice.goto(`${BASE}/games/tictactoe/`);
  await Promise.all([alice.waitForURL(/\/games\/tictactoe\/\d+\/$/), alice.click("#play")]);
  await textUntil(alice, "#status", (text) => text === "Waiting for an opponent…", "alice waits");
  const game = alice.url();
  await bob.goto(`${BASE}/games/tictactoe/`);
  await Promise.all([bob.waitForURL(game), bob.click("#play")]);
  const spectator = await open("spectator");
  await spectator.goto(game);
  await textUntil(spectator, "#present", (text) => text.includes("alice") && text.includes("bob"), "the spectator sees both players");
  const turn = { X: [alice, "alice"], O: [bob, "bob"] };
  let mark = "X";
  for (const cell of [0, 3, 1, 4, 2]) {
    const [player, name] = turn[mark];
    await textUntil(player, "#status", (text) => text === "Your turn (X)" || text === "Your turn (O)", `${name}'s turn`);
    await player.click(`#board button[data-cell="${cell}"]`);
    await textUntil(spectator, `#board button[data-cell="${cell}"]`, (text) => text !== "", `the spectator sees cell ${cell}`);
    mark = mark === "X" ? "O" : "X";
  }
  for (const [page, who] of [[alice, "alice"], [bob, "bob"], [spectator, "the spectator"]]) {
    await textUntil(page, "#status", (text) => text === "alice wins!", `${who} sees the win`);
    const board = await page.locator("#board button").allTextContents();
    assert.deepEqual(board, ["X", "X", "X", "O", "O", "", "", "", ""], `${who} sees the board`);
  }
  assert.equal(await spectator.textContent("#error"), "");
  await spectator.close();
  console.log("ok tictactoe");
}

// Videos: upload, then the <video> loads its metadata over Range requests
// and seeks.
{
  const fetched = [];
  alice.on("response", (response) => {
    if (response.url().includes("/media/videos/")) {
      fetched.push(response.request().allHeaders().then((headers) => [response.status(), headers.range ?? null]));
    }
  });
  await alice.goto(`${BASE}/videos/`);
  await alice.setInputFiles("#id_video", CLIP);
  await Promise.all([alice.waitForURL(`${BASE}/videos/`), alice.getByRole("button", { name: "Upload" }).click()]);
  await textUntil(alice, ".messages", (text) => /Uploaded clip(_\w+)?\.webm \(\d+ bytes\)\./.test(text), "the upload is saved");
  const video = alice.locator("video").first();
  await within(video.evaluate(
    (video) =>
      video.readyState >= 1 ||
      new Promise((resolve, reject) => {
        video.addEventListener("loadedmetadata", resolve, { once: true });
        video.addEventListener("error", () => reject(new Error(`media error ${video.error?.code}: ${video.error?.message}`)));
      }),
  ), "the video's metadata");
  const duration = await video.evaluate((video) => video.duration);
  assert.ok(Math.abs(duration - 4) < 0.2, `the duration is read from the file: ${duration}`);
  const at = await within(video.evaluate(
    (video) =>
      new Promise((resolve, reject) => {
        video.addEventListener("seeked", () => resolve(video.currentTime), { once: true });
        video.addEventListener("error", () => reject(new Error(`media error ${video.error?.code}`)));
        video.currentTime = 2.5;
      }),
  ), "the seek");
  assert.ok(Math.abs(at - 2.5) < 0.01, `seeked to 2.5 s: ${at}`);
  const ranges = await Promise.all(fetched);
  assert.ok(ranges.length > 0, "the browser fetched the video");
  assert.ok(
    ranges.some(([status, range]) => status === 206 && range !== null),
    `the server answered a Range request with 206: ${JSON.stringify(ranges)}`,
  );
  assert.ok(
    ranges.every(([status]) => status === 206 || status === 200),
    `every video response succeeded: ${JSON.stringify(ranges)}`,
  );
  console.log(`ok videos (responses: ${JSON.stringify(ranges)})`);
}

await browser.close();
assert.deepEqual(problems, [], "the pages raised no console error");
console.log("ok console");
