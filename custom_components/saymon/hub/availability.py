"""Availability of one entry: the Comet link's ups and downs as users see them.

The live-connection sensor follows the link at once; every other entity stays as it was for
the grace period after a loss (a short blip is not an outage), then turns unavailable. The log
says once when the link was lost and once when it returned, and an outage longer than
:data:`~..const.UNREACHABLE_REPAIR_AFTER` raises a repair issue that tells what to check.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from ..const import DOMAIN, UNREACHABLE_REPAIR_AFTER

_LOGGER = logging.getLogger(__package__)


class Availability:
    """Connected / available flags, the grace and repair timers, and the repair issue."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        grace_period: float,
        addresses: Callable[[], tuple[str, str, str]],
        on_available: Callable[[], None],
    ) -> None:
        """Nothing runs before :meth:`start`.

        ``addresses``: host, SAYMON address and Comet address, named by the repair issue;
        ``on_available``: called when entities must re-render because availability flipped.
        """
        self._hass = hass
        self._entry_id = entry_id
        self._grace_period = grace_period
        self._addresses = addresses
        self._on_available = on_available
        self.connected = False
        self.available = True
        self._grace_timer: CALLBACK_TYPE | None = None
        self._repair_timer: CALLBACK_TYPE | None = None
        self._down_logged = False
        self._stopped = False

    @property
    def repair_issue_id(self) -> str:
        """Id of the "SAYMON unreachable" repair issue of this entry."""
        return f"unreachable_{self._entry_id}"

    def start(self) -> None:
        """Not connected yet: the outage timers run until the first connect."""
        self._start_timers()

    def stop(self) -> None:
        """No more timers or flips (the entry is going away)."""
        self._stopped = True
        self._cancel_timers()

    def connected_now(self, host: str) -> None:
        """The link is up: cancel the timers and the issue, log a return once."""
        self.connected = True
        self._cancel_timers()
        ir.async_delete_issue(self._hass, DOMAIN, self.repair_issue_id)
        if self._down_logged:
            _LOGGER.info("Connection to SAYMON at %s restored", host)
            self._down_logged = False
        if not self.available:
            self.available = True
            self._on_available()

    def lost(self, host: str, reason: str) -> None:
        """The link is down: log once, start the grace and repair timers."""
        self.connected = False
        if not self._down_logged and not self._stopped:
            _LOGGER.info("Connection to SAYMON at %s lost (%s); reconnecting", host, reason)
            self._down_logged = True
        self._start_timers()

    def _start_timers(self) -> None:
        if self.connected or self._stopped:
            return
        if self._grace_timer is None and self.available:
            self._grace_timer = async_call_later(
                self._hass, self._grace_period, self._grace_expired
            )
        if self._repair_timer is None:
            self._repair_timer = async_call_later(
                self._hass, UNREACHABLE_REPAIR_AFTER, self._raise_repair
            )

    def _cancel_timers(self) -> None:
        for cancel in (self._grace_timer, self._repair_timer):
            if cancel is not None:
                cancel()
        self._grace_timer = self._repair_timer = None

    @callback
    def _grace_expired(self, _now: Any) -> None:
        self._grace_timer = None
        if not self.connected and self.available:
            self.available = False
            self._on_available()

    @callback
    def _raise_repair(self, _now: Any) -> None:
        self._repair_timer = None
        if self.connected:
            return
        host, url, comet_address = self._addresses()
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self.repair_issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="unreachable",
            translation_placeholders={
                "host": host,
                "url": url,
                "comet_address": comet_address,
                "minutes": str(int(UNREACHABLE_REPAIR_AFTER.total_seconds() // 60)),
            },
        )
