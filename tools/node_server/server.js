#!/usr/bin/env node
// SAYMON "Comet" stand-in for wire-compatibility tests.
//
// SAYMON's push server is a Node socket.io 4.5.0 server. Rather than mock the
// Socket.IO / Engine.IO protocols in Python (and test our client against our
// own understanding of them), the tests run this real socket.io 4.5.0 server
// and drive it through a small HTTP control API on a second port. Every
// situation recorded in /work/shared/socketio-notes.md (rejected sessions,
// slow session lookup, the different server-side disconnects, TCP drops,
// late pings, bursts, oversized events) can be reproduced on demand.
//
// Only Node built-ins and socket.io are used: in CI this runs on Debian's
// nodejs package with nothing but the pinned node_modules next to it.
//
// Usage: node server.js [--port 0] [--control-port 0] [--sessions a,b]
//          [--sessions-json '["a","b"]']
//          [--ping-interval ms] [--ping-timeout ms] [--accept-delay ms]
//          [--max-http-buffer-size bytes] [--session-check-url url] [--verbose]
//          [--exit-on-stdin-close]
// Every option can also come from the environment (COMET_PORT,
// COMET_CONTROL_PORT, COMET_SESSIONS, COMET_SESSIONS_JSON, COMET_PING_INTERVAL,
// COMET_PING_TIMEOUT, COMET_ACCEPT_DELAY, COMET_MAX_HTTP_BUFFER_SIZE,
// COMET_SESSION_CHECK_URL, COMET_VERBOSE, COMET_EXIT_ON_STDIN_CLOSE); flags win.
// Once both ports listen, exactly one JSON line is written to stdout:
//   {"port": <socket.io port>, "control_port": <control port>}
// Nothing else is ever written to stdout; diagnostics go to stderr.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const path = require("path");
const { performance } = require("perf_hooks");
const { Server } = require("socket.io");

const HOST = "127.0.0.1"; // loopback only: socket.io 4.5.0 pulls in known-vulnerable parser/ws versions

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const envNames = {
    port: "COMET_PORT",
    "control-port": "COMET_CONTROL_PORT",
    sessions: "COMET_SESSIONS",
    "sessions-json": "COMET_SESSIONS_JSON",
    "ping-interval": "COMET_PING_INTERVAL",
    "ping-timeout": "COMET_PING_TIMEOUT",
    "accept-delay": "COMET_ACCEPT_DELAY",
    "max-http-buffer-size": "COMET_MAX_HTTP_BUFFER_SIZE",
    "session-check-url": "COMET_SESSION_CHECK_URL",
    verbose: "COMET_VERBOSE",
    "exit-on-stdin-close": "COMET_EXIT_ON_STDIN_CLOSE",
  };
  const opts = {};
  for (const [name, env] of Object.entries(envNames)) {
    if (process.env[env] !== undefined) opts[name] = process.env[env];
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else if (name === "verbose" || name === "exit-on-stdin-close") {
      value = "1";
    } else {
      if (i + 1 >= argv.length) throw new Error(`missing value for --${name}`);
      value = argv[++i];
    }
    if (!(name in envNames)) throw new Error(`unknown option --${name}`);
    opts[name] = value;
  }
  const int = (name, dflt) => {
    if (opts[name] === undefined || opts[name] === "") return dflt;
    const n = Number(opts[name]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };
  return {
    port: int("port", 0),
    controlPort: int("control-port", 0),
    sessions: sessionList(opts),
    // socket.io 4.5.0 / engine.io 6.2.1 defaults, which SAYMON presumably keeps.
    pingInterval: int("ping-interval", 25000),
    pingTimeout: int("ping-timeout", 20000),
    acceptDelay: int("accept-delay", 0),
    maxHttpBufferSize: int("max-http-buffer-size", 1e6),
    // Sessions not in the list are checked against a SAYMON REST URL (the simulator's
    // GET /node/api/users/current) with the X-Session-Id header: 200 means valid.
    sessionCheckUrl: opts["session-check-url"] || null,
    verbose: !!opts.verbose && opts.verbose !== "0",
    exitOnStdinClose: !!opts["exit-on-stdin-close"] && opts["exit-on-stdin-close"] !== "0",
  };
}

