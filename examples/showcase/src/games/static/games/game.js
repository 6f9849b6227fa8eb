// The script of games/game.html: a file rather than an inline
// script, so that a Content-Security-Policy of `script-src 'self'` allows it.
(() => {
  const config = document.getElementById("game").dataset, id = Number(config.id);
  const status = document.getElementById("status"), error = document.getElementById("error");
  const cells = [...document.querySelectorAll("#board button")];
  let state = null, role = "spectator";
  const socket = Kiln.connect(config.socket, config.token ? { token: config.token } : {});
  const room = socket.join(config.room);
  // Only ever draw the newest state: a broadcast and a reply may cross.
  const show = (game) => {
    if (state && game.seq < state.seq) return;
    state = game;
    game.board.forEach((mark, i) => { cells[i].textContent = mark || ""; });
    const present = new Set(Array.from(room.users()));
    const names = { X: game.x, O: game.o };
    if (game.status === "waiting") status.textContent = "Waiting for an opponent…";
    else if (game.status === "draw") status.textContent = "Draw.";
    else if (game.status.won) status.textContent = names[game.status.won.winner] + " wins!";
    else if (!present.has(names[game.turn])) status.textContent = "Waiting for " + names[game.turn] + " to come back…";
    else status.textContent = (role === game.turn ? "Your turn" : names[game.turn] + "'s turn") + " (" + game.turn + ")";
  };
  const refresh = async () => {
    const reply = await socket.request({ type: "state", game: id });
    if (reply.ok) { role = reply.role; show(reply.game); }
  };
  const refreshOrSay = () => refresh().catch((failed) => {
    error.textContent = failed.detail || failed.message || String(failed);
  });
  room.joined.then(refreshOrSay, (refused) => {
    status.textContent = "Could not join the game: " + (refused.detail || refused.message);
  });
  room.on("resync", refreshOrSay);
  room.on("state", (game) => show(game));
  room.on("presence", () => {
    document.getElementById("present").textContent = Array.from(room.users()).join(", ");
    if (state) show(state);
  });
  cells.forEach((cell) => cell.addEventListener("click", async () => {
    error.textContent = "";
    try {
      const reply = await socket.request({ type: "move", game: id, cell: Number(cell.dataset.cell) });
      if (reply.ok) show(reply.game); else error.textContent = reply.error;
    } catch (failed) {
      // Disconnected, timed out, or refused with an error frame.
      error.textContent = failed.detail || failed.message || String(failed);
    }
  }));
})();
