"""The metrics options step and the ``saymon.get_metric_history`` action, against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon import metrics_flow
from custom_components.saymon.const import CONF_LINKS, DOMAIN
from custom_components.saymon.metric_catalog import (
    CONF_METRICS,
    CONF_METRICS_OTHERS,
    DEFAULT_METRICS,
    KNOWN,
    Others,
)
from tests.util import wait_for
from tools.simulator import ENTITY_OBJECT, SaymonSimulator
from tools.simulator.stats import KIND_INTERFACE, KIND_PING

from .common import serving, settled, setup_entry
from .test_metrics import metric_entities, probes_of

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=60, seed=5)) as sim:
        yield sim


async def open_metrics(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "metrics"}
        )
    )


def counts(sim: SaymonSimulator) -> dict[str, int]:
    """How many objects report each metric (the simulator's truth)."""
    found: dict[str, int] = {}
    for key, body in sim.model.last_stat.items():
        if key[0] == ENTITY_OBJECT:
            for path in _paths(body["payload"]):
                found[path] = found.get(path, 0) + 1
    return found


def _paths(payload: dict[str, Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for key, value in payload.items():
        if isinstance(value, dict):
            paths += _paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


async def test_choose_enabled_metrics_with_counts(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    registry = er.async_get(hass)
    truth = counts(simulator)
    result = await open_metrics(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "metrics"
    placeholders = result["description_placeholders"]
    assert placeholders["created"] == str(sum(truth.values()))
    assert placeholders["enabled"] == str(sum(n for p, n in truth.items() if p in DEFAULT_METRICS))
    assert placeholders["metric_names"] == str(len(truth))
    schema = result["data_schema"].schema
    offered = next(v.config["options"] for k, v in schema.items() if str(k) == CONF_METRICS)
    labels = {option["value"]: option["label"] for option in offered}
    assert (
        labels["roundTripAverage"]
        == f"Round trip average · roundTripAverage ({truth['roundTripAverage']})"
    )
    assert labels["headers.Server"] == f"headers.Server ({truth['headers.Server']})"
    assert set(KNOWN) <= set(labels)  # known metrics are offered even where none reports them

    choice = {CONF_METRICS: ["roundTripAverage", "ifHC*Octets", " "], CONF_METRICS_OTHERS: "known"}
    result = dict(await hass.config_entries.options.async_configure(result["flow_id"], choice))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "metrics_confirm"
    assert result["menu_options"] == ["metrics_save", "metrics"]
    enabled = truth["roundTripAverage"] + truth["ifHCInOctets"] + truth["ifHCOutOctets"]
    known = sum(n for p, n in truth.items() if p in KNOWN)
    assert result["description_placeholders"]["enabled"] == str(enabled)
    assert result["description_placeholders"]["created"] == str(known)

    before = metric_entities(hass, entry)
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "metrics_save"}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_METRICS] == ["roundTripAverage", "ifHC*Octets"]
    assert entry.options[CONF_METRICS_OTHERS] == Others.KNOWN
    await hass.async_block_till_done()
    await settled(hass, entry)
    after = metric_entities(hass, entry)
    # Unknown metrics are gone; what the choice enables is enabled, what only the old one
    # enabled is disabled.
    assert {p for _, p in after} == {p for _, p in before if p in KNOWN}
    switch = probes_of(simulator, KIND_INTERFACE)[0]
    ping = probes_of(simulator, KIND_PING)[0]
    assert registry.async_get(after[switch, "ifHCInOctets"]).disabled_by is None  # type: ignore[union-attr]
    assert (
        registry.async_get(after[ping, "packetLossPercentile"]).disabled_by  # type: ignore[union-attr]
        is er.RegistryEntryDisabler.INTEGRATION
    )
    await wait_for(lambda: hass.states.get(after[switch, "ifHCInOctets"]) is not None)


async def test_a_user_choice_in_the_registry_is_kept(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    registry = er.async_get(hass)
    ping = probes_of(simulator, KIND_PING)[0]
    entities = metric_entities(hass, entry)
    mine = entities[ping, "roundTripMaximum"]  # secondary: the user enables it by hand
    registry.async_update_entity(mine, disabled_by=None)
    off = entities[ping, "roundTripAverage"]  # and turns a default one off
    registry.async_update_entity(off, disabled_by=er.RegistryEntryDisabler.USER)
    result = await open_metrics(hass, entry)
    choice = {CONF_METRICS: [*DEFAULT_METRICS, "cpu*"], CONF_METRICS_OTHERS: "disabled"}
    result = dict(await hass.config_entries.options.async_configure(result["flow_id"], choice))
    await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "metrics_save"}
    )
    await hass.async_block_till_done()
    assert registry.async_get(mine).disabled_by is None  # type: ignore[union-attr]
    assert registry.async_get(off).disabled_by is er.RegistryEntryDisabler.USER  # type: ignore[union-attr]
    await settled(hass, entry)


async def test_too_many_enabled_entities_are_refused(
    hass: HomeAssistant, simulator: SaymonSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = await setup_entry(hass, simulator)
    monkeypatch.setattr(metrics_flow, "MAX_ENABLED_ENTITIES", 150)
    result = await open_metrics(hass, entry)
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_METRICS: ["*"], CONF_METRICS_OTHERS: "none"}
        )
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "too_many_entities"}
    assert int(result["description_placeholders"]["total"]) > 150
    assert result["description_placeholders"]["limit"] == "150"
    assert CONF_METRICS not in entry.options


