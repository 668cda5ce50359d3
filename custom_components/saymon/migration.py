"""Config entry migrations, run by Home Assistant before an older entry is set up.

1.1 to 1.2: version 1 keyed the entry, its entities and its devices on the server's URL plus
the SAYMON user id, so a new address cut every entity and device loose. 1.2 keys them on the
user id alone (see :mod:`.identity`). The entity and device registries are re-keyed in place,
so every entity keeps its entity id, registry id, name, area, icon and history, and every
device its id, name, area and the automations and device triggers that refer to it.

The step is a minor one: the code of version 1 reads a migrated entry as it is (it keyed
everything on the entry's unique id, which is now the user id), so a downgrade keeps working.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import CONF_USER_ID, DOMAIN
from .identity import default_title, legacy_title, rekey

_LOGGER = logging.getLogger(__name__)

ENTRY_VERSION: Final = 1
ENTRY_MINOR_VERSION: Final = 2
"""1.2: identity from the SAYMON account, not from the address."""


async def async_migrate(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry of an older version up to date; ``False`` leaves it untouched and unloaded."""
    if entry.version > ENTRY_VERSION:
        # Written by a newer release (the user downgraded): nothing here can read it.
        return False
    if entry.minor_version < 2:
        return await _async_identity_from_account(hass, entry)
    return True


async def _async_identity_from_account(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """1.1 to 1.2: re-key the entry, its entities and its devices on the SAYMON user id."""
    account = str(entry.data[CONF_USER_ID])
    old = entry.unique_id or entry.entry_id  # what version 1's hub keyed everything on
    other = hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, account)
    if other is not None and other.entry_id != entry.entry_id:
        # Version 1 allowed one SAYMON user twice under two addresses; one key cannot serve
        # both. The entry stays as it is until the user removes one of the two.
        _LOGGER.error(
            "SAYMON entry '%s' follows the same SAYMON user as entry '%s' (the same server "
            "added twice under two addresses, or a copy of it); it cannot be upgraded while "
            "both exist. Remove one of them, then reload the other",
            entry.title,
            other.title,
        )
        return False

    @callback
    def _new_unique_id(entity: er.RegistryEntry) -> dict[str, Any] | None:
        new = rekey(entity.unique_id, old, account)
        return None if new is None or new == entity.unique_id else {"new_unique_id": new}

    await er.async_migrate_entries(hass, entry.entry_id, _new_unique_id)

    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        identifiers = {
            (domain, (rekey(key, old, account) or key) if domain == DOMAIN else key)
            for domain, key in device.identifiers
        }
        if identifiers != device.identifiers:
            devices.async_update_device(device.id, new_identifiers=identifiers)

    url = str(entry.data[CONF_URL])
    title = default_title(url) if entry.title == legacy_title(url) else entry.title
    hass.config_entries.async_update_entry(
        entry, unique_id=account, title=title, minor_version=ENTRY_MINOR_VERSION
    )
    _LOGGER.debug("SAYMON entry '%s' migrated to version 1.%s", title, ENTRY_MINOR_VERSION)
    return True
