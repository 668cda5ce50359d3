"""Metric entities over real sockets: values, live updates, subscriptions, expiry, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
import math
from typing import Any

from homeassistant.components.sensor import SensorStateClass
from homeassistant.config_entries import RELOAD_AFTER_UPDATE_DELAY
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.saymon.api import stat
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.const import CONF_LINKS, DOMAIN
from custom_components.saymon.diagnostics import hub_diagnostics
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.metric_catalog import CONF_METRICS, DEFAULT_METRICS, KNOWN
from tests.util import wait_for
from tools.simulator import (
    CLASS_HOST,
    CLASS_SWITCH,
    ENTITY_LINK,
    ENTITY_OBJECT,
    SaymonSimulator,
)
from tools.simulator.stats import KIND_HTTP, KIND_INTERFACE, KIND_PING

from .common import entry_for, serving, settled, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")
UNITS = {"GiB": 1024**3, "Mbit/s": 1_000_000}
"""Display units Home Assistant converts some metrics to (the suggested ones)."""


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=60, seed=5)) as sim:
        yield sim


def metric_entities(hass: HomeAssistant, entry: MockConfigEntry) -> dict[tuple[str, str], str]:
    """Entity ids of the entry's metric entities by (object or link id, metric path)."""
    found = {}
    for item in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        parts = item.unique_id.split("|", 3)
        if len(parts) == 4 and parts[3].startswith("metric:"):
            found[parts[2], parts[3].removeprefix("metric:")] = item.entity_id
    return found


def truth(sim: SaymonSimulator, entity_id: str, kind: int = ENTITY_OBJECT) -> dict[str, Any]:
    return stat.flatten(sim.model.last_stat[(kind, entity_id)]["payload"])


def probes_of(sim: SaymonSimulator, kind: str) -> list[str]:
    return sorted(
        key[1]
        for key, probe in sim.model.probes.probes.items()
        if probe.kind == kind and key[0] == ENTITY_OBJECT
    )


def shows(hass: HomeAssistant, entity_id: str, value: Any) -> bool:
    state = hass.states.get(entity_id)
    if state is None:
        return False
    if isinstance(value, bool):
        return state.state == ("on" if value else "off")
    if isinstance(value, int | float):
        try:
            shown = float(state.state)
        except ValueError:
            return False
        scale = UNITS.get(str(state.attributes.get("unit_of_measurement")), 1)
        return math.isclose(shown * scale, float(value), rel_tol=1e-9)
    return state.state == str(value)


def wrong(hass: HomeAssistant, entry: MockConfigEntry, sim: SaymonSimulator) -> list[str]:
    """Enabled metric entities of objects whose state differs from the simulator's truth."""
    differ = []
    for (target, path), entity_id in metric_entities(hass, entry).items():
        if (state := hass.states.get(entity_id)) is None:
            continue  # disabled
        key = (ENTITY_LINK if target in sim.model.links else ENTITY_OBJECT, target)
        metrics = truth(sim, key[1], key[0])
        if path in metrics and not shows(hass, entity_id, metrics[path]):
            differ.append(f"{entity_id}={state.state} (truth {metrics[path]})")
    return differ


def followed(sim: SaymonSimulator) -> set[str]:
    [socket] = sim.sockets()
    return {key.split(":", 1)[1] for topic, key in socket.filtered_topics if topic == "stat"}


