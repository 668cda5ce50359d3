"""Home Assistant 2026.8's device-registry rules: a device belongs to exactly one config entry.

Home Assistant 2026.8 stopped sharing a device between config entries (identifiers are unique
per entry) and deprecated ``async_update_device(remove_config_entry_id=...)``; a stale device is
removed with ``async_remove_device``. That is only right while no other entry shares the device,
so two entries on one SAYMON server (two users) must each keep devices of their own, on
2025.4 (where the registry would still merge them by identifier) and on current versions.
"""

from __future__ import annotations

from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon.const import CONF_USER_ID, DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.integration.common import entry_for, settled, setup_entry
from tools.simulator import VIEWER_LOGIN, VIEWER_PASSWORD, SaymonSimulator


def _entries_of(device: dr.DeviceEntry) -> set[str]:
    """The config entries a device belongs to, on either registry version."""
    entry_id: str | None = getattr(device, "config_entry_id", None)  # 2026.8 and later
    if entry_id is not None:
        return {entry_id}
    return set(device.config_entries)  # before 2026.8 (deprecated after it)


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, dr.DeviceEntry]:
    """Return an entry's devices by identifier (less the server key, which is per entry)."""
    registry = dr.async_get(hass)
    found = {}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        for domain, key in device.identifiers:
            if domain == DOMAIN:
                found[key.partition("|object|")[2] or "server"] = device
    return found


async def test_two_entries_on_one_server_never_share_a_device(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    admin = await setup_entry(hass, simulator)
    base = entry_for(simulator)
    viewer = MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        unique_id=f"{base.data[CONF_URL]}|{simulator.accounts.viewer.id}",
        data={
            **base.data,
            CONF_USERNAME: VIEWER_LOGIN,
            CONF_PASSWORD: VIEWER_PASSWORD,
            CONF_USER_ID: simulator.accounts.viewer.id,
        },
        options=dict(base.options),
    )
    viewer.add_to_hass(hass)
    assert await hass.config_entries.async_setup(viewer.entry_id)
    await settled(hass, viewer)

    admin_devices, viewer_devices = _devices(hass, admin), _devices(hass, viewer)
    shared_objects = (admin_devices.keys() & viewer_devices.keys()) - {"server"}
    assert shared_objects, "both users should see some of the same objects"
    for entry, devices in ((admin, admin_devices), (viewer, viewer_devices)):
        for device in devices.values():
            assert _entries_of(device) == {entry.entry_id}
    assert not {d.id for d in admin_devices.values()} & {d.id for d in viewer_devices.values()}

    # A stale device of one entry goes; the other entry's device of the same object stays.
    leaf = next(key for key in sorted(shared_objects) if not simulator.model.objects[key].child_ids)
    hub: SaymonHub = admin.runtime_data.hub
    assert hub.device(hub.object_identifier(leaf)) is not None
    assert await hass.config_entries.async_unload(admin.entry_id)
    assert await hass.config_entries.async_unload(viewer.entry_id)
    await simulator.delete_object(leaf)  # vanishes while both entries are unloaded
    assert await hass.config_entries.async_setup(admin.entry_id)
    await settled(hass, admin)
    registry = dr.async_get(hass)
    assert registry.async_get(admin_devices[leaf].id) is None
    assert registry.async_get(viewer_devices[leaf].id) is not None