async def test_metrics_step_needs_a_loaded_entry(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    result = await open_metrics(hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "metrics_not_loaded"


# -- the action ----------------------------------------------------------------------------


async def history(hass: HomeAssistant, **data: Any) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        DOMAIN, "get_metric_history", data, blocking=True, return_response=True
    )
    assert response is not None
    series: list[dict[str, Any]] = response["series"]  # type: ignore[assignment]
    return series


async def test_metric_history(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = await setup_entry(hass, simulator, {CONF_LINKS: True})
    for _ in range(3):
        await simulator.run_probes()
    ping = probes_of(simulator, KIND_PING)[0]
    entity_id = metric_entities(hass, entry)[ping, "roundTripAverage"]
    stored = list(simulator.model.probes.probes[ENTITY_OBJECT, ping].history)
    [series] = await history(hass, entity_id=entity_id, **{"from": "1h-ago"})
    assert series["entity_id"] == entity_id
    assert (series["object_id"], series["metric"]) == (ping, "roundTripAverage")
    assert series["object_name"] == simulator.model.objects[ping].name
    assert [p["value"] for p in series["points"]] == [v["roundTripAverage"] for _, v in stored]
    assert series["points"][0]["time"].endswith("+00:00")

    # Devices (or an object id) with metric names; downsampled; between two times.
    device = entry.runtime_data.hub.device(entry.runtime_data.hub.object_identifier(ping))
    assert device is not None
    found = await history(
        hass,
        device_id=[device.id],
        metrics=["roundTripAverage", "packetLossPercentile", "nothing"],
        downsample="all-max",
        **{"from": "1h-ago", "to": "2100-01-01 00:00:00"},
    )
    assert [(s["metric"], s["entity_id"]) for s in found] == [
        ("roundTripAverage", None),
        ("packetLossPercentile", None),
        ("nothing", None),
    ]
    assert found[0]["points"][0]["value"] == max(v["roundTripAverage"] for _, v in stored)
    assert found[2]["points"] == []
    by_object = await history(hass, object_id=ping, metrics=["roundTripMinimal"], **{"from": "0"})
    assert len(by_object[0]["points"]) == len(stored)


async def test_metric_history_errors(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = await setup_entry(hass, simulator, {CONF_LINKS: True})
    entities = metric_entities(hass, entry)
    link = sorted(simulator.model.links)[0]
    with pytest.raises(ServiceValidationError) as err:
        await history(hass, entity_id=entities[link, "roundTripAverage"], **{"from": "1h-ago"})
    assert err.value.translation_key == "metric_history_link"
    state_sensor = next(e for e in hass.states.async_entity_ids("sensor") if "active" in e)
    with pytest.raises(ServiceValidationError) as err:
        await history(hass, entity_id=state_sensor, **{"from": "1h-ago"})
    assert err.value.translation_key == "metric_not_found"
    with pytest.raises(ServiceValidationError) as err:
        await history(hass, metrics=["roundTripAverage"], **{"from": "1h-ago"})
    assert err.value.translation_key == "metric_history_target"
    with pytest.raises(Exception, match="not a time"):
        await history(hass, object_id="x", metrics=["a"], **{"from": "yesterday"})
    with pytest.raises(Exception, match="downsample"):
        await history(hass, object_id="x", metrics=["a"], downsample="5x", **{"from": "0"})
    ping = probes_of(simulator, KIND_PING)[0]
    # Every REST call fails meanwhile: "the next one" could be a background read on a busy machine.
    simulator.fail_all()
    try:
        with pytest.raises(HomeAssistantError) as failed:
            await history(hass, object_id=ping, metrics=["roundTripAverage"], **{"from": "0"})
    finally:
        simulator.fail_all(False)
    assert failed.value.translation_key == "metric_history_failed"
