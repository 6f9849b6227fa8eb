/*!
 * kiln.js: the JavaScript client of Kiln's real-time protocol
 * (docs/topics/realtime.md, "The wire protocol" and "JavaScript client").
 *
 * One file, no dependencies. In a page: <script src="{{ static('kiln/kiln.js') }}"></script>
 * defines `window.Kiln`; in Node, `require` it (Node 20 needs
 * `--experimental-websocket`, or pass a `WebSocket` constructor option).
 *
 *   const socket = Kiln.connect("/chat/ws/", { token });
 *   const room = socket.join("lobby");
 *   room.on("said", (data, msg) => show(data));
 *   await room.joined;
 *   const answer = await socket.request({ type: "say", room: "lobby", text: "hi" });
 */
(function (root, factory) {
  "use strict";
  var Kiln = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = Kiln;
  }
  if (root && typeof root === "object") {
    root.Kiln = Kiln;
  }
})(typeof self !== "undefined" ? self : typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /** How many frames `send`/`request` keep while disconnected. */
  var DEFAULT_QUEUE_LIMIT = 100;
  /** Events the socket itself emits: a direct server message may not use these names. */
  var LIFECYCLE = ["open", "close", "reconnecting", "error"];
  /** What `_emit` reports for a handler that threw (already reported). */
  var THREW = {};

  /**
   * A refused or failed operation. `code` is the server's error code
   * (`forbidden`, `bad_message`, `bad_room`, `unavailable`, ...) or one of the
   * client's own: `timeout`, `closed`, `queue_full`.
   */
  function KilnError(code, detail, frame) {
    if (!(this instanceof KilnError)) return new KilnError(code, detail, frame);
    this.message = code + (detail ? ": " + detail : "");
    this.code = code;
    this.detail = detail || "";
    if (frame) this.frame = frame;
    var trace = new Error(this.message);
    trace.name = "KilnError";
    this.stack = trace.stack;
  }
  KilnError.prototype = Object.create(Error.prototype);
  KilnError.prototype.constructor = KilnError;
  KilnError.prototype.name = "KilnError";

  /** A tiny event emitter: `on` returns a function that removes the handler. */
  function Emitter() {
    this._handlers = Object.create(null);
  }
  Emitter.prototype.on = function (event, handler) {
    if (typeof handler !== "function") throw new TypeError("on(" + event + ", handler): handler must be a function");
    var list = this._handlers[event] || (this._handlers[event] = []);
    list.push(handler);
    var self = this;
    return function () { self.off(event, handler); };
  };
  Emitter.prototype.off = function (event, handler) {
    var list = this._handlers[event];
    if (!list) return;
    var index = list.indexOf(handler);
    if (index >= 0) list.splice(index, 1);
  };
  /** Calls every handler of `event`; returns their results. A throwing handler does not stop the others. */
  Emitter.prototype._emit = function (event, args) {
    var list = (this._handlers[event] || []).slice();
    var results = [];
    for (var i = 0; i < list.length; i++) {
      try {
        results.push(list[i].apply(null, args));
      } catch (error) {
        results.push(THREW);
        this._handlerFailed(event, error);
      }
    }
    return results;
  };
  Emitter.prototype._handlerFailed = function (event, error) {
    if (typeof console !== "undefined") console.error("kiln.js: a handler of \"" + event + "\" threw", error);
  };

  /** `url` as an absolute ws(s):// URL with `token` in its query. */
  function resolveUrl(url, token) {
    var base = typeof location !== "undefined" && location.href ? location.href : undefined;
    var resolved;
    try {
      resolved = base ? new URL(url, base) : new URL(url);
    } catch (error) {
      throw new TypeError("Kiln.connect: \"" + url + "\" is not a URL; outside a page, give an absolute ws:// or wss:// URL");
    }
    if (resolved.protocol === "http:") resolved.protocol = "ws:";
    else if (resolved.protocol === "https:") resolved.protocol = "wss:";
    if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
      throw new TypeError("Kiln.connect: \"" + url + "\" is not an http(s) or ws(s) URL");
    }
    if (token !== undefined && token !== null && token !== "") {
      resolved.searchParams.set("token", String(token));
    }
    return resolved.href;
  }

  /** A room this socket is in (or joining); made by `socket.join(name)`. */
  function Room(socket, name) {
    Emitter.call(this);
    this.socket = socket;
    this.name = name;
    /** The id of the last room message seen: sent as `last_id` on rejoin. */
    this.lastId = null;
    /** key -> {key, user, meta}, replaced by every `presence_state`, patched by diffs. */
    this.presence = new Map();
    this._settled = false;
    var self = this;
    this.joined = new Promise(function (resolve, reject) {
      self._resolveJoined = resolve;
      self._rejectJoined = reject;
    });
    // Marks the promise handled: a page that never awaits it must not get an
    // "unhandled rejection"; awaiting it still rejects.
    this.joined.catch(function () {});
  }
  Room.prototype = Object.create(Emitter.prototype);
  Room.prototype.constructor = Room;

  /** The distinct users present (one user with two tabs is listed once). */
  Room.prototype.users = function () {
    var seen = new Set();
    this.presence.forEach(function (entry) { seen.add(entry.user); });
    return Array.from(seen);
  };

  /** Leaves the room; resolves when the server confirms (at once when disconnected). */
  Room.prototype.leave = function () {
    return this.socket._leave(this);
  };

  Room.prototype._handlerFailed = function (event, error) {
    this.socket._handlerFailed(event, error);
  };

  Room.prototype._presenceChanged = function (joins, leaves) {
    this._emit("presence", [Array.from(this.presence.values()), { joins: joins, leaves: leaves }]);
  };

  /**
   * A connection to one Kiln WebSocket endpoint that reconnects by itself;
   * see `Kiln.connect`.
   */
  function Socket(url, options) {
    Emitter.call(this);
    options = options || {};
    this.url = url;
    this.options = options;
    this.reconnect = options.reconnect !== false;
    this.minDelay = options.minDelay === undefined ? 500 : Number(options.minDelay);
    this.maxDelay = options.maxDelay === undefined ? 10000 : Number(options.maxDelay);
    if (!(this.minDelay >= 0) || !(this.maxDelay >= this.minDelay)) {
      throw new RangeError("Kiln.connect: need 0 <= minDelay <= maxDelay, got " + this.minDelay + " and " + this.maxDelay);
    }
    this.maxAttempts = options.maxAttempts === undefined ? Infinity : Number(options.maxAttempts);
    this.queueLimit = options.queueLimit === undefined ? DEFAULT_QUEUE_LIMIT : Number(options.queueLimit);
    resolveUrl(url); // a bad URL fails here, not on every reconnection
    this.WebSocket = options.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : undefined);
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("Kiln.connect: no WebSocket here; pass { WebSocket } (Node 20: run with --experimental-websocket)");
    }
    /** "connecting", "open", "reconnecting" or "closed". */
    this.state = "connecting";
    /** Reconnection attempts since the last successful open. */
    this.attempt = 0;
    this._rooms = new Map();
    this._pending = new Map(); // ack id -> {resolve, reject, timer}
    this._queue = []; // frames (as objects) waiting for a connection
    this._nextAck = 0;
    this._ws = null;
    this._timer = null;
    this._open();
  }
  Socket.prototype = Object.create(Emitter.prototype);
  Socket.prototype.constructor = Socket;

  /** Whether the connection is open now. */
  Object.defineProperty(Socket.prototype, "connected", {
    get: function () { return this.state === "open"; },
  });

  Socket.prototype._handlerFailed = function (event, error) {
    if (event === "error" || !this._handlers.error || this._handlers.error.length === 0) {
      Emitter.prototype._handlerFailed.call(this, event, error);
    } else {
      this._emit("error", [error]);
    }
  };

  Socket.prototype._open = function () {
    var self = this;
    var token = this.options.token;
    // A function gives a fresh token for every (re)connection: tokens expire.
    Promise.resolve(typeof token === "function" ? token() : token).then(function (value) {
      if (self.state === "closed") return;
      var ws = new self.WebSocket(resolveUrl(self.url, value));
      self._ws = ws;
      ws.onmessage = function (event) { if (self._ws === ws) self._received(event.data); };
      var opened = false;
      ws.onopen = function () {
        opened = true;
        if (self._ws === ws) self._opened();
      };
      ws.onerror = function () {
        if (self._ws !== ws) return;
        self._emit("error", [KilnError("socket", "the WebSocket reported an error")]);
        if (!opened) {
          // A connection that never opened (refused, unreachable, or an HTTP
          // answer other than 101) has failed: some WebSocket implementations
          // (Node 20's) never send the close event then, so it is taken as
          // a 1006 close here, and a later close event is ignored.
          self._ws = null;
          self._closed({ code: 1006, reason: "", wasClean: false });
        }
      };
      ws.onclose = function (event) { if (self._ws === ws) self._closed(event); };
    }).catch(function (error) {
      // A bad URL or a token function that failed: treated as a failed attempt.
      if (self.state === "closed") return;
      self._emit("error", [error]);
      self._closed({ code: 1006, reason: String(error && error.message || error), wasClean: false });
    });
  };

  Socket.prototype._opened = function () {
    this.state = "open";
    this.attempt = 0;
    // Rejoin first, so that queued messages for a room find it joined (the
    // server handles one connection's frames in order).
    var self = this;
    this._rooms.forEach(function (room) { self._sendJoin(room); });
    var queue = this._queue;
    this._queue = [];
    for (var i = 0; i < queue.length; i++) {
      var entry = queue[i];
      if (entry.cancelled) continue;
      this._write(entry.frame);
      // Sent: from now on an ordinary pending request, lost if this connection is.
      var pending = entry.ack !== undefined && this._pending.get(entry.ack);
      if (pending) pending.entry = null;
    }
    this._emit("open", []);
  };

  Socket.prototype._write = function (frame) {
    this._ws.send(JSON.stringify(frame));
  };

  /** Sends now, or keeps the frame for the next connection; throws `queue_full` past the bound. */
  Socket.prototype._sendOrQueue = function (frame) {
    if (this.state === "closed") throw KilnError("closed", "the socket was closed with close()");
    if (this.state === "open") {
      this._write(frame);
      return null;
    }
    if (this._queue.length >= this.queueLimit) {
      throw KilnError("queue_full", this.queueLimit + " frames already wait for the connection");
    }
    var entry = { frame: frame, cancelled: false };
    this._queue.push(entry);
    return entry;
  };

  Socket.prototype._sendJoin = function (room) {
    var ack = ++this._nextAck;
    var frame = { t: "join", room: room.name, ack: ack };
    if (room.lastId !== null) frame.last_id = room.lastId;
    room._joinAck = ack;
    room._rejoining = room._settled;
    this._write(frame);
  };

  /** A server frame. Malformed frames are reported as "error" events, never thrown. */
  Socket.prototype._received = function (text) {
    if (typeof text !== "string") return; // binary frames are the app's own business
    var frame;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      this._emit("error", [KilnError("bad_frame", "the server sent a frame that is not JSON")]);
      return;
    }
    if (!frame || typeof frame !== "object") return;
    var room = typeof frame.room === "string" ? this._rooms.get(frame.room) : undefined;
    switch (frame.t) {
      case "msg":
        if (frame.room !== undefined) {
          if (room) this._roomMessage(room, frame);
        } else {
          this._direct(frame);
        }
        break;
      case "ack":
        this._settle(frame.ack, null, frame.data);
        break;
      case "error":
        this._error(frame, room);
        break;
      case "joined":
        if (room && frame.ack === room._joinAck) this._joined(room);
        break;
      case "left":
        this._settle(frame.ack, null, undefined);
        break;
      case "resync":
        if (room) room._emit("resync", []);
        break;
      case "presence_state":
        if (room) this._presenceState(room, frame.entries || []);
        break;
      case "presence":
        if (room) this._presenceDiff(room, frame.joins || [], frame.leaves || []);
        break;
      default:
        // A newer server's frame type: ignored, as the protocol allows.
        break;
    }
  };

  Socket.prototype._roomMessage = function (room, frame) {
    if (typeof frame.id === "number") {
      // Recovery and live delivery never overlap on the server; this guards
      // against a repeat anyway (ids only grow within a room).
      if (room.lastId !== null && frame.id <= room.lastId) return;
      room.lastId = frame.id;
    }
    room._emit(frame.event, [frame.data, frame]);
  };

  /** A message to this connection only; its handlers' answer is the ack when one is asked for. */
  Socket.prototype._direct = function (frame) {
    var self = this;
    var ackId = frame.ack;
    var replied = false;
    function reply(data) {
      if (replied || typeof ackId !== "number" || self.state !== "open") return;
      replied = true;
      self._write({ t: "ack", ack: ackId, data: data === undefined ? null : data });
    }
    if (LIFECYCLE.indexOf(frame.event) >= 0) {
      this._emit("error", [KilnError("reserved_event", "a server event named \"" + frame.event + "\" clashes with the socket's own; rename it")]);
      return;
    }
    var results = this._emit(frame.event, [frame.data, reply]);
    if (typeof ackId !== "number" || results.length === 0 || results[0] === THREW) return;
    // The first handler's value (or promise) is the answer, unless a handler
    // called reply() first. Nothing (undefined) leaves the answer to a later
    // reply(). A failure sends nothing: the server's emit_with_ack times
    // out, as for a client that did not understand.
    Promise.resolve(results[0]).then(function (value) {
      if (value !== undefined) reply(value);
    }, function (error) {
      self._handlerFailed(frame.event, error);
    });
  };

  Socket.prototype._error = function (frame, room) {
    var error = KilnError(frame.code || "error", frame.detail, frame);
    if (room && frame.ack === room._joinAck) {
      // A refused join: the room is not ours any more (never rejoined).
      this._rooms.delete(room.name);
      room._joinAck = null;
      if (!room._settled) {
        room._settled = true;
        room._rejectJoined(error);
      }
      room._emit("error", [error]);
      return;
    }
    if (typeof frame.ack === "number" && this._pending.has(frame.ack)) {
      this._settle(frame.ack, error);
      return;
    }
    this._emit("error", [error]);
  };

  Socket.prototype._joined = function (room) {
    room._joinAck = null;
    if (room._rejoining) {
      // presence_state (if any) follows and replaces the whole map; until
      // then the old one is kept for the diff it announces.
      room._stale = room.presence;
      room.presence = new Map();
    }
    if (!room._settled) {
      room._settled = true;
      room._resolveJoined(room);
    }
  };

  Socket.prototype._presenceState = function (room, entries) {
    var old = room._stale || room.presence;
    room._stale = null;
    var next = new Map();
    entries.forEach(function (entry) { next.set(entry.key, entry); });
    var joins = entries.filter(function (entry) { return !old.has(entry.key); });
    var leaves = [];
    old.forEach(function (entry, key) { if (!next.has(key)) leaves.push(entry); });
    room.presence = next;
    room._presenceChanged(joins, leaves);
  };

  Socket.prototype._presenceDiff = function (room, joins, leaves) {
    // Diffs may repeat what presence_state said: applied by key.
    leaves.forEach(function (entry) { room.presence.delete(entry.key); });
    joins.forEach(function (entry) { room.presence.set(entry.key, entry); });
    room._presenceChanged(joins, leaves);
  };

  /** Resolves (or rejects, with `error`) the pending operation `ack`. */
  Socket.prototype._settle = function (ack, error, data) {
    var pending = this._pending.get(ack);
    if (!pending) return;
    this._pending.delete(ack);
    if (pending.timer) clearTimeout(pending.timer);
    if (pending.entry) pending.entry.cancelled = true;
    if (error) pending.reject(error);
    else pending.resolve(data);
  };

  Socket.prototype._closed = function (event) {
    this._ws = null;
    if (this.state === "closed") return; // close() has said everything
    var code = event.code === undefined ? 1006 : event.code;
    // Answers to frames already sent are lost with the connection: the server
    // may or may not have handled them, so they are rejected, not resent.
    var self = this;
    Array.from(this._pending.keys()).forEach(function (ack) {
      if (!self._pending.get(ack).entry) {
        self._settle(ack, KilnError("closed", "the connection closed (" + code + ") before the answer came"));
      }
    });
    // 1000 from the server is a deliberate end (the consumer called close):
    // coming back would only be refused or closed again.
    var again = this.reconnect && code !== 1000 && this.attempt < this.maxAttempts;
    this._emit("close", [{
      code: code,
      reason: event.reason || "",
      wasClean: !!event.wasClean,
      willReconnect: again,
    }]);
    if (again) {
      this._schedule();
    } else {
      this._shutdown(KilnError("closed", "the connection closed (" + code + ") and will not reconnect"));
    }
  };

  /** Exponential back-off with jitter: attempt n waits up to minDelay * 2^(n-1), capped by maxDelay. */
  Socket.prototype._schedule = function () {
    this.state = "reconnecting";
    this.attempt += 1;
    var ceiling = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt - 1));
    // "Equal jitter": half fixed, half random, so clients that lost the same
    // server do not all come back at once.
    var delay = Math.max(this.minDelay, Math.round(ceiling / 2 + Math.random() * ceiling / 2));
    var self = this;
    this._emit("reconnecting", [{ attempt: this.attempt, delay: delay }]);
    this._timer = setTimeout(function () {
      self._timer = null;
      if (self.state === "reconnecting") self._open();
    }, delay);
  };

  /** Ends everything for good: rejects what still waits. */
  Socket.prototype._shutdown = function (error) {
    this.state = "closed";
    if (this._timer) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    var self = this;
    Array.from(this._pending.keys()).forEach(function (ack) { self._settle(ack, error); });
    this._queue = [];
    this._rooms.forEach(function (room) {
      if (!room._settled) {
        room._settled = true;
        room._rejectJoined(error);
      }
    });
  };

  /** Sends `data` to the consumer's `receive`, fire-and-forget (queued while reconnecting). */
  Socket.prototype.send = function (data) {
    this._sendOrQueue({ t: "msg", data: data === undefined ? null : data });
  };

  /**
   * Sends `data` asking for the consumer's answer. Resolves with the ack's
   * data; rejects with a KilnError on an error frame (`bad_message`...),
   * after `timeout` ms (`timeout`, default 10000), or when the connection
   * closes before the answer (`closed`).
   */
  Socket.prototype.request = function (data, options) {
    var self = this;
    var timeout = options && options.timeout !== undefined ? Number(options.timeout) : 10000;
    return new Promise(function (resolve, reject) {
      var ack = ++self._nextAck;
      var pending = { resolve: resolve, reject: reject, timer: null, entry: null };
      self._pending.set(ack, pending);
      try {
        pending.entry = self._sendOrQueue({ t: "msg", data: data === undefined ? null : data, ack: ack });
      } catch (error) {
        self._pending.delete(ack);
        reject(error);
        return;
      }
      if (pending.entry) pending.entry.ack = ack;
      if (timeout > 0 && timeout !== Infinity) {
        pending.timer = setTimeout(function () {
          self._settle(ack, KilnError("timeout", "no answer within " + timeout + " ms"));
        }, timeout);
      }
    });
  };

  /** The room `name`, joining it (with acks, recovery and presence) if this socket is not in it yet. */
  Socket.prototype.join = function (name) {
    if (typeof name !== "string" || name === "") throw new TypeError("join(room): the room name must be a non-empty string");
    var existing = this._rooms.get(name);
    if (existing) return existing;
    if (this.state === "closed") throw KilnError("closed", "the socket was closed with close()");
    var room = new Room(this, name);
    this._rooms.set(name, room);
    if (this.state === "open") this._sendJoin(room);
    return room;
  };

  /** The room `name` if this socket joined it, else undefined. */
  Socket.prototype.room = function (name) {
    return this._rooms.get(name);
  };

  Socket.prototype._leave = function (room) {
    if (this._rooms.get(room.name) !== room) return Promise.resolve();
    this._rooms.delete(room.name);
    if (!room._settled) {
      room._settled = true;
      room._rejectJoined(KilnError("left", "left before the join was answered"));
    }
    if (this.state !== "open") return Promise.resolve();
    var self = this;
    return new Promise(function (resolve) {
      var ack = ++self._nextAck;
      // A leave cannot be refused; a connection lost meanwhile leaves anyway.
      self._pending.set(ack, { resolve: resolve, reject: function () { resolve(); }, timer: null, entry: null });
      self._write({ t: "leave", room: room.name, ack: ack });
    });
  };

  /**
   * Closes the connection for good (code 1000): no reconnection; pending
   * requests reject with `closed`. The close event fires at once, without
   * waiting for the server's half of the closing handshake.
   */
  Socket.prototype.close = function () {
    if (this.state === "closed") return;
    var ws = this._ws;
    this._ws = null; // what this connection still does is ignored from now on
    this._shutdown(KilnError("closed", "the socket was closed with close()"));
    if (ws) {
      try {
        ws.close(1000);
      } catch (error) {
        // Already closing: nothing more to do.
      }
      this._emit("close", [{ code: 1000, reason: "", wasClean: true, willReconnect: false }]);
    }
  };

  return {
    /**
     * Connects to the Kiln WebSocket endpoint at `url`: an absolute ws(s)://
     * URL, or a path resolved against the page (http -> ws, https -> wss).
     * Options: token (a string or a function returning one or a promise of
     * one, sent as ?token=), reconnect (true), minDelay (500 ms), maxDelay
     * (10000 ms), maxAttempts (Infinity), queueLimit (100), WebSocket.
     */
    connect: function (url, options) {
      return new Socket(url, options);
    },
    Socket: Socket,
    Room: Room,
    KilnError: KilnError,
    version: "0.1.0",
  };
});