// --sessions a,b is handy by hand; --sessions-json '["a,b", ...]' carries any
// string (the test helper uses it). Both may be given; the union is valid.
function sessionList(opts) {
  const list = (opts.sessions || "").split(",").filter((s) => s !== "");
  if (opts["sessions-json"]) {
    const extra = JSON.parse(opts["sessions-json"]);
    if (!Array.isArray(extra) || !extra.every((s) => typeof s === "string")) {
      throw new Error("--sessions-json must be a JSON list of strings");
    }
    list.push(...extra);
  }
  return list;
}

let options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`server.js: ${err.message}\n`);
  process.exit(2);
}

// Session ids are credentials in the real system, so they are never logged.
function log(msg) {
  if (options.verbose) process.stderr.write(`[comet] ${msg}\n`);
}

// ---------------------------------------------------------------- state

let validSessions = new Set(options.sessions);
let acceptDelay = options.acceptDelay;
const stats = { handshakes: 0, accepted: 0, rejected: 0, disconnects: 0 };
const disconnectReasons = []; // server-side reasons, last 100, for debugging tests

// socket.id -> {sessionId, filters, transport, upgrades, connectedAt}
const clientInfo = new Map();
// Engine.IO ids whose next polling request should lose its TCP connection
// (see disconnectClient: "destroy" while no poll is pending).
const destroyNextRequest = new Set();

// ---------------------------------------------------------------- socket.io server

const ioHttp = http.createServer();
const io = new Server(ioHttp, {
  pingInterval: options.pingInterval,
  pingTimeout: options.pingTimeout,
  maxHttpBufferSize: options.maxHttpBufferSize,
  serveClient: false,
});

// Runs before engine.io's own request handler, so it can kill a polling
// request's connection before any response is written.
ioHttp.prependListener("request", (req) => {
  if (destroyNextRequest.size === 0) return;
  const sid = new URL(req.url, "http://x").searchParams.get("sid");
  if (sid && destroyNextRequest.delete(sid)) {
    log(`destroying polling request of ${sid}`);
    req.socket.destroy();
  }
});

// Comet checks the sessionId from the handshake query before accepting the
// namespace; a bad one yields a CONNECT_ERROR carrying {message, data}.
io.use((socket, next) => {
  stats.handshakes++;
  const check = async () => {
    const sessionId = socket.handshake.query.sessionId;
    if (
      typeof sessionId === "string" &&
      (validSessions.has(sessionId) || (await sessionCheck(sessionId)))
    ) {
      stats.accepted++;
      next();
      return;
    }
    stats.rejected++;
    log(`rejected a connection (engine ${socket.conn.id})`);
    const err = new Error("Invalid sessionId");
    err.data = { code: 401, reason: "invalid-session" };
    next(err);
  };
  if (acceptDelay > 0) setTimeout(check, acceptDelay);
  else check();
});

