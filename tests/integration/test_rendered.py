# ruff: noqa: RUF001 - Russian text is Cyrillic on purpose
"""What users read, rendered: error messages, the repair issue, Russian entity and state names.

Other tests check translation keys; these fill in the placeholders (as Home Assistant and its
frontend do) and compare the sentences a user sees, in English and in Russian, so a missing
or misnamed placeholder, or a key that resolves to nothing, shows up as wrong text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
import re
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import STATE_ALARM, VIEWER_LOGIN, VIEWER_PASSWORD, SaymonSimulator

from .common import entry_for, serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=10, seed=31)) as sim:
        yield sim


async def texts(hass: HomeAssistant, language: str, category: str) -> dict[str, str]:
    return await async_get_translations(hass, language, category, {DOMAIN})


def render(template: str, placeholders: dict[str, str] | None) -> str:
    """Fill placeholders as the frontend does; a missing one fails, none may be left over."""
    text = template.format(**(placeholders or {}))
    assert not re.search(r"\{\w*\}", text), text
    return text


class Actions:
    """Calls actions over the websocket API, as the frontend does, and keeps the errors."""

    def __init__(self, hass: HomeAssistant, client: Any) -> None:
        self.hass = hass
        self.client = client

    async def error(self, service: str, data: dict[str, Any]) -> dict[str, Any]:
        await self.client.send_json_auto_id(
            {"type": "call_service", "domain": DOMAIN, "service": service, "service_data": data}
        )
        answer = await self.client.receive_json()
        assert not answer["success"], answer
        error: dict[str, Any] = answer["error"]
        assert error["translation_domain"] == DOMAIN
        return error

    @staticmethod
    def english(error: dict[str, Any]) -> str:
        """The sentence Home Assistant sends, as ``strings.json`` has it.

        Home Assistant (2025.4) puts "Validation error: " before a validation error and drops
        a translation's final period; both are undone here, so the comparison is with the
        sentence itself.
        """
        message = str(error["message"]).removeprefix("Validation error: ")
        return message if message.endswith((".", ")")) else f"{message}."

    async def russian(self, error: dict[str, Any]) -> str:
        """The message as the frontend shows it to a user whose language is Russian."""
        ru = await texts(self.hass, "ru", "exceptions")
        key = f"component.{DOMAIN}.exceptions.{error['translation_key']}.message"
        return render(ru[key], error.get("translation_placeholders"))


async def test_action_errors_as_users_read_them(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    actions = Actions(hass, await hass_ws_client())

    error = await actions.error("acknowledge_incident", {"incident_id": "nope"})
    assert actions.english(error) == "SAYMON has no incident nope."
    assert await actions.russian(error) == "В SAYMON нет инцидента nope."

    error = await actions.error(
        "acknowledge_incident", {"incident_id": "x", "config_entry_id": "missing"}
    )
    assert actions.english(error) == "There is no SAYMON entry with the id missing."
    assert await actions.russian(error) == "Записи SAYMON с идентификатором missing нет."

    await simulator.set_state(
        next(o for o in simulator.model.objects if o != simulator.model.root_id), STATE_ALARM
    )
    await wait_for(lambda: bool(hub.model.incidents), what="an incident")
    incident_id = next(iter(hub.model.incidents))
    simulator.fail_next(3)
    error = await actions.error("clear_incident", {"incident_id": incident_id})
    reason = error["translation_placeholders"]["error"]
    assert reason  # SAYMON's own words, e.g. its HTTP status
    assert actions.english(error) == f"SAYMON could not change incident {incident_id}: {reason}"
    assert await actions.russian(error) == (
        f"SAYMON не смог изменить инцидент {incident_id}: {reason}"
    )

    await simulator.stop_rest()
    error = await actions.error("refresh", {})
    assert actions.english(error) == (
        f"SAYMON at {hub.host} could not be read again. Home Assistant keeps retrying in the "
        "background; check that SAYMON is reachable."
    )
    assert await actions.russian(error) == (
        f"Не удалось заново прочитать данные SAYMON по адресу {hub.host}. Home Assistant "
        "продолжает попытки в фоне; проверьте, что SAYMON доступен."
    )
    await simulator.start_rest()

    assert await hass.config_entries.async_unload(entry.entry_id)
    error = await actions.error("refresh", {"config_entry_id": entry.entry_id})
    assert actions.english(error) == f"The SAYMON entry {entry.title} is not loaded."
    assert await actions.russian(error) == f"Запись SAYMON {entry.title} не загружена."
    error = await actions.error("refresh", {})
    assert actions.english(error) == "No SAYMON server is set up and loaded."
    assert await actions.russian(error) == "Ни один сервер SAYMON не настроен и не загружен."


async def test_a_setup_that_cannot_reach_saymon_says_where(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """The entry's retry reason on the integration page names the address and the error."""
    await simulator.stop_rest()
    entry = entry_for(simulator)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    host = entry.data["url"].split("://", 1)[1]
    reason = present(entry.reason)
    assert reason.startswith(f"Cannot reach SAYMON at {host}: "), reason
    assert len(reason) > len(f"Cannot reach SAYMON at {host}: ")
    await hass.config_entries.async_unload(entry.entry_id)
    await simulator.start_rest()


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_the_repair_issue_as_users_read_it(
    hass: HomeAssistant, simulator: SaymonSimulator, language: str
) -> None:
    hub: SaymonHub = (await setup_entry(hass, simulator)).runtime_data.hub
    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="the outage")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await hass.async_block_till_done()
    issue = present(ir.async_get(hass).async_get_issue(DOMAIN, hub.repair_issue_id))
    strings = await texts(hass, language, "issues")
    prefix = f"component.{DOMAIN}.issues.{issue.translation_key}"
    title = render(strings[f"{prefix}.title"], issue.translation_placeholders)
    description = render(strings[f"{prefix}.description"], issue.translation_placeholders)
    if language == "en":
        assert title == f"SAYMON at {hub.host} is unreachable"
        assert f"(the Comet server at {hub.comet.address}) for more than 15 minutes" in description
        assert f"Open {hub.base_url} in a browser" in description
    else:
        assert hub.host in title
        assert "недоступен" in title
        assert hub.comet.address in description
        assert "15" in description
        assert hub.base_url in description
    await simulator.start_comet()
    await wait_for(lambda: hub.connected, what="the reconnect")


