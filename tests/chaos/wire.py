"""Frames for the wire-level fuzzer: real Comet events as Socket.IO text, and mutations of them.

Every frame is a complete WebSocket message as the simulator writes it (Engine.IO type
character first). :func:`mutate` never produces the few frames that end a connection by
design (an Engine.IO CLOSE, a Socket.IO DISCONNECT, an empty or undecodable Engine.IO frame);
:data:`CONNECTION_ENDERS` lists them for the test that checks the client survives those too.
"""

from __future__ import annotations

import json
import random
from typing import Any

from tools.simulator import SaymonSimulator
from tools.simulator.server_events import SHAPES, payload, values_for

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    2**70,
    1.5e308,
    "",
    "\u00b2",
    "9" * 5000,
    "+/#",
    "a/b",
    "\x00\x01\x1f\x7f",
    "\u202e\u200b\U0001f4a5",
    "<script>alert(1)</script>",
    [],
    {},
    [[[[[]]]]],
    {"id": {"id": {"id": "x"}}},
]
SNIPPETS = [
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "1e999",
    "\u00b2",
    "\x00",
    "\ufffd",
    '"+/#"',
    "-0",
    "NaN",
]
CONNECTION_ENDERS: list[str | bytes] = ["1", "41", "x", "", "bQ"]


def valid_events(simulator: SaymonSimulator, rng: random.Random, count: int) -> list[str]:
    """Realistic Comet frames (``42[...]``) about the simulator's real objects and incidents."""
    model = simulator.model
    objects = list(model.objects)
    incidents = [incident.to_json() for incident in model.incidents.active.values()] or [
        {"id": "5f0000000000000000000001", "entityId": objects[0], "entityType": 1, "state": 1}
    ]
    frames = []
    for _ in range(count):
        kind = rng.randrange(8)
        if kind == 0:
            event: list[Any] = [
                "state-change",
                {"id": rng.choice(objects), "state_id": rng.choice([3, 4, 5, 7, 8]), "type": 1},
            ]
        elif kind == 1:
            incident = dict(rng.choice(incidents))
            event = ["incidents", {"changeType": rng.choice([1, 2]), "payload": incident}]
        elif kind == 2:
            event = ["incident-count", {"count": rng.randrange(0, 50)}]
        elif kind == 3:
            event = [
                "model-changed",
                {
                    "changeType": 2,
                    "id": rng.choice(objects),
                    "entityType": 1,
                    "user": {"id": "u1", "login": "admin"},
                },
            ]
        elif kind == 4:
            event = ["stat", {"entityId": rng.choice(objects), "entityType": 1, "payload": {}}]
        else:  # a server event in one of its shapes (documented, plausible, surprising)
            topic = ("snmp-trap", "mqtt", "job-result-received")[kind - 5]
            target = rng.choice(objects)
            values = values_for(rng, 1668076837571, (target, "object"), SEQ=kind)
            event = [topic, payload(topic, rng.choice(SHAPES), values)]
        frames.append("42" + json.dumps(event))
    return frames


def _replace_value(frame: str, rng: random.Random) -> str:
    try:
        event = json.loads(frame[2:])
        body = event[1]
        target = body.get("payload") if isinstance(body.get("payload"), dict) else body
        key = rng.choice(sorted(target))
    except (ValueError, IndexError, TypeError, AttributeError):
        return frame
    target[key] = rng.choice(HOSTILE_VALUES)
    return "42" + json.dumps(event)


def mutate(frame: str, rng: random.Random) -> str | bytes:
    """One random mutation of a valid frame (text or binary), never a connection ender."""
    choice = rng.randrange(12)
    if choice == 0:  # flip characters
        chars = list(frame)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice([*SNIPPETS, "a", "0", " "])
        out = "".join(chars)
    elif choice == 1:  # truncate
        out = frame[: rng.randrange(1, len(frame))]
    elif choice == 2:  # insert
        at = rng.randrange(len(frame))
        out = frame[:at] + rng.choice(SNIPPETS) * rng.randint(1, 30) + frame[at:]
    elif choice == 3:  # another Socket.IO packet type (never DISCONNECT)
        out = "4" + rng.choice("0234567") + frame[2:]
    elif choice == 4:  # another namespace, or an acknowledgement id
        out = rng.choice(["42/other,", "42/,", "4212345", "42999999999999"]) + frame[2:]
    elif choice == 5:  # binary event announcing attachments
        count = rng.choice([1, 2, 17, 999_999_999])
        out = f"45{count}-" + frame[2:]
    elif choice == 6:  # a field of the right event with a hostile value
        out = _replace_value(frame, rng)
    elif choice == 7:  # deep nesting where the payload goes
        depth = rng.choice([100, 1000, 20_000])
        out = frame[:2] + '["state-change",' + "[" * depth + "]" * depth + "]"
    elif choice == 8:  # Engine.IO types a connected client does not expect
        out = rng.choice("0356789") + frame[1:]
    elif choice == 9:  # binary frame
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif choice == 10:  # arguments of the wrong shape
        out = rng.choice(
            [
                '42["state-change"]',
                '42["state-change",1,2,3]',
                "42[]",
                "42{}",
                '42"state-change"',
                "42[null]",
                '42[["state-change"],{}]',
                '42[{"a":1},{}]',
            ]
        )
    else:  # a duplicated chunk
        at = rng.randrange(len(frame))
        out = frame[:at] + frame[at : at + rng.randint(1, 40)] * 2 + frame[at:]
    return _keep_connection(out)


def _keep_connection(frame: str) -> str:
    if not frame or frame[0] not in "023456789":
        frame = "4" + frame
    if frame[0] == "4" and frame[1:2] == "1":
        frame = "42" + frame[2:]
    return frame
