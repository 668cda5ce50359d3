"""Check MQTT discovery configs with Home Assistant's own code, as its MQTT integration reads them.

The device config is expanded with Home Assistant's abbreviation tables, validated with its
``DEVICE_DISCOVERY_SCHEMA``, and every component (with the shared options it inherits, as
Home Assistant merges them) with its platform's ``DISCOVERY_SCHEMA``. Those platform schemas
silently drop unknown keys, so a key we send that Home Assistant does not know (a typo, or
``object_id`` on a release that removed it) fails here instead. The topic must match Home
Assistant's discovery topic pattern. Works on every supported Home Assistant release (both
test legs import the schemas of the release they run).
"""

from __future__ import annotations

import json
from typing import Any

from homeassistant.components.mqtt import (
    binary_sensor as mqtt_binary_sensor,
    sensor as mqtt_sensor,
)
from homeassistant.components.mqtt.abbreviations import (
    ABBREVIATIONS,
    DEVICE_ABBREVIATIONS,
    ORIGIN_ABBREVIATIONS,
)
from homeassistant.components.mqtt.discovery import TOPIC_MATCHER
from homeassistant.components.mqtt.schemas import DEVICE_DISCOVERY_SCHEMA, SHARED_OPTIONS

PLATFORM_SCHEMAS: dict[str, Any] = {
    "sensor": mqtt_sensor.DISCOVERY_SCHEMA,
    "binary_sensor": mqtt_binary_sensor.DISCOVERY_SCHEMA,
}
DEFAULTED = frozenset({"device", "origin"})
"""Keys Home Assistant adds to every component itself (not ours to check for dropping)."""


def _expand(config: dict[str, Any], table: dict[str, str]) -> dict[str, Any]:
    return {table.get(key, key): value for key, value in config.items()}


def _expand_availability(config: dict[str, Any]) -> dict[str, Any]:
    if isinstance(config.get("availability"), list):
        config["availability"] = [_expand(a, ABBREVIATIONS) for a in config["availability"]]
    return config


def check_topic(prefix: str, topic: str) -> str:
    """The node id of a device config topic, which Home Assistant must accept."""
    assert topic.startswith(f"{prefix}/"), topic
    match = TOPIC_MATCHER.fullmatch(topic.removeprefix(f"{prefix}/"))
    assert match is not None, f"Home Assistant would ignore {topic}"
    assert match["component"] == "device", topic
    assert match["node_id"] is None, topic
    return str(match["object_id"])


def validate_device_config(payload: bytes) -> dict[str, Any]:
    """Validate one device config; returns it expanded, with validated components.

    ``result["components"][key]`` is what the platform's schema made of the component
    (defaults filled in), ``result["device"]``/``result["origin"]`` the expanded blocks.
    """
    raw: dict[str, Any] = json.loads(payload)
    for block in (raw, *raw["cmps"].values()):
        assert not {"obj_id", "object_id"} & set(block), "object_id is removed in 2026.4"
    config = _expand_availability(_expand(raw, ABBREVIATIONS))
    config["device"] = _expand(config["device"], DEVICE_ABBREVIATIONS)
    config["origin"] = _expand(config["origin"], ORIGIN_ABBREVIATIONS)
    config["components"] = {
        key: _expand_availability(_expand(component, ABBREVIATIONS))
        for key, component in config["components"].items()
    }
    DEVICE_DISCOVERY_SCHEMA(json.loads(json.dumps(config)))  # a copy: schemas fill defaults
    validated: dict[str, Any] = {}
    for key, component in config["components"].items():
        platform = component.pop("platform")
        merged = {
            **{option: config[option] for option in SHARED_OPTIONS if option in config},
            **component,
            "device": config["device"],
            "origin": config["origin"],
        }
        result = PLATFORM_SCHEMAS[platform](json.loads(json.dumps(merged)))
        dropped = set(merged) - set(result) - DEFAULTED
        assert not dropped, f"{key}: Home Assistant ignores {sorted(dropped)}"
        validated[key] = {"platform": platform, **result}
    config["components"] = validated
    return config
