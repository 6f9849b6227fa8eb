// The script of games/tictactoe.html: a file rather than an inline
// script, so that a Content-Security-Policy of `script-src 'self'` allows it.
(() => {
  const play = document.getElementById("play"), config = play.dataset;
  play.addEventListener("click", async () => {
    play.disabled = true;
    const socket = Kiln.connect(config.socket, { token: config.token, reconnect: false });
    // Asked once the socket is open; a refused connection ends the wait.
    const opened = new Promise((resolve, reject) => {
      socket.on("open", resolve);
      socket.on("close", () => reject(new Error("could not connect; try again")));
    });
    try {
      await opened;
      const reply = await socket.request({ type: "find" });
      if (!reply.ok) throw new Error(reply.error);
      location.href = config.gameUrl + reply.game.id + "/";
    } catch (error) {
      document.getElementById("error").textContent = error.message;
      play.disabled = false;
    } finally {
      socket.close();
    }
  });
})();