async def test_russian_entity_and_state_names(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """With Home Assistant in Russian, names come out in Russian, and every state has a name."""
    hass.config.language = "ru"
    hub: SaymonHub = (await setup_entry(hass, simulator)).runtime_data.hub
    registry = er.async_get(hass)
    key = hub.server_key
    title = hub.entry.title
    root = simulator.model.objects[simulator.model.root_id]

    def name(domain: str, unique_id: str) -> str:
        entity_id = present(registry.async_get_entity_id(domain, DOMAIN, f"{key}|{unique_id}"))
        return str(present(hass.states.get(entity_id)).attributes["friendly_name"])

    assert name("sensor", "active_incidents") == f"{title} Активные инциденты"
    assert name("sensor", "incidents_level_1") == f"{title} Инциденты уровня Alarm"
    assert name("binary_sensor", "connectivity") == f"{title} Соединение в реальном времени"
    assert name("event", "incidents") == f"{title} Инциденты"
    assert name("sensor", f"object|{root.id}|state") == f"{root.name} Состояние"

    entity_texts = await texts(hass, "ru", "entity")
    shown: set[str] = set()
    for obj in simulator.model.objects.values():
        entity_id = present(
            registry.async_get_entity_id("sensor", DOMAIN, f"{key}|object|{obj.id}|state")
        )
        shown.add(present(hass.states.get(entity_id)).state)
    assert len(shown) >= 2
    rendered = {
        state: entity_texts.get(f"component.{DOMAIN}.entity.sensor.object_state.state.{state}")
        for state in shown
    }
    assert all(rendered.values()), rendered
    assert rendered.get("working", "Работает") == "Работает"

    # The incident event entity's attributes as the more-info dialog shows them.
    target = next(o.id for o in simulator.model.objects.values() if o.id != root.id)
    await simulator.set_state(target, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(target), what="the incident")
    await hass.async_block_till_done()
    events = present(registry.async_get_entity_id("event", DOMAIN, f"{key}|incidents"))
    attributes = present(hass.states.get(events)).attributes
    prefix = f"component.{DOMAIN}.entity.event.incidents.state_attributes"
    assert entity_texts[f"{prefix}.event_type.state.{attributes['event_type']}"] == "Открыт"
    assert entity_texts[f"{prefix}.level_key.state.{attributes['level_key']}"] == "Авария"


async def test_a_refused_action_says_which_incident(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator
) -> None:
    """A SAYMON user without the right to change incidents (a viewer)."""
    entry = await setup_entry(hass, simulator, username=VIEWER_LOGIN, password=VIEWER_PASSWORD)
    incident_id = next(iter(entry.runtime_data.hub.model.incidents))
    actions = Actions(hass, await hass_ws_client())
    error = await actions.error("acknowledge_incident", {"incident_id": incident_id})
    assert actions.english(error) == f"The SAYMON user may not change incident {incident_id}."
    assert await actions.russian(error) == (
        f"У пользователя SAYMON нет прав изменять инцидент {incident_id}."
    )
