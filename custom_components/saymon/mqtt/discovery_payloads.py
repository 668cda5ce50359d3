"""What Home Assistant MQTT discovery says about SAYMON: one device config per object and server.

Device-based discovery (one retained ``<prefix>/device/<node>/config`` message per device, with
``dev``, ``o`` and ``cmps``), built from the model and the mirror's own topics: every entity
reads a retained topic the mirror publishes anyway, so a second Home Assistant shows exactly
what any other subscriber sees. Nothing here publishes; :mod:`.discovery` does.

The entities of a device are tables of :class:`Component` entries. A table entry may also be
any :class:`ComponentSource` that expands into several components for one object (e.g. one
sensor per enabled metric, with its unit, device class and state class), so a new kind of
data is one more entry in :data:`OBJECT_COMPONENTS`.

Home Assistant's current rules: no ``object_id`` (deprecated, removed in 2026.4; entity ids
follow from the device and entity names), availability from the mirror's status topic (its
Last Will) and the SAYMON connection topic, ``via_device`` for the object tree. Abbreviated
keys keep the retained configs small; tests validate them with Home Assistant's own schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
import re
from typing import Any, Final, Protocol

from ..api.model import SaymonModel
from .topics import Topics

NODE_PREFIX: Final = "saymon"
MANUFACTURER: Final = "SAYMON"
_NOT_NODE: Final = re.compile(r"[^A-Za-z0-9_-]")
"""Home Assistant accepts only these characters in the node id of a discovery topic."""

STATE_TEMPLATE: Final = "{{ value_json.state if value_json is defined else None }}"
"""The state's name; ``None`` (unknown) for the empty message that deletes a removed object."""
PROBLEM_TEMPLATE: Final = "{{ 'ON' if value | int(0) > 0 else 'OFF' }}"
"""A problem while the object has at least one active incident (as in this Home Assistant)."""


def node_id(*parts: str) -> str:
    """A discovery node id from SAYMON ids: ``saymon_<account>[_<object id>]``, cleaned."""
    return _NOT_NODE.sub("_", "_".join((NODE_PREFIX, *parts)))


def config_topic(prefix: str, node: str) -> str:
    """The retained device config topic of one node."""
    return f"{prefix}/device/{node}/config"


def state_names(model: SaymonModel) -> list[str]:
    """SAYMON's state names: the values the object state sensor can take."""
    return list(dict.fromkeys(state.name for state in model.states.values() if state.name))


@dataclass(frozen=True, slots=True)
class Subject:
    """The object (or server) a device config describes."""

    model: SaymonModel
    topics: Topics
    target_id: str
    """The SAYMON object id; the account key for the server."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Component:
    """One entity of a discovered device, reading one of the mirror's retained topics."""

    key: str
    platform: str
    name: str
    topic: Callable[[Topics, str], str]
    """The state topic, from the mirror's topics and the subject's id."""
    value_template: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    entity_category: str | None = None
    enabled: bool = True
    payload_on: str | None = None
    payload_off: str | None = None
    options: Callable[[SaymonModel], list[str]] | None = None
    status_only: bool = False
    """Available whenever the mirror is (e.g. the connection sensor, which reports the link)."""

    def expand(self, subject: Subject) -> Iterable[Component]:
        """A fixed component is itself."""
        return (self,)


class ComponentSource(Protocol):
    """A table entry: the components it contributes to one subject's device."""

    def expand(self, subject: Subject) -> Iterable[Component]:
        """The components for ``subject`` (none, one, or one per metric...)."""


OBJECT_COMPONENTS: tuple[ComponentSource, ...] = (
    Component(
        key="state",
        platform="sensor",
        name="State",
        device_class="enum",
        topic=lambda topics, object_id: topics.object_state(object_id),
        value_template=STATE_TEMPLATE,
        options=state_names,
    ),
    Component(
        key="problem",
        platform="binary_sensor",
        name="Problem",
        device_class="problem",
        topic=lambda topics, object_id: topics.object_incidents(object_id),
        value_template=PROBLEM_TEMPLATE,
    ),
    Component(
        key="active_incidents",
        platform="sensor",
        name="Active incidents",
        state_class="measurement",
        topic=lambda topics, object_id: topics.object_incidents(object_id),
    ),
)

SERVER_COMPONENTS: tuple[ComponentSource, ...] = (
    Component(
        key="active_incidents",
        platform="sensor",
        name="Active incidents",
        state_class="measurement",
        topic=lambda topics, _account: topics.incident_count,
    ),
    Component(
        key="connection",
        platform="binary_sensor",
        name="Live connection",
        device_class="connectivity",
        entity_category="diagnostic",
        payload_on="online",
        payload_off="offline",
        topic=lambda topics, _account: topics.connection,
        status_only=True,
    ),
)


def component_config(component: Component, node: str, subject: Subject) -> dict[str, Any]:
    """One entry of ``cmps`` (abbreviated keys, only what is set)."""
    config: dict[str, Any] = {
        "p": component.platform,
        "uniq_id": f"{node}_{component.key}",
        "name": component.name,
        "stat_t": component.topic(subject.topics, subject.target_id),
    }
    optional = {
        "val_tpl": component.value_template,
        "dev_cla": component.device_class,
        "stat_cla": component.state_class,
        "unit_of_meas": component.unit,
        "ent_cat": component.entity_category,
        "pl_on": component.payload_on,
        "pl_off": component.payload_off,
    }
    config.update((key, value) for key, value in optional.items() if value is not None)
    if not component.enabled:
        config["en"] = False
    if component.options is not None and (options := component.options(subject.model)):
        config["ops"] = options
    if component.status_only:
        config["avty"] = [{"t": subject.topics.status}]
    return config


def device_config(
    node: str,
    device: Mapping[str, Any],
    origin: Mapping[str, Any],
    subject: Subject,
    table: Iterable[ComponentSource],
) -> dict[str, Any]:
    """A whole device config: device, origin, shared availability and components."""
    topics = subject.topics
    return {
        "dev": dict(device),
        "o": dict(origin),
        # Unavailable when the mirror is gone (its Last Will, or a clean stop) or SAYMON's
        # data is stale (the link is down past the grace period).
        "avty": [{"t": topics.status}, {"t": topics.connection}],
        "avty_mode": "all",
        "cmps": {
            component.key: component_config(component, node, subject)
            for source in table
            for component in source.expand(subject)
        },
    }


def origin(version: str, support_url: str | None) -> dict[str, Any]:
    """The ``o`` block: who publishes these configs."""
    block: dict[str, Any] = {"name": MANUFACTURER, "sw": version}
    if support_url:
        block["url"] = support_url
    return block