def enabled_targets(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    return {t for (t, _), e in metric_entities(hass, entry).items() if hass.states.get(e)}


async def test_values_after_setup_equal_the_truth(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    entities = metric_entities(hass, entry)
    registry = er.async_get(hass)
    enabled = {key for key, e in entities.items() if hass.states.get(e) is not None}
    # Default tier: exactly the default metrics of every object that reports them.
    expected = {
        (key[1], path)
        for key in simulator.model.last_stat
        if key[0] == ENTITY_OBJECT
        for path in truth(simulator, key[1])
        if path in DEFAULT_METRICS
    }
    assert enabled == expected
    assert {path for _, path in enabled} == set(DEFAULT_METRICS)
    assert wrong(hass, entry, simulator) == []
    # Secondary metrics exist, disabled; unknown ones disabled in the diagnostic category.
    for (target, path), entity_id in entities.items():
        item = registry.async_get(entity_id)
        assert item is not None
        if (target, path) in enabled:
            continue
        assert item.disabled_by is er.RegistryEntryDisabler.INTEGRATION, entity_id
        if path not in KNOWN:
            assert item.entity_category is EntityCategory.DIAGNOSTIC, entity_id
    unknown = {path for _, path in entities if path not in KNOWN}
    assert unknown == {
        "headers.Content-Type",
        "headers.Server",
        "body.status",
        "body.version",
        "body.queue",
        "body.started",
    }
    # Only what is used is subscribed: the objects with an enabled metric entity.
    await wait_for(lambda: followed(simulator) == {t for t, _ in enabled}, what="subscriptions")
    assert len(followed(simulator)) < len(simulator.model.probes.probes)


async def test_known_metrics_have_units_and_state_classes(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {CONF_METRICS: ["*"]})  # everything enabled
    entities = metric_entities(hass, entry)
    ping = probes_of(simulator, KIND_PING)[0]
    switch = probes_of(simulator, KIND_INTERFACE)[0]
    service = probes_of(simulator, KIND_HTTP)[0]
    checks = {
        (ping, "roundTripAverage"): ("ms", "duration", SensorStateClass.MEASUREMENT),
        (ping, "packetLossPercentile"): ("%", None, SensorStateClass.MEASUREMENT),
        (switch, "ifHCInOctets"): ("GiB", "data_size", SensorStateClass.TOTAL_INCREASING),
        (switch, "ifInErrors"): (None, None, SensorStateClass.TOTAL_INCREASING),
        (service, "body.queue"): (None, None, SensorStateClass.MEASUREMENT),
        (service, "body.started"): (None, "timestamp", None),
        (service, "headers.Server"): (None, None, None),
    }
    for key, (unit, device_class, state_class) in checks.items():
        state = hass.states.get(entities[key])
        assert state is not None, key
        attributes = state.attributes
        assert attributes.get("unit_of_measurement") == unit, key
        assert attributes.get("device_class") == device_class, key
        assert attributes.get("state_class") == state_class, key
    assert hass.states.get(entities[service, "body.started"]).state == (  # type: ignore[union-attr]
        "2023-11-14T22:13:20+00:00"
    )
    assert hass.states.get(entities[ping, "roundTripAverage"]).name.endswith(  # type: ignore[union-attr]
        "Round trip average"
    )
    registry = er.async_get(hass)
    meta_typed = registry.async_get(entities[service, "body.started"])
    assert meta_typed is not None
    assert meta_typed.entity_category is EntityCategory.DIAGNOSTIC  # changeRate NEVER


async def test_live_values_and_counter_resets(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {CONF_METRICS: [*DEFAULT_METRICS, "ifHC*"]})
    entities = metric_entities(hass, entry)
    switch = probes_of(simulator, KIND_INTERFACE)[0]
    octets = entities[switch, "ifHCInOctets"]
    before = float(hass.states.get(octets).state)  # type: ignore[union-attr]
    for _ in range(3):
        await simulator.run_probes()
        await wait_for(lambda: wrong(hass, entry, simulator) == [], what="live values")
    grown = float(hass.states.get(octets).state)  # type: ignore[union-attr]
    assert grown > before
    probe = simulator.model.probes.probes[ENTITY_OBJECT, switch]
    probe.counters = dict.fromkeys(probe.counters, 0)  # the switch rebooted
    await simulator.run_probes([(ENTITY_OBJECT, switch)])
    await wait_for(lambda: wrong(hass, entry, simulator) == [], what="after the reset")
    after = float(hass.states.get(octets).state)  # type: ignore[union-attr]
    assert after < grown
    state = hass.states.get(octets)
    assert state is not None
    assert state.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING


async def test_subscriptions_follow_enabling_and_disabling(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    entities = metric_entities(hass, entry)
    registry = er.async_get(hass)
    targets = enabled_targets(hass, entry)
    await wait_for(lambda: followed(simulator) == targets, what="subscribed")
    # Disabling every metric entity of one object unsubscribes it at once.
    gone = sorted(targets)[0]
    for (target, _), entity_id in entities.items():
        if target == gone and hass.states.get(entity_id) is not None:
            registry.async_update_entity(entity_id, disabled_by=er.RegistryEntryDisabler.USER)
    await hass.async_block_till_done()
    await wait_for(lambda: followed(simulator) == targets - {gone}, what="unsubscribed")
    # Enabling a metric of an object without any subscribes it once Home Assistant reloads.
    switch = probes_of(simulator, KIND_INTERFACE)[0]
    assert switch not in targets
    registry.async_update_entity(entities[switch, "ifHCInOctets"], disabled_by=None)
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=RELOAD_AFTER_UPDATE_DELAY + 1)
    )
    await hass.async_block_till_done()
    await settled(hass, entry)
    await wait_for(lambda: followed(simulator) == targets - {gone} | {switch}, what="resubscribed")
    assert shows(hass, entities[switch, "ifHCInOctets"], truth(simulator, switch)["ifHCInOctets"])


async def test_a_new_object_in_scope_gets_its_metrics(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    object_id = await simulator.create_object("New host", simulator.model.root_id, CLASS_HOST)
    # No stat yet: it is followed until its first one says what it measures.
    await wait_for(lambda: object_id in followed(simulator), what="probing the new object")
    assert not any(t == object_id for t, _ in metric_entities(hass, entry))
    await simulator.run_probes([(ENTITY_OBJECT, object_id)])
    await wait_for(
        lambda: (object_id, "roundTripAverage") in metric_entities(hass, entry), what="entities"
    )
    await hass.async_block_till_done()
    entity_id = metric_entities(hass, entry)[object_id, "roundTripAverage"]
    await wait_for(
        lambda: shows(hass, entity_id, truth(simulator, object_id)["roundTripAverage"]),
        what="its value",
    )
    assert object_id in followed(simulator)  # now for its enabled entities
    assert hub.metrics.subscriptions.followed[object_id] is not None
    # A new switch measures only what is disabled by default: followed until its first stat.
    switch = await simulator.create_object("New switch", simulator.model.root_id, CLASS_SWITCH)
    await wait_for(lambda: switch in followed(simulator), what="probing the new switch")
    await simulator.run_probes([(ENTITY_OBJECT, switch)])
    await wait_for(lambda: (switch, "ifHCInOctets") in metric_entities(hass, entry))
    await wait_for(lambda: switch not in followed(simulator), what="the switch unfollowed")


async def test_restart_and_reconnect_leave_no_unknown(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    entities = [e for e in metric_entities(hass, entry).values() if hass.states.get(e)]
    assert entities

    def unknown() -> list[str]:
        return [
            e
            for e in entities
            if (state := hass.states.get(e)) is None
            or state.state in (STATE_UNKNOWN, STATE_UNAVAILABLE)
        ]

    # Comet lost: the values missed meanwhile arrive with the resync, not a period later.
    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="disconnected")
    await simulator.run_probes()  # nobody hears these
    assert wrong(hass, entry, simulator) != []
    resyncs = hub.resyncs
    await simulator.start_comet()
    await wait_for(lambda: hub.resyncs > resyncs, timeout=30, what="resync")
    await wait_for(lambda: wrong(hass, entry, simulator) == [], what="the gap filled")
    assert unknown() == []
    # A restart of Home Assistant (the entry set up again): values at once, none unknown.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert unknown() == []
    assert wrong(hass, entry, simulator) == []


async def test_expired_metrics_become_unavailable(hass: HomeAssistant) -> None:
    async with serving(
        hass, SaymonSimulator(objects=30, seed=5, stat_period=0.4, stat_expiry=0.2)
    ) as sim:
        await sim.run_probes()
        entry = await setup_entry(hass, sim)
        ping = probes_of(sim, KIND_PING)[0]
        entity_id = metric_entities(hass, entry)[ping, "roundTripAverage"]
        await wait_for(
            lambda: hass.states.get(entity_id).state == STATE_UNAVAILABLE,  # type: ignore[union-attr]
            timeout=5,
            what="expired",
        )
        await sim.run_probes([(ENTITY_OBJECT, ping)])
        await wait_for(lambda: shows(hass, entity_id, truth(sim, ping)["roundTripAverage"]))
        await wait_for(
            lambda: hass.states.get(entity_id).state == STATE_UNAVAILABLE,  # type: ignore[union-attr]
            timeout=5,
            what="expired again",
        )


async def test_bad_input_keeps_the_last_good_values(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    entities = metric_entities(hass, entry)
    ping = probes_of(simulator, KIND_PING)[0]
    other = probes_of(simulator, KIND_PING)[1]
    average = entities[ping, "roundTripAverage"]
    loss = entities[ping, "packetLossPercentile"]
    good = hass.states.get(average).state  # type: ignore[union-attr]
    body = simulator.model.probes.stat(
        KIND_PING,
        {"roundTripAverage": "timeout", "packetLossPercentile": 100},
        simulator.model.clock(),
    )
    await simulator.emit_stat(ping, body)
    await wait_for(lambda: hass.states.get(loss).state == "100", what="the good metric")  # type: ignore[union-attr]
    assert hass.states.get(average).state == good  # type: ignore[union-attr]
    await simulator.send_raw(
        "stat", {"entityId": ping, "entityType": 1, "payload": 7}, everyone=True
    )
    await simulator.send_raw("stat", "not an object", everyone=True)
    huge = {f"m{i}": i for i in range(stat.MAX_METRICS + 5)}
    await simulator.emit_stat(
        other, simulator.model.probes.stat(KIND_PING, huge, simulator.model.clock())
    )
    await simulator.run_probes([(ENTITY_OBJECT, other)])
    other_average = entities[other, "roundTripAverage"]
    await wait_for(
        lambda: shows(hass, other_average, truth(simulator, other)["roundTripAverage"]),
        what="others go on",
    )
    diagnostics = hub_diagnostics(hub)
    assert diagnostics["metrics"]["rejected_values"] == {"not_numeric": 1}
    assert diagnostics["metrics"]["payload_problems"] == {"too_many_metrics": 5}
    assert diagnostics["comet"]["malformed"]["stat"] == 2
    assert hass.states.get(average).state == good  # type: ignore[union-attr]


async def test_a_shipped_state_class_is_kept(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A metric that records statistics keeps its state class, whatever SAYMON sends later."""
    entry = entry_for(simulator)
    entry.add_to_hass(hass)
    service = probes_of(simulator, KIND_HTTP)[0]
    registry = er.async_get(hass)
    account = simulator.user_id
    for path in ("statusCode", "body.status"):  # no state class in today's rules
        registry.async_get_or_create(
            "sensor",
            DOMAIN,
            f"{account}|object|{service}|metric:{path}",
            config_entry=entry,
            capabilities={"state_class": "measurement"},
        )
    await hass.config_entries.async_setup(entry.entry_id)
    await settled(hass, entry)
    entities = metric_entities(hass, entry)
    code = hass.states.get(entities[service, "statusCode"])
    text = hass.states.get(entities[service, "body.status"])
    assert code is not None
    assert text is not None
    assert code.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert text.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert text.state == STATE_UNAVAILABLE  # its text is refused, never shown as a number
    assert float(code.state) == truth(simulator, service)["statusCode"]


async def test_link_metrics(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = await setup_entry(hass, simulator, {CONF_LINKS: True})
    link = sorted(simulator.model.links)[0]
    entity_id = metric_entities(hass, entry)[link, "roundTripAverage"]
    state = hass.states.get(entity_id)
    assert state is not None
    sim_link = simulator.model.links[link]
    assert state.name == (
        f"{entry.title} Link {sim_link.source_name} → {sim_link.target_name} Round trip average"
    )
    assert shows(hass, entity_id, truth(simulator, link, ENTITY_LINK)["roundTripAverage"])
    assert link in followed(simulator)
    await simulator.run_probes([(ENTITY_LINK, link)])
    await wait_for(
        lambda: shows(hass, entity_id, truth(simulator, link, ENTITY_LINK)["roundTripAverage"])
    )


async def test_budget_creates_further_metric_entities_disabled(
    hass: HomeAssistant, simulator: SaymonSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custom_components.saymon.hub import metrics as hub_metrics

    monkeypatch.setattr(hub_metrics, "MAX_ENABLED_ENTITIES", 140)
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    enabled = [e for e in metric_entities(hass, entry).values() if hass.states.get(e)]
    objects = len(hub.objects_in_scope)
    assert 0 < len(enabled) <= 140 - (objects * 2 + 10)
    assert hub.metrics.disabled_by_budget > 0


async def test_only_metrics_that_changed_are_written(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A stat wakes every metric entity of its object; those showing the same stay unwritten."""
    entry = await setup_entry(hass, simulator)
    ping = probes_of(simulator, KIND_PING)[0]
    entities = metric_entities(hass, entry)
    average, loss = entities[ping, "roundTripAverage"], entities[ping, "packetLossPercentile"]
    payload = dict(truth(simulator, ping))
    reported = hass.states.get(loss).last_reported  # type: ignore[union-attr]
    for value in (111.5, 222.5):
        payload["roundTripAverage"] = value
        await simulator.emit_stat(
            ping, simulator.model.probes.stat(KIND_PING, payload, simulator.model.clock())
        )
        await wait_for(partial(shows, hass, average, value), what="the new average")
    state = hass.states.get(loss)
    assert state is not None
    assert state.last_reported == reported  # not even reported again: nothing to write


async def test_a_new_boolean_metric_becomes_a_binary_sensor(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {CONF_METRICS: [*DEFAULT_METRICS, "health.*"]})
    ping = probes_of(simulator, KIND_PING)[0]
    payload: dict[str, Any] = {**truth(simulator, ping), "health": {"up": True}}
    for value, shown in ((True, "on"), (False, "off")):
        payload["health"]["up"] = value
        await simulator.emit_stat(
            ping, simulator.model.probes.stat(KIND_PING, payload, simulator.model.clock())
        )
        await wait_for(lambda: (ping, "health.up") in metric_entities(hass, entry))
        entity_id = metric_entities(hass, entry)[ping, "health.up"]
        assert entity_id.startswith("binary_sensor.")
        await wait_for(partial(_is, hass, entity_id, shown), what=shown)
    state = hass.states.get(metric_entities(hass, entry)[ping, "health.up"])
    assert state is not None
    assert state.name.endswith("Health up")


def _is(hass: HomeAssistant, entity_id: str, shown: str) -> bool:
    state = hass.states.get(entity_id)
    return state is not None and state.state == shown


async def test_probing_stops_with_the_entry(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    # Found by CI: an object entering the scope while the entry unloaded started a 15-minute
    # probe timer after the shutdown had cancelled the others (a timer left behind the entry).
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    subscriptions = hub.metrics.subscriptions
    newcomer = await simulator.create_object("New host", simulator.model.root_id, CLASS_HOST)
    await wait_for(lambda: newcomer in followed(simulator), what="probing the new object")
    assert len(subscriptions._timers) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert subscriptions._timers == {}
    subscriptions.probe(["late"], EntityType.OBJECT)  # what a change during the unload does
    assert subscriptions._timers == {}
    assert "late" not in subscriptions._probing
