"""SAYMON's server events (traps, MQTT messages, notifications, jobs, bulks) in every known shape.

The payload templates live in ``tools/server_event_shapes.json``, which the Node socket.io
server reads too, so both test servers send the same documented, plausible and surprising
shapes. A template's ``"$NAME"`` placeholders are filled from :func:`values_for`.
"""

from __future__ import annotations

from functools import cache
import json
from pathlib import Path
import random
from typing import Any, Final

SHAPES_FILE: Final = Path(__file__).resolve().parents[1] / "server_event_shapes.json"
SHAPES: Final = ("documented", "plausible", "surprising")
TOPICS: Final = (
    "snmp-trap",
    "mqtt",
    "client-notification",
    "job-added",
    "job-result-received",
    "bulk-finished",
)


@cache
def templates() -> dict[str, dict[str, Any]]:
    """Topic -> shape -> template."""
    data: dict[str, Any] = json.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    return {topic: data[topic] for topic in TOPICS}


def fill(template: Any, values: dict[str, Any]) -> Any:
    """Replace the ``$NAME`` placeholders of a template (recursively)."""
    if isinstance(template, str):
        if template.startswith("$") and template[1:] in values:
            return values[template[1:]]
        for name in sorted(values, key=len, reverse=True):  # $ENTITY2_ID before $ENTITY
            if f"${name}" in template:
                template = template.replace(f"${name}", str(values[name]))
        return template
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    return template


def values_for(
    rng: random.Random, timestamp: int, entity: tuple[str, str], **overrides: Any
) -> dict[str, Any]:
    """Placeholder values: ``entity`` is (id, name); anything else may be overridden."""
    entity_id, entity_name = entity
    values: dict[str, Any] = {
        "EVENT_ID": f"{rng.getrandbits(96):024x}",
        "TIMESTAMP": timestamp,
        "LEVEL": 2,
        "TEXT": "Interface GigabitEthernet0/3 changed state to down",
        "ENTITY_ID": entity_id,
        "ENTITY_NAME": entity_name,
        "ENTITY2_ID": entity_id,
        "ENTITY2_NAME": entity_name,
        "TOPIC": "sensors/rack1/temperature",
        "MESSAGE": "21.5",
        "STATE_ID": 5,
        "JOB_ID": f"{rng.getrandbits(96):024x}",
        "OPERATION_ID": f"{rng.getrandbits(96):024x}",
        "USER_ID": f"{rng.getrandbits(96):024x}",
        "EXIT_CODE": 0,
        "STDOUT": "Hello, world!",
        "BULK_ID": f"{rng.getrandbits(96):024x}",
    }
    values.update(overrides)
    return values


def payload(topic: str, shape: str, values: dict[str, Any]) -> Any:
    """One event of ``topic`` in ``shape``."""
    try:
        template = templates()[topic][shape]
    except KeyError:
        raise ValueError(f"no {shape!r} shape of {topic!r}") from None
    return fill(template, values)
