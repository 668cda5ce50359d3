"""Snapshots of every platform's entities and of the diagnostics, against a fixed simulator.

Home Assistant's own ``snapshot_platform`` compares each entity's registry entry and state
with the stored snapshot, so a changed unique id, name, device class, translation key, option
list or state shows up in review as a diff. Registry entries differ between Home Assistant
releases (new fields), so each tested release keeps its own snapshot folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import PropertyMock, patch

import homeassistant.const as ha_const
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.saymon.const import CONF_LINKS
from custom_components.saymon.server_kinds import KINDS
from tests.integration.common import entry_for, serving, settled
from tools.simulator import SaymonSimulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

ENTRY_ID = "01JSAYMONSNAPSHOT0000000000"
RELEASE = f"ha{ha_const.MAJOR_VERSION}"


class ReleaseSnapshotExtension(HomeAssistantSnapshotExtension):  # type: ignore[misc]
    """Home Assistant's snapshot format, one folder per Home Assistant release year."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        """``__snapshots__/ha2025``, ``__snapshots__/ha2026``."""
        return f"{super().dirname(test_location=test_location)}/{RELEASE}"


@pytest.fixture
def release_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(ReleaseSnapshotExtension)


@pytest.fixture
def all_enabled() -> Iterator[None]:
    """Every entity enabled (snapshot_platform wants them all), also the disabled-by-default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=10, seed=21, incident_timeout=3600)) as sim:
        yield sim


async def _loaded(hass: HomeAssistant, simulator: SaymonSimulator, platform: Platform) -> str:
    # A stable id and title: they show in the snapshots (the port of the simulator does not).
    options = {CONF_LINKS: True, **{kind.key: True for kind in KINDS}}  # every server event on
    entry = entry_for(simulator, options, entry_id=ENTRY_ID, title="SAYMON snapshot")
    entry.add_to_hass(hass)
    with patch("custom_components.saymon.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await settled(hass, entry)
    return ENTRY_ID


@pytest.mark.usefixtures("all_enabled")
@pytest.mark.parametrize(
    "platform", [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT]
)
async def test_platform_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    release_snapshot: SnapshotAssertion,
    simulator: SaymonSimulator,
    platform: Platform,
) -> None:
    entry_id = await _loaded(hass, simulator, platform)
    await snapshot_platform(hass, entity_registry, release_snapshot, entry_id)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: Any,
    release_snapshot: SnapshotAssertion,
    simulator: SaymonSimulator,
) -> None:
    await _loaded(hass, simulator, Platform.SENSOR)
    entry = hass.config_entries.async_get_entry(ENTRY_ID)
    assert entry is not None
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    # Timings and library versions vary from run to run and release to release.
    assert diagnostics == release_snapshot(
        exclude=props(
            "last_event_age",
            "connected_for",
            "last_resync_seconds",
            "created_at",
            "modified_at",
            "library_hooks",
            "repaired_text_fields",
            "events",
            "queue_peak",
            "held_peak",
            "searched",
        )
    )
