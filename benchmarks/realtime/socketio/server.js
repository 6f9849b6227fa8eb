// The Socket.IO side of Kiln's real-time benchmark (benchmarks/realtime/run):
// Socket.IO 4 on Node, one process, WebSocket transport only, written as
// Socket.IO's docs teach. A member emits "join" and is answered "joined";
// a "msg" from the sender goes to everyone else in room "bench".
//
// By hand: npm ci && NODE_ENV=production node server.js 8000
"use strict";

const { createServer } = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 8000);
const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  // No per-message compression: the other targets send plain frames.
  perMessageDeflate: false,
});

io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.join(room);
    socket.emit("joined", room);
  });
  socket.on("msg", (data) => {
    socket.to("bench").emit("msg", data);
  });
});

httpServer.listen(port, "127.0.0.1");
