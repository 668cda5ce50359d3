#!/usr/bin/env node
// The Comet -> MQTT bridge people could write instead of using the integration:
// socket.io-client 4.5 + mqtt.js, one MQTT publish per Comet event, nothing else
// (no model, no resync, no REST). The benchmark compares the integration against it.
//
// Usage: node bridge.js --comet http://127.0.0.1:PORT --session ID --mqtt-port PORT
//                       [--base saymon/bench] [--qos 1]
// Prints one JSON line {"ready": true} once it is subscribed to Comet and connected to
// the broker; prints {"published": n, "acked": n, "errors": n} and exits on stdin close
// or SIGTERM. Loopback only.
"use strict";

const { io } = require("socket.io-client");
const mqtt = require("mqtt");

function args(argv) {
  const out = { base: "saymon/bench", qos: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    out[name] = argv[i + 1];
  }
  out.qos = Number(out.qos);
  return out;
}

const opts = args(process.argv.slice(2));
let published = 0;
let acked = 0;
let errors = 0;
let cometReady = false;
let mqttReady = false;

const broker = mqtt.connect(`mqtt://127.0.0.1:${opts["mqtt-port"]}`, {
  clientId: `node-bridge-${process.pid}`,
  clean: true,
  reconnectPeriod: 1000,
});
broker.on("connect", () => {
  mqttReady = true;
  announce();
});
broker.on("error", (err) => process.stderr.write(`bridge mqtt: ${err.message}\n`));

const done = (err) => {
  if (err) errors++;
  else acked++;
};

const socket = io(opts.comet, {
  transports: ["websocket"],
  query: { sessionId: opts.session },
  reconnection: true,
});
socket.on("connect", () => {
  for (const topic of ["state-change", "incidents"]) socket.emit("add-topics", topic);
  cometReady = true;
  // add-topics has no ack in Comet; a short delay lets the server join the rooms.
  setTimeout(announce, 200);
});
socket.on("connect_error", (err) => process.stderr.write(`bridge comet: ${err.message}\n`));
socket.on("state-change", (event) => {
  published++;
  const payload = JSON.stringify({ id: event.id, state_id: String(event.state_id), type: event.type });
  broker.publish(`${opts.base}/objects/${event.id}/state`, payload, { qos: opts.qos, retain: true }, done);
});
socket.on("incidents", (event) => {
  published++;
  broker.publish(`${opts.base}/incidents/event`, JSON.stringify(event), { qos: opts.qos }, done);
});

let announced = false;
function announce() {
  if (announced || !cometReady || !mqttReady) return;
  announced = true;
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

function shutdown() {
  process.stdout.write(`${JSON.stringify({ published, acked, errors })}\n`);
  socket.close();
  broker.end(true, () => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("error", shutdown);
process.stdin.resume();