// Asks the SAYMON REST API behind --session-check-url whether a session id is valid, so a
// client that logged in to the simulator is accepted here like by the real Comet.
function sessionCheck(sessionId) {
  if (!options.sessionCheckUrl || sessionId === "") return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = http.get(
      options.sessionCheckUrl,
      { headers: { "X-Session-Id": sessionId }, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

function topicList(socket) {
  return [...socket.rooms].filter((room) => room !== socket.id).sort();
}

function filteredRoom(topic, key) {
  return `${topic}:${key}`;
}

// Accepts what SAYMON documents (one topic string) and, leniently, an array.
function topicArgs(value) {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((v) => typeof v === "string");
  return [];
}

// The last argument may be an ack callback if a client asked for one; Comet
// documents no acks, but answering keeps such a client from hanging.
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

io.on("connection", (socket) => {
  const conn = socket.conn;
  const info = {
    sessionId: socket.handshake.query.sessionId,
    filters: {},
    transport: conn.transport.name,
    upgrades: [conn.transport.name],
    connectedAt: Date.now(),
  };
  clientInfo.set(socket.id, info);
  log(`connected ${socket.id} over ${info.transport}`);
  conn.on("upgrade", (transport) => {
    info.transport = transport.name;
    info.upgrades.push(transport.name);
    log(`upgraded ${socket.id} to ${transport.name}`);
  });

  socket.on("add-topics", (...raw) => {
    const [args, ack] = splitAck(raw);
    for (const topic of topicArgs(args[0])) {
      socket.join(topic);
      if (args.length > 1) info.filters[topic] = args[1];
    }
    if (ack) ack({ topics: topicList(socket) });
  });
  socket.on("remove-topics", (...raw) => {
    const [args, ack] = splitAck(raw);
    for (const topic of topicArgs(args[0])) {
      socket.leave(topic);
      delete info.filters[topic];
    }
    if (ack) ack({ topics: topicList(socket) });
  });
  socket.on("add-filtered-topic", (...raw) => {
    const [args, ack] = splitAck(raw);
    if (typeof args[0] === "string" && typeof args[1] === "string") {
      socket.join(filteredRoom(args[0], args[1]));
    }
    if (ack) ack({ topics: topicList(socket) });
  });
  socket.on("remove-filtered-topic", (...raw) => {
    const [args, ack] = splitAck(raw);
    if (typeof args[0] === "string" && typeof args[1] === "string") {
      socket.leave(filteredRoom(args[0], args[1]));
    }
    if (ack) ack({ topics: topicList(socket) });
  });

  socket.on("disconnect", (reason) => {
    stats.disconnects++;
    disconnectReasons.push(reason);
    if (disconnectReasons.length > 100) disconnectReasons.shift();
    destroyNextRequest.delete(conn.id);
    clientInfo.delete(socket.id);
    log(`disconnected ${socket.id}: ${reason}`);
  });
});

// ---------------------------------------------------------------- control actions

function describeClients() {
  const out = [];
  for (const [id, socket] of io.of("/").sockets) {
    const info = clientInfo.get(id);
    if (!info) continue;
    out.push({
      id,
      engine_id: socket.conn.id,
      sessionId: info.sessionId,
      topics: topicList(socket),
      filters: info.filters,
      transport: socket.conn.transport.name,
      upgrades: info.upgrades,
      connected_ms: Date.now() - info.connectedAt,
    });
  }
  return out;
}

function targetSockets(id) {
  const all = [...io.of("/").sockets.values()];
  return id === undefined || id === null ? all : all.filter((s) => s.id === id);
}

function rawSocketOf(socket) {
  const transport = socket.conn.transport;
  if (transport.name === "websocket") {
    return transport.socket && transport.socket._socket;
  }
  return transport.req ? transport.req.socket : null; // polling: the pending GET
}

const DISCONNECT_MODES = ["socket", "engine", "destroy", "reset"];

function disconnectClient(socket, mode) {
  switch (mode) {
    case "socket":
      // Socket.IO DISCONNECT packet, then the Engine.IO connection is closed.
      socket.disconnect(true);
      return true;
    case "engine":
      // Engine.IO CLOSE packet (over polling) / WebSocket close (over websocket).
      socket.conn.close();
      return true;
    case "destroy":
    case "reset": {
      // The TCP connection vanishes without any protocol-level close:
      // "destroy" closes it (FIN), "reset" aborts it (RST) like a network failure.
      const raw = rawSocketOf(socket);
      if (raw) {
        if (mode === "reset" && typeof raw.resetAndDestroy === "function") raw.resetAndDestroy();
        else raw.destroy();
      } else {
        // Polling with no GET pending at this instant: kill the next one.
        destroyNextRequest.add(socket.conn.id);
      }
      return true;
    }
    default:
      throw new HttpError(400, `unknown disconnect mode ${JSON.stringify(mode)}`);
  }
}

function stall(ms) {
  const end = Date.now() + ms;
  // Busy-wait on purpose: the point is to freeze the event loop (timers,
  // pings, I/O) the way a GC pause or a CPU-bound handler in Comet would.
  while (Date.now() < end) {
    /* spin */
  }
}

function makePayload(payload, seq, i) {
  if (!seq) return payload;
  if (payload !== null && typeof payload === "object" && !Array.isArray(payload)) {
    return { ...payload, seq: i };
  }
  return { seq: i, payload };
}

function emitter(room) {
  return room === "*" ? io : io.to(room);
}

// The room an event goes to: its topic, except `stat`, which Comet sends per entity to those
// that did add-filtered-topic("stat", "<entityType>:<entityId>").
function roomOf(event, payload) {
  if (event === "stat" && payload !== null && typeof payload === "object") {
    return filteredRoom("stat", `${payload.entityType}:${payload.entityId}`);
  }
  return event;
}

// Emits `count` events as fast as possible, yielding to the event loop every
// few milliseconds so that Engine.IO can keep writing (and answering pings)
// during bursts of hundreds of thousands of events.
function emitBurst({ event, payload, room, count, seq }) {
  return new Promise((resolve) => {
    const target = emitter(room);
    const recipients = room === "*" ? io.of("/").sockets.size : (io.of("/").adapter.rooms.get(room) || new Set()).size;
    const started = process.hrtime.bigint();
    let i = 0;
    const step = () => {
      const sliceEnd = Date.now() + 8;
      while (i < count) {
        target.emit(event, makePayload(payload, seq, i));
        i++;
        if ((i & 0xff) === 0 && Date.now() >= sliceEnd) break;
      }
      if (i < count) {
        setImmediate(step);
        return;
      }
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({
        emitted: count,
        recipients,
        elapsed_ms: Math.round(elapsedMs * 1000) / 1000,
        rate: elapsedMs > 0 ? Math.round((count * 1000) / elapsedMs) : null,
      });
    };
    step();
  });
}

// Wall-clock milliseconds with sub-millisecond precision (comparable with Python's
// time.time() on the same host), for latency measurements.
function epochMs() {
  return performance.timeOrigin + performance.now();
}

// Reads a recorded storm: one JSON array [event, payload] per line.
function loadReplay(file) {
  const events = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const item = JSON.parse(line);
    if (!Array.isArray(item) || typeof item[0] !== "string" || item.length !== 2) {
      throw new HttpError(400, "replay lines must be [event, payload]");
    }
    events.push(item);
  }
  return events;
}

// Emits recorded events in order, each to the room named after it (or `room`), as fast as
// possible (setImmediate slices of ~8 ms, like emitBurst) or paced at `rate` events/s.
// `stamp` adds `emitted_at` (epoch ms) to each object payload; `times` returns every
// event's emit time, so a receiver can measure latency per event.
function replay({ events, room, rate, stamp, times }) {
  return new Promise((resolve) => {
    const emitTimes = times ? new Array(events.length) : null;
    // Subscribers per room at the start, e.g. {"state-change": 2}.
    const recipients = {};
    for (const [event, payload] of events) {
      const name = room || roomOf(event, payload);
      if (name in recipients) continue;
      recipients[name] =
        name === "*" ? io.of("/").sockets.size : (io.of("/").adapter.rooms.get(name) || new Set()).size;
    }
    const startedMs = epochMs();
    const started = process.hrtime.bigint();
    let i = 0;
    const emitOne = () => {
      const [event, payload] = events[i];
      const now = stamp || emitTimes ? epochMs() : 0;
      const body =
        stamp && payload !== null && typeof payload === "object" && !Array.isArray(payload)
          ? { ...payload, emitted_at: now }
          : payload;
      emitter(room || roomOf(event, payload)).emit(event, body);
      if (emitTimes) emitTimes[i] = now;
      i++;
    };
    const finish = () => {
      const finishedMs = epochMs();
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({
        emitted: events.length,
        recipients,
        elapsed_ms: Math.round(elapsedMs * 1000) / 1000,
        rate: elapsedMs > 0 ? Math.round((events.length * 1000) / elapsedMs) : null,
        started_ms: startedMs,
        finished_ms: finishedMs,
        emit_times: emitTimes,
      });
    };
    const fast = () => {
      const sliceEnd = Date.now() + 8;
      while (i < events.length) {
        emitOne();
        if ((i & 0xff) === 0 && Date.now() >= sliceEnd) break;
      }
      if (i < events.length) setImmediate(fast);
      else finish();
    };
    const paced = () => {
      const due = Math.min(events.length, Math.floor(((epochMs() - startedMs) * rate) / 1000) + 1);
      while (i < due) emitOne();
      if (i < events.length) {
        setTimeout(paced, Math.max(0, (i * 1000) / rate - (epochMs() - startedMs)));
      } else {
        finish();
      }
    };
    if (events.length === 0) finish();
    else if (rate) paced();
    else fast();
  });
}

// SAYMON's server events (snmp-trap, mqtt, client-notification, job-added,
// job-result-received, bulk-finished) in the shapes shared with the simulator: the
// documented one, a plausible variant and a surprising one. A template string that is
// exactly "$NAME" is replaced by the value; "$NAME" inside a longer string by its text.
const SHAPES_FILE = path.join(__dirname, "..", "server_event_shapes.json");
let shapes = null;

function hexId() {
  return crypto.randomBytes(12).toString("hex");
}

function fill(template, values) {
  if (typeof template === "string") {
    if (template.startsWith("$") && Object.prototype.hasOwnProperty.call(values, template.slice(1))) {
      return values[template.slice(1)];
    }
    let out = template;
    for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
      out = out.split(`$${name}`).join(String(values[name]));
    }
    return out;
  }
  if (Array.isArray(template)) return template.map((item) => fill(item, values));
  if (template !== null && typeof template === "object") {
    const out = {};
    for (const [key, item] of Object.entries(template)) out[key] = fill(item, values);
    return out;
  }
  return template;
}

function serverEvent({ topic, shape, values, seq }) {
  if (shapes === null) shapes = JSON.parse(fs.readFileSync(SHAPES_FILE, "utf8"));
  const template = shapes[topic] && shapes[topic][shape];
  if (template === undefined || topic.startsWith("_")) {
    throw new HttpError(400, `no ${JSON.stringify(shape)} shape of ${JSON.stringify(topic)}`);
  }
  const defaults = {
    EVENT_ID: hexId(),
    TIMESTAMP: Date.now(),
    LEVEL: 2,
    TEXT: "Interface GigabitEthernet0/3 changed state to down",
    ENTITY_ID: "5ac3a4b2a9fd5c3965dac350",
    ENTITY_NAME: "SNMP TRAP",
    ENTITY2_ID: "5c5abcbfd75610326dd80248",
    ENTITY2_NAME: "Host",
    TOPIC: "sensors/rack1/temperature",
    MESSAGE: "21.5",
    STATE_ID: 5,
    JOB_ID: hexId(),
    OPERATION_ID: hexId(),
    USER_ID: hexId(),
    EXIT_CODE: 0,
    STDOUT: "Hello, world!",
    BULK_ID: hexId(),
    SEQ: seq,
  };
  return fill(template, { ...defaults, ...values });
}

// Bytes and packets a socket has been given but not yet written to its TCP connection.
function backlog(socket) {
  const conn = socket.conn;
  const ws = conn.transport && conn.transport.socket;
  return {
    packets: conn.writeBuffer ? conn.writeBuffer.length : 0,
    bytes: ws && typeof ws.bufferedAmount === "number" ? ws.bufferedAmount : 0,
  };
}

// Flow-controlled replay: every subscribed socket gets the whole storm (the events of the
// rooms it is in) as fast as *it* takes them. A socket whose unsent backlog exceeds
// `maxPackets` / `maxBytes` is skipped until it drained, so the server never buffers more
// than a fraction of a second for a slow client (its pings are not stuck behind a long
// backlog) while a fast client on the same storm is not held back. Returns per socket how
// many events it got and when its last one was emitted.
function replayFlow({ events, room, maxPackets, maxBytes }) {
  return new Promise((resolve) => {
    const names = new Set(events.map(([event, payload]) => room || roomOf(event, payload)));
    const targets = [...io.of("/").sockets.values()]
      .filter((socket) => [...names].some((name) => name === "*" || socket.rooms.has(name)))
      .map((socket) => ({ socket, i: 0, emitted: 0, doneMs: null }));
    const startedMs = epochMs();
    const started = process.hrtime.bigint();
    const finish = () => {
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      const total = targets.reduce((sum, t) => sum + t.emitted, 0);
      resolve({
        emitted: events.length,
        recipients: Object.fromEntries(
          targets.map((t) => [t.socket.id, { emitted: t.emitted, done_ms: t.doneMs }]),
        ),
        elapsed_ms: Math.round(elapsedMs * 1000) / 1000,
        rate: elapsedMs > 0 ? Math.round((total * 1000) / elapsedMs) : null,
        started_ms: startedMs,
        finished_ms: epochMs(),
        emit_times: null,
      });
    };
    const step = () => {
      const sliceEnd = Date.now() + 8;
      let pending = false;
      let progressed = false;
      for (const target of targets) {
        if (target.i >= events.length) continue;
        pending = true;
        if (!target.socket.connected) {
          target.i = events.length; // gone: nothing more to send it
          continue;
        }
        const { packets, bytes } = backlog(target.socket);
        if (packets >= maxPackets || bytes >= maxBytes) continue;
        let n = 0;
        while (target.i < events.length && n < 256) {
          const [event, payload] = events[target.i++];
          const name = room || roomOf(event, payload);
          if (name === "*" || target.socket.rooms.has(name)) {
            target.socket.emit(event, payload);
            target.emitted++;
            n++;
          }
        }
        progressed = true;
        if (target.i >= events.length) target.doneMs = epochMs();
        if (Date.now() >= sliceEnd) break;
      }
      if (!pending) finish();
      else if (progressed) setImmediate(step);
      else setTimeout(step, 1);
    };
    step();
  });
}

// ---------------------------------------------------------------- stat probes

// Every entity given to POST /stat/start runs one probe, as a SAYMON agent would: each period
// (the entities spread evenly over it) its next stat goes to the sockets subscribed to it with
// add-filtered-topic("stat", "<type>:<id>"). Payloads follow the simulator's probes
// (tools/simulator/stats.py): counters grow with time and sometimes restart from zero.
const probes = { entities: [], timer: null, last: new Map(), sent: 0, resets: 0 };

function seeded(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function uniform(rnd, low, high) {
  return low + (high - low) * rnd();
}

function round(value, digits) {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

const COUNTER_RATES = {
  snmp: {
    ifHCInOctets: 2500000, ifHCOutOctets: 1200000, ifHCInUcastPkts: 2000, ifHCOutUcastPkts: 1100,
    ifInErrors: 0.02, ifOutErrors: 0.01, ifInDiscards: 0.05, ifOutDiscards: 0.01,
  },
  fileSystem: { diskReads: 40, diskWrites: 25, diskReadBytes: 3000000, diskWriteBytes: 1500000 },
};

function probePayload(probe, periodMs) {
  const rnd = probe.rnd;
  const rates = COUNTER_RATES[probe.kind];
  if (rates) {
    if (Object.keys(probe.counters).length > 0 && rnd() < 0.02) {
      for (const key of Object.keys(probe.counters)) probe.counters[key] = 0;
      probes.resets++;
    }
    for (const [key, rate] of Object.entries(rates)) {
      probe.counters[key] = (probe.counters[key] || 0) + Math.floor((rate * periodMs * uniform(rnd, 0.5, 1.5)) / 1000);
    }
  }
  switch (probe.kind) {
    case "ping": {
      const average = round(uniform(rnd, 1, 40), 3);
      const lost = rnd() < 0.8 ? 0 : rnd() < 0.5 ? 1 : 5;
      return {
        packetsTransmitted: 5, packetsReceived: 5 - lost, packetLossPercentile: lost * 20,
        numberOfErrors: 0, numberOfDuplicates: 0, roundTripMinimal: round(average * 0.95, 3),
        roundTripAverage: average, roundTripMaximum: round(average * 1.05, 3), exitCode: lost === 5 ? 1 : 0,
      };
    }
    case "httpRequest": {
      const failed = rnd() < 0.05;
      return {
        statusCode: failed ? 503 : 200, statusText: failed ? "Service Unavailable" : "OK",
        responseTimeMs: Math.floor(uniform(rnd, 15, 900)),
        headers: { "Content-Type": "application/json", Server: "nginx" },
        body: {
          status: failed ? "degraded" : "ok", version: "2.4.1",
          queue: Math.floor(uniform(rnd, 0, 41)), started: 1700000000000,
        },
      };
    }
    case "cpu": {
      const user = uniform(rnd, 2, 60), sys = uniform(rnd, 1, 20), wait = uniform(rnd, 0, 8);
      const combined = Math.min(user + sys + wait, 100);
      return {
        percentageUsage: {
          user: round(user, 2), sys: round(sys, 2), wait: round(wait, 2),
          idle: round(100 - combined, 2), combined: round(combined, 2),
        },
        averageCpuLoad: {
          oneMinuteAverageLoad: round(uniform(rnd, 0.1, 4), 2),
          fiveMinutesAverageLoad: round(uniform(rnd, 0.1, 3), 2),
          fifteenMinutesAverageLoad: round(uniform(rnd, 0.1, 2), 2),
        },
      };
    }
    case "memory": {
      const total = 16 * 1024 ** 3, used = Math.floor(total * uniform(rnd, 0.2, 0.9));
      return {
        total, used, free: total - used, actualUsed: Math.floor(used * 0.8),
        actualFree: total - Math.floor(used * 0.8), usedPercent: round((used / total) * 100, 2),
        freePercent: round(((total - used) / total) * 100, 2),
      };
    }
    case "fileSystem": {
      const total = 512 * 1024 ** 3, used = Math.floor(total * uniform(rnd, 0.3, 0.95));
      return {
        total, used, free: total - used, avail: total - used,
        usePercent: round((used / total) * 100, 2), ...probe.counters,
      };
    }
    default:
      return { ...probe.counters, ifOperStatus: 1, ifSpeed: 1000000000 };
  }
}

function runProbe(probe, periodMs, expiryMs) {
  const now = Date.now();
  const stat = {
    taskType: probe.kind, period: periodMs, timestamp: now,
    agentId: "625439c60db03e3f4504b548", payload: probePayload(probe, periodMs),
  };
  if (expiryMs !== null) stat.expiryPeriod = expiryMs;
  const key = `${probe.type}:${probe.id}`;
  probes.last.set(key, stat);
  io.to(filteredRoom("stat", key)).emit("stat", {
    entityId: probe.id, entityType: probe.type, timestamp: now, payload: stat,
  });
  probes.sent++;
}

function stopProbes() {
  if (probes.timer !== null) clearInterval(probes.timer);
  probes.timer = null;
}

function startProbes({ entities, periodMs, expiryMs, seed }) {
  stopProbes();
  probes.entities = entities.map((e, i) => ({
    type: e.type, id: e.id, kind: e.kind, counters: {}, rnd: seeded(seed * 1000003 + i),
  }));
  probes.sent = 0;
  const started = Date.now();
  let cycle = 0;
  let done = 0;
  const tick = () => {
    const n = probes.entities.length;
    const elapsed = Date.now() - started - cycle * periodMs;
    const due = Math.min(n, Math.floor((elapsed / periodMs) * n) + 1);
    while (done < due) runProbe(probes.entities[done++], periodMs, expiryMs);
    if (done >= n && elapsed >= periodMs) {
      cycle++;
      done = 0;
    }
  };
  tick();
  probes.timer = setInterval(tick, Math.max(1, Math.min(20, Math.floor(periodMs / Math.max(probes.entities.length, 1)))));
}

// ---------------------------------------------------------------- control HTTP API

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (text.trim() === "") return resolve({});
      try {
        const body = JSON.parse(text);
        if (body === null || typeof body !== "object" || Array.isArray(body)) {
          reject(new HttpError(400, "body must be a JSON object"));
        } else {
          resolve(body);
        }
      } catch (err) {
        reject(new HttpError(400, `invalid JSON: ${err.message}`));
      }
    });
  });
}

