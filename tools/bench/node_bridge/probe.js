#!/usr/bin/env node
// The benchmark's MQTT subscriber: a separate process (so it does not share Python's GIL
// with what is measured), mqtt.js, QoS 1. It counts messages per kind, remembers the last
// state per retained state topic, and notes when every expected state topic holds its final
// value. Times are epoch milliseconds (comparable with Python's time.time() * 1000).
//
// Usage: node probe.js --port PORT --filter 'saymon/bench/#'
// Prints {"ready": true} once subscribed, then answers one JSON line per command on stdin:
//   reset {"expect": FILE|null, "latency": bool}  start a new phase (FILE: {topic: state_id})
//   status                                        counts so far
//   report                                        counts, times and (latency) samples
//   quit
"use strict";

const fs = require("fs");
const readline = require("readline");
const { performance } = require("perf_hooks");
const mqtt = require("mqtt");

function args(argv) {
  const out = { filter: "#" };
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const opts = args(process.argv.slice(2));
const epochMs = () => performance.timeOrigin + performance.now();

let phase;
function newPhase(expectFile, latency) {
  const expected = expectFile ? JSON.parse(fs.readFileSync(expectFile, "utf8")) : {};
  phase = {
    expected: new Map(Object.entries(expected).map(([k, v]) => [k, String(v)])),
    matched: new Set(),
    last: new Map(),
    latency: !!latency,
    samples: [],
    counts: { state: 0, object_event: 0, incident_event: 0, other: 0, total: 0 },
    first_ms: null,
    last_ms: null,
    first_event_ms: null,
    last_event_ms: null,
    truth_ms: null,
  };
}
newPhase(null, false);

function stateId(payload) {
  if (payload.length === 0) return null;
  try {
    const value = JSON.parse(payload.toString("utf8")).state_id;
    return value === undefined || value === null ? null : String(value);
  } catch (err) {
    return null;
  }
}

const client = mqtt.connect(`mqtt://127.0.0.1:${opts.port}`, {
  clientId: `bench-probe-${process.pid}`,
  clean: true,
  reconnectPeriod: 1000,
});
client.on("connect", () => {
  client.subscribe(opts.filter, { qos: 1 }, (err) => {
    if (err) {
      process.stderr.write(`probe: subscribe failed: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  });
});
client.on("error", (err) => process.stderr.write(`probe: ${err.message}\n`));
client.on("message", (topic, payload, packet) => {
  const now = epochMs();
  const p = phase;
  const c = p.counts;
  c.total++;
  if (p.first_ms === null) p.first_ms = now;
  p.last_ms = now;
  if (topic.endsWith("/state")) {
    c.state++;
    if (packet.retain && p.expected.size === 0) return; // retained replay of an old phase
    const value = stateId(payload);
    p.last.set(topic, value);
    const want = p.expected.get(topic);
    if (want !== undefined) {
      if (value === want) {
        p.matched.add(topic);
        if (p.matched.size === p.expected.size) p.truth_ms = now;
      } else {
        p.matched.delete(topic);
      }
    }
  } else if (topic.endsWith("/incidents/event")) {
    c.incident_event++;
    event(p, now, topic, payload);
  } else if (topic.endsWith("/event") && topic.includes("/objects/")) {
    c.object_event++;
    event(p, now, topic, payload);
  } else {
    c.other++;
  }
});

function event(p, now, topic, payload) {
  if (p.first_event_ms === null) p.first_event_ms = now;
  p.last_event_ms = now;
  if (p.latency) {
    try {
      const data = JSON.parse(payload.toString("utf8"));
      p.samples.push([now, data.id || null, data.new_state_id || null]);
    } catch (err) {
      p.samples.push([now, null, null]);
    }
  }
}

function summary(full) {
  const p = phase;
  const out = {
    counts: p.counts,
    expected: p.expected.size,
    matched: p.matched.size,
    first_ms: p.first_ms,
    last_ms: p.last_ms,
    first_event_ms: p.first_event_ms,
    last_event_ms: p.last_event_ms,
    truth_ms: p.matched.size === p.expected.size && p.expected.size > 0 ? p.truth_ms : null,
  };
  if (full) out.samples = p.samples;
  return out;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [command, ...rest] = line.trim().split(" ");
  const body = rest.length ? JSON.parse(rest.join(" ")) : {};
  if (command === "reset") {
    newPhase(body.expect || null, body.latency);
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  } else if (command === "status") {
    process.stdout.write(`${JSON.stringify(summary(false))}\n`);
  } else if (command === "report") {
    process.stdout.write(`${JSON.stringify(summary(true))}\n`);
  } else if (command === "quit") {
    client.end(true, () => process.exit(0));
  }
});
rl.on("close", () => client.end(true, () => process.exit(0)));
