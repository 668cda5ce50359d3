"""How long and how hard the chaos suite pushes: short in CI, long under ``scripts/chaos``.

``SAYMON_CHAOS_LONG=1`` selects the long form; every figure can also be set on its own through
its environment variable (``scripts/chaos --help`` lists them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

LONG: Final = os.environ.get("SAYMON_CHAOS_LONG", "") == "1"


def _number(name: str, short: float, long: float) -> float:
    raw = os.environ.get(name)
    if raw:
        return float(raw)
    return long if LONG else short


OUTAGE_SECONDS: Final = _number("SAYMON_CHAOS_OUTAGE_SECONDS", 2.0, 20.0)
"""How long Comet, REST or the network stay broken in the fault scenarios."""

BROKER_OUTAGE_SECONDS: Final = _number("SAYMON_CHAOS_BROKER_OUTAGE_SECONDS", 4.0, 60.0)
"""How long the MQTT broker stays unreachable ("a minute" in the long form)."""

STORM_RATE: Final = _number("SAYMON_CHAOS_STORM_RATE", 60.0, 120.0)
"""State changes per second during the incident storms of the fault scenarios."""

INCIDENT_TIMEOUT: Final = _number("SAYMON_CHAOS_INCIDENT_TIMEOUT", 2.0, 10.0)
"""SAYMON's incident timeout in the rigs' simulators: how long a cleared incident stays listed
before it moves to the history (short, so every scenario sees both stages of a close)."""

REST_DELAY: Final = _number("SAYMON_CHAOS_REST_DELAY", 1.5, 4.0)
"""Seconds SAYMON takes per REST call in the slow-SAYMON scenario."""

SOAK_SECONDS: Final = _number("SAYMON_CHAOS_SOAK_SECONDS", 30.0, 600.0)
SOAK_RATE: Final = _number("SAYMON_CHAOS_SOAK_RATE", 100.0, 120.0)
"""State changes per second in the soak (each one is 1-3 Comet events)."""
SOAK_RECONNECT_SECONDS: Final = _number("SAYMON_CHAOS_SOAK_RECONNECT_SECONDS", 10.0, 60.0)
SOAK_OBJECTS: Final = int(_number("SAYMON_CHAOS_SOAK_OBJECTS", 150, 300))
SOAK_FRAMES: Final = int(_number("SAYMON_CHAOS_SOAK_FRAMES", 1, 1))
"""Frames tracemalloc keeps per allocation in the soak: more name the callers of the sites that
grew, but slow every allocation (6 frames halved the events handled per second)."""

FUZZ_EXAMPLES: Final = int(_number("SAYMON_CHAOS_FUZZ_EXAMPLES", 200, 5000))
"""Hypothesis examples per parser property."""
WIRE_FRAMES: Final = int(_number("SAYMON_CHAOS_WIRE_FRAMES", 3000, 50000))
"""Random and mutated Socket.IO frames sent by the wire-level fuzzer."""

REPORT_DIR: Final = os.environ.get("SAYMON_CHAOS_REPORT_DIR") or None
"""Where ``scripts/chaos`` wants the JSON results (unset: no file is written)."""


def report_path() -> Path | None:
    """The JSON file of this run, when a report directory was given."""
    if REPORT_DIR is None:
        return None
    name = os.environ.get("SAYMON_CHAOS_REPORT_NAME") or "chaos.json"
    return Path(REPORT_DIR) / name
