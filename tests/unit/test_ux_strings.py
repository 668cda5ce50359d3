"""Strings a user reads outside entity names: device trigger wording and the event's level.

Home Assistant fills ``{entity_name}`` in a device trigger's text only for triggers that name
an entity; ours name a device, so the picker showed "An incident opened on <unknown entity>".
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.saymon.device_trigger import TRIGGER_EVENTS
from custom_components.saymon.event import BUILTIN_LEVEL_KEYS
from custom_components.saymon.server_triggers import SERVER_TRIGGERS

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "saymon"
SOURCES = ["strings.json", "translations/en.json", "translations/ru.json"]


def load(name: str) -> Any:
    return json.loads((INTEGRATION / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", SOURCES)
def test_device_triggers_need_no_entity(source: str) -> None:
    triggers = load(source)["device_automation"]["trigger_type"]
    assert set(triggers) == set(TRIGGER_EVENTS) | set(SERVER_TRIGGERS)
    for kind, text in triggers.items():
        assert not re.search(r"\{\w*\}", text), f"{source}: {kind} has a placeholder: {text}"


def test_device_trigger_wording() -> None:
    assert load("translations/en.json")["device_automation"]["trigger_type"] == {
        "incident_opened": "An incident opened",
        "incident_closed": "An incident closed",
        "state_changed": "The state changed in SAYMON",
        "snmp_trap_received": "An SNMP trap was received",
        "mqtt_message_received": "An MQTT message was received",
        "notification_received": "A SAYMON notification was received",
        "operation_finished": "An operation finished",
    }


@pytest.mark.parametrize("source", SOURCES)
def test_incident_levels_are_translated(source: str) -> None:
    event = load(source)["entity"]["event"]["incidents"]["state_attributes"]
    assert set(event["level_key"]["state"]) == set(BUILTIN_LEVEL_KEYS.values())
