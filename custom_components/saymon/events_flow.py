"""Options-flow step of SAYMON's server events and of the live connection's transport.

Each kind of server event is a switch of its own, with a line saying what it brings and what
it costs (:mod:`.server_kinds`); all are off by default. The transport is WebSocket, or
long-polling that upgrades to WebSocket when it can (for proxies that refuse WebSocket). The
entry reloads to apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .const import CONF_TRANSPORT, TRANSPORT_POLLING, TRANSPORT_WEBSOCKET
from .schema_lib import vol
from .server_kinds import KINDS


def events_schema() -> vol.Schema:
    """A switch per server event kind, and the transport."""
    return vol.Schema(
        {
            **{vol.Required(kind.key): BooleanSelector() for kind in KINDS},
            vol.Required(CONF_TRANSPORT): SelectSelector(
                SelectSelectorConfig(
                    options=[TRANSPORT_WEBSOCKET, TRANSPORT_POLLING],
                    translation_key=CONF_TRANSPORT,
                    mode=SelectSelectorMode.LIST,
                )
            ),
        }
    )


class EventsOptionsMixin(OptionsFlow):
    """The ``events`` step of the options flow."""

    def _async_save(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        raise NotImplementedError

    async def async_step_events(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the server events to follow and the transport of the live connection."""
        if user_input is not None:
            changes: dict[str, Any] = {kind.key: bool(user_input[kind.key]) for kind in KINDS}
            changes[CONF_TRANSPORT] = user_input[CONF_TRANSPORT]
            return self._async_save(changes)
        options = self.config_entry.options
        current: dict[str, Any] = {kind.key: options.get(kind.key) is True for kind in KINDS}
        current[CONF_TRANSPORT] = options.get(CONF_TRANSPORT, TRANSPORT_WEBSOCKET)
        return self.async_show_form(
            step_id="events",
            data_schema=self.add_suggested_values_to_schema(events_schema(), current),
        )
