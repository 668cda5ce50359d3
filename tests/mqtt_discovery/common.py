"""Helpers of the MQTT discovery tests: node ids, config topics, what a subscriber saw."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_DISCOVERY,
    CONF_MQTT_DISCOVERY_PREFIX,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PORT,
    CONF_MQTT_QOS,
    MQTT_BROKER,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.discovery import Discovery
from custom_components.saymon.mqtt.mirror import SaymonMirror
from tests.ha_discovery import check_topic
from tools.mosquitto import MosquittoBroker, Received, Subscriber
from tools.simulator import SaymonSimulator

BASE = "lab/saymon"
PREFIX = "ha2"


def options(broker: MosquittoBroker, **extra: Any) -> dict[str, Any]:
    return {
        CONF_MQTT_MODE: MQTT_BROKER,
        CONF_MQTT_HOST: broker.host,
        CONF_MQTT_PORT: broker.port,
        CONF_MQTT_BASE_TOPIC: BASE,
        CONF_MQTT_QOS: 1,
        CONF_MQTT_DISCOVERY: True,
        CONF_MQTT_DISCOVERY_PREFIX: PREFIX,
        **extra,
    }


def discovery_of(hub: SaymonHub) -> Discovery:
    mirror = hub.entry.runtime_data.mirror
    assert isinstance(mirror, SaymonMirror)
    assert mirror.discovery is not None
    return mirror.discovery


def node(sim: SaymonSimulator, object_id: str | None = None) -> str:
    return f"saymon_{sim.user_id}" + ("" if object_id is None else f"_{object_id}")


def config_topic(sim: SaymonSimulator, object_id: str | None = None, prefix: str = PREFIX) -> str:
    return f"{prefix}/device/{node(sim, object_id)}/config"


def configs(sub: Subscriber, prefix: str = PREFIX) -> dict[str, bytes]:
    """The latest config per node (an empty payload: cleared)."""
    latest: dict[str, bytes] = {}
    for message in sub.messages:
        if message.topic.startswith(f"{prefix}/device/"):
            latest[check_topic(prefix, message.topic)] = message.payload
    return latest


def config_messages(sub: Subscriber, topic: str) -> list[Received]:
    return [m for m in sub.messages if m.topic == topic]


def render(hass: HomeAssistant, component: dict[str, Any], payload: bytes) -> str:
    """What Home Assistant's MQTT entity makes of ``payload`` (its value template, if any)."""
    template = component.get("value_template")
    if template is None:
        return payload.decode()
    source = template.template if isinstance(template, Template) else str(template)
    return str(Template(source, hass).async_render_with_possible_json_value(payload.decode()))
