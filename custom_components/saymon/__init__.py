"""The SAYMON integration: live incidents and object states from a SAYMON server."""

from __future__ import annotations

from homeassistant.const import CONF_URL, CONF_VERIFY_SSL, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .hub import SaymonHub
from .identity import server_host
from .migration import async_migrate
from .mqtt.discovery import async_remove_discovery
from .mqtt.mirror import MirrorSettings, SaymonMirror
from .mqtt.topics import Topics
from .runtime import SaymonConfigEntry, SaymonData
from .services import async_setup_services

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

__all__ = ["DOMAIN"]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, whatever entries exist."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: SaymonConfigEntry) -> bool:
    """Bring an entry of an older version up to date before it is set up."""
    return await async_migrate(hass, entry)


async def async_setup_entry(hass: HomeAssistant, entry: SaymonConfigEntry) -> bool:
    """Connect to SAYMON, build devices and entities, and follow it live."""
    session = async_get_clientsession(hass, verify_ssl=entry.data.get(CONF_VERIFY_SSL, True))
    hub = SaymonHub(hass, entry, session)
    await hub.async_setup()
    data = entry.runtime_data = SaymonData(hub)
    entry.async_on_unload(data.async_shutdown)
    settings = MirrorSettings.from_options(entry.options, hub.host)
    if settings.enabled:
        data.mirror = SaymonMirror(hass, hub, settings)
        await data.mirror.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))

    async def _async_ha_stop(_event: Event) -> None:
        """Home Assistant unloads no entry when it stops: log out and close connections now.

        Otherwise every restart would leave a SAYMON session behind until it expires.
        """
        await data.async_shutdown()

    # A plain listener (not listen_once): removing it on a later unload is always valid.
    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_ha_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_options_updated(hass: HomeAssistant, entry: SaymonConfigEntry) -> None:
    """Apply new scope or grace period by reloading the entry."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: SaymonConfigEntry) -> bool:
    """Unload platforms; the runtime data's shutdown then closes every connection and task."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: SaymonConfigEntry) -> None:
    """Clear the MQTT discovery configs the entry published (other Home Assistants drop them)."""
    settings = MirrorSettings.from_options(entry.options, server_host(entry.data[CONF_URL]))
    await async_remove_discovery(
        hass,
        entry.entry_id,
        enabled=settings.enabled,
        broker=settings.broker,
        status_topic=Topics(settings.base_topic).status,
    )


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: SaymonConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let users delete devices of objects that left SAYMON or the scope, not live ones."""
    hub = entry.runtime_data.hub
    if hub.server_identifier in device.identifiers:
        return False
    return not any(
        hub.object_identifier(object_id) in device.identifiers for object_id in hub.objects_in_scope
    )