function intField(body, name, dflt, { min = 0 } = {}) {
  const value = body[name] === undefined || body[name] === null ? dflt : body[name];
  if (!Number.isInteger(value) || value < min) {
    throw new HttpError(400, `${name} must be an integer >= ${min}`);
  }
  return value;
}

function stringField(body, name) {
  if (typeof body[name] !== "string" || body[name] === "") {
    throw new HttpError(400, `${name} must be a non-empty string`);
  }
  return body[name];
}

const routes = {
  "GET /clients": async () => describeClients(),

  "GET /stats": async () => ({
    ...stats,
    connected: io.of("/").sockets.size,
    engine_clients: io.engine.clientsCount,
    disconnect_reasons: disconnectReasons,
    accept_delay_ms: acceptDelay,
    ping_interval_ms: options.pingInterval,
    ping_timeout_ms: options.pingTimeout,
  }),

  "POST /sessions": async (body) => {
    if (!Array.isArray(body.valid) || !body.valid.every((s) => typeof s === "string")) {
      throw new HttpError(400, "valid must be a list of strings");
    }
    validSessions = new Set(body.valid);
    return { valid: validSessions.size };
  },

  "POST /accept-delay": async (body) => {
    acceptDelay = intField(body, "ms", 0);
    return { accept_delay_ms: acceptDelay };
  },

  "POST /emit": async (body) => {
    const event = stringField(body, "event");
    return emitBurst({
      event,
      payload: body.payload === undefined ? null : body.payload,
      room: body.room === undefined || body.room === null ? event : stringField(body, "room"),
      count: intField(body, "count", 1),
      seq: !!body.seq,
    });
  },

  "POST /replay": async (body) => {
    const file = stringField(body, "file");
    const rate = body.rate === undefined || body.rate === null ? null : body.rate;
    if (rate !== null && (typeof rate !== "number" || !(rate > 0))) {
      throw new HttpError(400, "rate must be a positive number or null");
    }
    let events;
    try {
      events = loadReplay(file);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, `cannot read ${file}: ${err.message}`);
    }
    const room = body.room === undefined || body.room === null ? null : stringField(body, "room");
    if (body.flow) {
      return replayFlow({
        events,
        room,
        maxPackets: intField(body, "max_packets", 2000, { min: 1 }),
        maxBytes: intField(body, "max_bytes", 1 << 20, { min: 1 }),
      });
    }
    return replay({ events, room, rate, stamp: !!body.stamp, times: !!body.times });
  },

  "POST /server-event": async (body) => {
    const topic = stringField(body, "topic");
    const shape = body.shape === undefined ? "documented" : stringField(body, "shape");
    const values = body.values === undefined || body.values === null ? {} : body.values;
    if (typeof values !== "object" || Array.isArray(values)) {
      throw new HttpError(400, "values must be an object");
    }
    const count = intField(body, "count", 1);
    const payloads = [];
    for (let i = 0; i < count; i++) payloads.push(serverEvent({ topic, shape, values, seq: i }));
    const recipients = (io.of("/").adapter.rooms.get(topic) || new Set()).size;
    for (const payload of payloads) io.to(topic).emit(topic, payload);
    return { emitted: count, recipients, payloads: count <= 10 ? payloads : undefined };
  },

  "POST /stat/start": async (body) => {
    const kinds = ["ping", "httpRequest", "cpu", "memory", "fileSystem", "snmp"];
    if (!Array.isArray(body.entities)) throw new HttpError(400, "entities must be a list");
    const entities = body.entities.map((e) => {
      if (!e || typeof e.id !== "string" || ![1, 2].includes(e.type) || !kinds.includes(e.kind)) {
        throw new HttpError(400, `entities need {type: 1|2, id, kind: ${kinds.join("|")}}`);
      }
      return e;
    });
    const periodMs = intField(body, "period_ms", 60000, { min: 1 });
    const expiryMs = body.expiry_ms === undefined || body.expiry_ms === null ? null : intField(body, "expiry_ms", 0);
    startProbes({ entities, periodMs, expiryMs, seed: intField(body, "seed", 1) });
    return { entities: entities.length, period_ms: periodMs };
  },

  "POST /stat/stop": async () => {
    stopProbes();
    return { sent: probes.sent, resets: probes.resets };
  },

  "GET /stat/last": async () => ({
    sent: probes.sent,
    resets: probes.resets,
    running: probes.timer !== null,
    last: Object.fromEntries(probes.last),
  }),

  "POST /emit-big": async (body) => {
    const event = stringField(body, "event");
    const bytes = intField(body, "bytes", 0);
    const room = body.room === undefined || body.room === null ? event : stringField(body, "room");
    const started = process.hrtime.bigint();
    emitter(room).emit(event, { size: bytes, data: "x".repeat(bytes) });
    return { emitted: 1, bytes, elapsed_ms: Number(process.hrtime.bigint() - started) / 1e6 };
  },

  "POST /disconnect": async (body) => {
    const mode = body.mode === undefined ? "socket" : body.mode;
    if (!DISCONNECT_MODES.includes(mode)) {
      throw new HttpError(400, `unknown disconnect mode ${JSON.stringify(mode)}`);
    }
    let n = 0;
    for (const socket of targetSockets(body.id)) {
      if (disconnectClient(socket, mode)) n++;
    }
    return { disconnected: n, mode };
  },

  "POST /stall": async (body) => {
    const ms = intField(body, "ms", 0);
    const started = Date.now();
    stall(ms);
    return { stalled_ms: Date.now() - started };
  },

  "POST /shutdown": async () => {
    setImmediate(shutdown);
    return { ok: true };
  },
};

