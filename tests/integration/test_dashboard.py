"""examples/dashboard.yaml works against a real setup: its entities exist, its templates render.

The dashboard is loaded as a user would paste it, after the one documented replacement (the
server device's object id for ``saymon_example_com``); every markdown template is rendered with
Home Assistant's template engine against an entry connected to the SAYMON simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
import re
from typing import Any
from urllib.parse import urlparse

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.template import Template
from homeassistant.util import slugify
from homeassistant.util.yaml import parse_yaml
import pytest

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.states import BUILTIN_STATE_KEYS
from tests.util import present, wait_for
from tools.simulator import (
    ENTITY_OBJECT,
    LEVEL_ALARM,
    LEVEL_MAJOR,
    LEVEL_WARNING,
    STATE_ALARM,
    STATE_DOWN,
    STATE_NO_DATA,
    STATE_WORKING,
    SaymonSimulator,
)

from .common import serving, setup_entry

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "dashboard.yaml"
PLACEHOLDER = "saymon_example_com"
CORE_CARDS = {"glance", "entities", "markdown", "logbook"}
# The order the "Worst object states" card promises (worst first; custom states in the middle).
RANK = {
    "alarm": 0,
    "down": 1,
    "no_data": 2,
    "overloaded": 3,
    "stopped": 5,
    "created": 6,
    "disabled": 7,
    "working": 8,
}
LABEL = {
    "alarm": "Alarm",
    "down": "Down",
    "no_data": "No data",
    "overloaded": "Overloaded",
    "stopped": "Stopped",
    "created": "Created",
    "disabled": "Disabled",
    "working": "Working",
}

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=40, seed=3)) as sim:
        yield sim


def server_object_id(simulator: SaymonSimulator) -> str:
    """What the dashboard tells users to put in place of ``saymon_example_com`` (for an IP)."""
    return slugify(f"SAYMON {urlparse(simulator.rest_url).netloc}")


def dashboard_text(simulator: SaymonSimulator) -> str:
    text = DASHBOARD.read_text(encoding="utf-8")
    assert PLACEHOLDER in text
    return text.replace(PLACEHOLDER, server_object_id(simulator))


def cards(node: Any) -> Iterator[dict[str, Any]]:
    """Every card of the dashboard, nested ones included."""
    if isinstance(node, dict):
        if "type" in node and ("views" not in node):
            yield node
        for key in ("views", "cards", "sections"):
            for child in node.get(key, []):
                yield from cards(child)
        if "card" in node:
            yield from cards(node["card"])


def markdown(simulator: SaymonSimulator, title: str) -> str:
    dashboard = parse_yaml(dashboard_text(simulator))
    for card in cards(dashboard):
        if card["type"] == "markdown" and card["title"] == title:
            return str(card["content"])
    raise AssertionError(f"no markdown card {title!r}")


def render(hass: HomeAssistant, content: str) -> str:
    return str(Template(content, hass).async_render(parse_result=False))


def table(rendered: str) -> list[list[str]]:
    """The body rows of the markdown table, as cells."""
    rows = [line for line in rendered.splitlines() if line.startswith("|")]
    assert rows[1].startswith("|---"), rendered
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


async def connected(hass: HomeAssistant, simulator: SaymonSimulator) -> SaymonHub:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    await hass.async_block_till_done()
    return hub


def state_entity(hass: HomeAssistant, hub: SaymonHub, object_id: str) -> str:
    return present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
        )
    )


def expected_worst(simulator: SaymonSimulator) -> list[tuple[str, str, str]]:
    """(object name, state label, incident column) of the non-working objects, worst first."""
    rows = []
    for obj in simulator.model.objects.values():
        key = BUILTIN_STATE_KEYS[str(obj.state_id)]
        if key == "working":
            continue
        has_incident = simulator.model.incidents.open_for((ENTITY_OBJECT, obj.id)) is not None
        rows.append((RANK[key], obj.name, LABEL[key], "open" if has_incident else ""))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [(name, label, incident) for _, name, label, incident in rows[:15]]


async def test_every_entity_exists_after_the_documented_replacement(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    await connected(hass, simulator)
    text = dashboard_text(simulator)
    dashboard = parse_yaml(text)
    assert {card["type"] for card in cards(dashboard)} <= CORE_CARDS
    referenced = set(re.findall(r"\b(?:sensor|binary_sensor|event)\.[a-z0-9_]+", text))
    assert len(referenced) == 6
    for entity_id in sorted(referenced):
        assert hass.states.get(entity_id) is not None, entity_id


async def test_incident_counts_show_the_servers_counts(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    await connected(hass, simulator)
    server = server_object_id(simulator)
    active = list(simulator.model.incidents.active.values())
    assert active
    expected = {
        f"sensor.{server}_active_incidents": len(active),
        f"sensor.{server}_alarm_incidents": sum(i.state == LEVEL_ALARM for i in active),
        f"sensor.{server}_major_incidents": sum(i.state == LEVEL_MAJOR for i in active),
        f"sensor.{server}_warning_incidents": sum(i.state == LEVEL_WARNING for i in active),
    }
    for entity_id, count in expected.items():
        assert present(hass.states.get(entity_id)).state == str(count), entity_id
    assert present(hass.states.get(f"binary_sensor.{server}_live_connection")).state == "on"


async def test_worst_states_lists_the_worst_objects_first(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected(hass, simulator)
    content = markdown(simulator, "Worst object states")
    working = sorted(
        (o for o in simulator.model.objects.values() if o.state_id == STATE_WORKING),
        key=lambda o: o.name,
    )
    # Make every kind of bad state present, then compare with the simulator's own picture.
    for obj, state_id in zip(working, (STATE_ALARM, STATE_DOWN, STATE_NO_DATA), strict=False):
        await simulator.set_state(obj.id, state_id)
        entity_id = state_entity(hass, hub, obj.id)
        key = BUILTIN_STATE_KEYS[str(state_id)]
        await wait_for(
            lambda e=entity_id, k=key: present(hass.states.get(e)).state == k,  # type: ignore[misc]
            what=f"{obj.name} {key}",
        )
    await hass.async_block_till_done()
    rows = table(render(hass, content))
    expected = expected_worst(simulator)
    assert len(expected) >= 3
    assert [(row[1], row[2], row[3]) for row in rows] == expected
    assert rows[0][0] == "🔴"
    assert rows[0][2] == "Alarm"
    assert rows[0][3] == "open"


async def test_worst_states_says_when_everything_works(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected(hass, simulator)
    for obj in list(simulator.model.objects.values()):
        if obj.state_id != STATE_WORKING:
            await simulator.set_state(obj.id, STATE_WORKING)
    entities = [state_entity(hass, hub, o) for o in simulator.model.objects]
    await wait_for(
        lambda: all(present(hass.states.get(e)).state == "working" for e in entities),
        what="every object working",
    )
    rendered = render(hass, markdown(simulator, "Worst object states"))
    assert rendered.strip() == f"All {len(entities)} objects are working."


async def test_latest_incident_names_the_incident(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    await connected(hass, simulator)
    content = markdown(simulator, "Latest incident change")
    assert "No incident has changed" in render(hass, content)
    target = min(
        (o for o in simulator.model.objects.values() if o.state_id == STATE_WORKING),
        key=lambda o: o.name,
    )
    await simulator.set_state(target.id, STATE_ALARM)
    event_entity = f"event.{server_object_id(simulator)}_incidents"
    await wait_for(
        lambda: present(hass.states.get(event_entity)).attributes.get("object_id") == target.id,
        what="incident event entity",
    )
    incident = present(simulator.model.incidents.open_for((ENTITY_OBJECT, target.id)))
    rendered = render(hass, content)
    assert f"**Alarm** incident\nopened on **{target.name}**," in rendered
    assert incident.text in rendered
    assert "ago." in rendered
    assert "Acknowledged" not in rendered
