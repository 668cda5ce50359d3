"""A bare paho-mqtt publisher: the same messages as the mirror, to the same broker.

``python -m tools.bench.bare_mqtt PORT FILE`` (a child process, like the mirror's broker
client gets its own thread): one JSON array ``[topic, payload, qos, retain]`` per line. paho
with ``loop_start()``, paho's own in-flight window off (it rescans its whole message store on
every acknowledgement otherwise), at most 20,000 QoS 1 messages handed to paho and not yet
acknowledged (paho 2.1 loses messages beyond 65,535 outstanding, so any publisher needs a cap).
Prints
``{"ready": true}``, then on any stdin line publishes everything and prints when the first
publish started and the last acknowledgement came (epoch ms) and the CPU time used.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MAX_OUTSTANDING = 20_000


def main(port: int, path: Path) -> None:
    """Connect, wait for the go, publish, report."""
    messages = [json.loads(line) for line in path.read_text().splitlines() if line]
    done = threading.Event()
    acked = 0
    last_ack = 0.0

    def on_publish(*_: Any) -> None:
        nonlocal acked, last_ack
        acked += 1
        last_ack = time.time() * 1000
        if acked == len(messages):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare-paho")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    cpu0 = time.process_time()
    first = time.time() * 1000
    for sent, (topic, payload, qos, retain) in enumerate(messages):
        while sent - acked >= MAX_OUTSTANDING:
            time.sleep(0.001)
        client.publish(topic, payload.encode(), qos, retain)
    done.wait(120)
    result = {
        "sent": len(messages),
        "acked": acked,
        "first_ms": first,
        "last_ack_ms": last_ack,
        "cpu_s": time.process_time() - cpu0,
    }
    client.disconnect()
    client.loop_stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