const control = http.createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname.replace(/\/+$/, "") || "/";
  const handler = routes[`${req.method} ${path}`];
  let status = 200;
  let result;
  try {
    if (!handler) throw new HttpError(404, `no route ${req.method} ${path}`);
    result = await handler(await readJson(req));
  } catch (err) {
    status = err instanceof HttpError ? err.status : 500;
    result = { error: err.message };
  }
  const text = JSON.stringify(result === undefined ? null : result);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
});
control.keepAliveTimeout = 1000;

// ---------------------------------------------------------------- lifecycle

let shuttingDown = false;
function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  stopProbes();
  log("shutting down");
  // io.close() sends Engine.IO CLOSE to polling clients and closes websockets,
  // i.e. what a graceful Comet restart looks like to clients.
  io.close();
  control.close();
  control.closeAllConnections();
  setTimeout(() => process.exit(0), 100).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (options.exitOnStdinClose) {
  // The test helper keeps a pipe to our stdin open; if the test run dies
  // without stopping us, the pipe closes and we don't outlive it.
  process.stdin.on("end", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, HOST, () => {
      server.removeListener("error", reject);
      resolve(server.address().port);
    });
  });
}

(async () => {
  try {
    const port = await listen(ioHttp, options.port);
    const controlPort = await listen(control, options.controlPort);
    process.stdout.write(`${JSON.stringify({ port, control_port: controlPort })}\n`);
    log(`listening on ${HOST}:${port}, control on ${HOST}:${controlPort}`);
  } catch (err) {
    process.stderr.write(`server.js: cannot listen: ${err.message}\n`);
    process.exit(1);
  }
})();
