"""What a loaded config entry holds: its hub and, when on, its MQTT mirror; one way to stop both.

The hub knows nothing of the mirror (the mirror consumes the hub's change stream), so the entry
keeps them side by side and stops them in the one order that works: the mirror first, so it
publishes ``offline`` while the hub still exists, then the hub (Comet, timers, logout).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .hub import SaymonHub
from .mqtt.mirror import SaymonMirror


@dataclass(slots=True)
class SaymonData:
    """The runtime data of one SAYMON config entry."""

    hub: SaymonHub
    mirror: SaymonMirror | None = None

    async def async_shutdown(self) -> None:
        """Stop the mirror, then the hub; a second call does nothing (each part is idempotent).

        Runs when the entry unloads and when Home Assistant stops (which unloads nothing).
        """
        if self.mirror is not None:
            await self.mirror.async_stop()
        await self.hub.async_shutdown()


type SaymonConfigEntry = ConfigEntry[SaymonData]
