"""Loop protection: this Home Assistant must never rediscover its own SAYMON objects over MQTT.

If the MQTT integration of the Home Assistant that runs SAYMON reads discovery on the broker
and prefix the mirror publishes to, every SAYMON device would appear a second time, as an MQTT
copy. Two checks keep that from happening:

* :func:`listening_here` reads the configuration: Home Assistant's MQTT integration is loaded
  with discovery on under the same prefix, and on the same broker (always so for the route
  through Home Assistant's MQTT; for a dedicated broker when host and port are the same). The
  options flow refuses such a setting, and discovery does not start with it.
* :class:`LoopWatch` catches what the configuration cannot tell (the same broker under another
  name or address): an MQTT device with one of our node ids in this Home Assistant's device
  registry. Discovery then clears its configs (Home Assistant's MQTT removes the copies),
  stops, and a repair issue says what to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from homeassistant.components import mqtt
from homeassistant.const import CONF_DISCOVERY, CONF_PORT
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from ..const import DOMAIN
from .broker import BrokerConfig
from .topics import clean_base

_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
DEFAULT_MQTT_PORT: Final = 1883


def issue_id(entry_id: str) -> str:
    """Id of the repair issue of one entry's discovery loop."""
    return f"discovery_loop_{entry_id}"


def _same_host(one: str, other: str) -> bool:
    one, other = one.strip().lower().rstrip("."), other.strip().lower().rstrip(".")
    return one == other or (one in _LOOPBACK and other in _LOOPBACK)


def listening_here(hass: HomeAssistant, prefix: str, broker: BrokerConfig | None) -> bool:
    """Whether this Home Assistant's MQTT integration reads discovery under ``prefix`` there.

    ``broker`` is the dedicated broker, or ``None`` for the route through Home Assistant's
    MQTT integration (which publishes on the very connection that reads discovery).
    """
    for entry in hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
        conf: dict[str, Any] = {**entry.data, **entry.options}
        if not conf.get(CONF_DISCOVERY, mqtt.DEFAULT_DISCOVERY):
            continue
        if clean_base(conf.get(mqtt.CONF_DISCOVERY_PREFIX) or mqtt.DEFAULT_PREFIX) != prefix:
            continue
        if broker is None:
            return True
        host = str(conf.get(mqtt.CONF_BROKER) or "")
        port = int(conf.get(CONF_PORT) or DEFAULT_MQTT_PORT)
        if port == broker.port and _same_host(host, broker.host):
            return True
    return False


def raise_issue(hass: HomeAssistant, entry_id: str, prefix: str) -> None:
    """Tell the user why discovery is off and what to change."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="discovery_loop",
        translation_placeholders={"prefix": prefix},
    )


class LoopWatch:
    """Calls ``on_loop`` once when this Home Assistant's MQTT discovers one of our devices."""

    def __init__(self, hass: HomeAssistant, node_prefix: str, on_loop: Callable[[], None]) -> None:
        """Nothing is watched before :meth:`start`."""
        self._hass = hass
        self._node_prefix = node_prefix
        self._on_loop = on_loop
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> bool:
        """Watch the device registry; ``True`` when a copy exists already (nothing watched)."""
        registry = dr.async_get(self._hass)
        for entry in self._hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
            if any(self._ours(device.identifiers) for device in devices):
                return True
        self._unsubscribe = self._hass.bus.async_listen(
            dr.EVENT_DEVICE_REGISTRY_UPDATED, self._device_changed
        )
        return False

    def stop(self) -> None:
        """Stop watching."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _ours(self, identifiers: Iterable[tuple[str, str]]) -> bool:
        prefix = self._node_prefix
        return any(
            domain == mqtt.DOMAIN and (identifier == prefix or identifier.startswith(f"{prefix}_"))
            for domain, identifier in identifiers
        )

    @callback
    def _device_changed(self, event: Event[dr.EventDeviceRegistryUpdatedData]) -> None:
        if event.data["action"] != "create":
            return
        device = dr.async_get(self._hass).async_get(event.data["device_id"])
        if device is not None and self._ours(device.identifiers):
            self.stop()
            self._on_loop()
