// The script of chat/room.html: a file rather than an inline
// script, so that a Content-Security-Policy of `script-src 'self'` allows it.
// Messages are added with textContent, never innerHTML: what users type is
// shown as text. The server stores it as typed. Values come from data-
// attributes, which the template escapes.
(() => {
  const config = document.getElementById("chat").dataset;
  const name = config.room, list = document.getElementById("messages");
  const shown = new Set([...list.children].map((li) => Number(li.dataset.id)));
  let newest = Number(config.lastId);
  const add = (m) => {
    if (shown.has(m.id)) return;
    shown.add(m.id); newest = Math.max(newest, m.id);
    const li = document.createElement("li"), who = document.createElement("b");
    li.dataset.id = m.id; who.textContent = m.user;
    li.append(who, " " + m.text);
    // In id order, whether it came live or from a catch-up.
    const after = [...list.children].find((other) => Number(other.dataset.id) > m.id);
    list.insertBefore(li, after || null);
  };
  const socket = Kiln.connect(config.socket, { token: config.token });
  const status = document.getElementById("status");
  socket.on("open", () => { status.textContent = "Connected as " + config.me; });
  socket.on("reconnecting", () => { status.textContent = "Reconnecting…"; });
  const room = socket.join(config.realtimeRoom);
  // Whatever was saved since the page was rendered (or since the history
  // window moved on), from the database.
  const catchUp = async () => {
    // A page at a time, while the server says there is more.
    for (let more = true; more; ) {
      const reply = await socket.request({ type: "since", room: name, after: newest });
      (reply.messages || []).forEach(add);
      more = Boolean(reply.more);
    }
  };
  const catchUpOrSay = () => catchUp().catch((failed) => {
    status.textContent = "Could not load the latest messages: " + (failed.detail || failed.message);
  });
  room.joined.then(catchUpOrSay, (refused) => {
    status.textContent = "Could not join the room: " + (refused.detail || refused.message);
  });
  room.on("resync", catchUpOrSay);
  room.on("said", (m) => add(m));
  room.on("presence", () => {
    document.getElementById("present").textContent = Array.from(room.users()).join(", ");
  });
  let typingTimer;
  socket.on("typing", (data) => {
    const typing = document.getElementById("typing");
    typing.textContent = data.user + " is typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.textContent = ""; }, 3000);
  });
  const text = document.getElementById("text"), error = document.getElementById("error");
  // At most one notice a second, as the server allows.
  let typedAt = 0;
  text.addEventListener("input", () => {
    if (Date.now() - typedAt < 1000) return;
    typedAt = Date.now();
    socket.send({ type: "typing", room: name });
  });
  document.getElementById("say").addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const reply = await socket.request({ type: "say", room: name, text: text.value });
      if (reply.ok) text.value = ""; else error.textContent = reply.error;
    } catch (refused) {
      error.textContent = refused.detail || refused.message || String(refused);
    }
  });
})();
