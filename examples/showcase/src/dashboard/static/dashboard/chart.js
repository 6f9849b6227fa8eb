// The script of dashboard/index.html: a file rather than an inline
// script, so that a Content-Security-Policy of `script-src 'self'` allows it.
// Plain JS and a <canvas>: nothing is loaded from a CDN.
(() => {
  const config = document.getElementById("dashboard").dataset;
  const samples = JSON.parse(config.samples), keep = 120;
  const canvas = document.getElementById("chart"), g = canvas.getContext("2d");
  const draw = () => {
    const values = samples.map((s) => s.requests_per_second);
    const top = Math.max(5, ...values), w = canvas.width, h = canvas.height;
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#666"; g.fillText(top + " req/s", 4, 12);
    g.strokeStyle = "#b4431b"; g.lineWidth = 2; g.beginPath();
    values.forEach((v, i) => {
      const x = (i / (keep - 1)) * w, y = h - (v / top) * (h - 16);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    const last = samples[samples.length - 1];
    if (!last) return;
    document.getElementById("rps").textContent = last.requests_per_second;
    document.getElementById("websockets").textContent = last.websockets;
    const stored = last.stored || {};
    document.getElementById("chat_messages").textContent = stored.chat_messages ?? "?";
    document.getElementById("votes").textContent = stored.votes ?? "?";
  };
  draw();
  const last = Number(config.lastId);
  const events = new EventSource(config.events + (last ? "?last_id=" + last : ""));
  const status = document.getElementById("status");
  events.onopen = () => { status.textContent = "Live"; };
  events.onerror = () => { status.textContent = "Reconnecting…"; };
  events.onmessage = (event) => {
    samples.push(JSON.parse(event.data));
    samples.splice(0, Math.max(0, samples.length - keep));
    draw();
  };
  // The samples after the last one seen are gone: start the chart afresh.
  events.addEventListener("resync", () => { samples.length = 0; draw(); });
})();
