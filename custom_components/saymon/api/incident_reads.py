"""REST reads of incidents that Comet announced by id only (or that need confirming).

A read per event in its own task was fine for a trickle, but a storm of id-only events made
one task and one request each, all at once (13 in flight in the soak on a loaded machine; a
busy server could make thousands). Reads now wait in order, each id once, for one of
:data:`PARALLEL` readers; past :data:`BACKLOG` waiting ids one resync is cheaper than the
reads and brings the same truth, so the backlog is dropped and a resync asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
import logging
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

PARALLEL: Final = 4
"""Incident reads in flight at once."""

BACKLOG: Final = 1_000
"""Ids waiting to be read beyond which a resync replaces the reads."""


class IncidentReads:
    """A bounded, de-duplicated queue of incident ids to read, worked by a few readers."""

    def __init__(
        self,
        read: Callable[[str], Coroutine[Any, Any, None]],
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
        resync: Callable[[], None],
    ) -> None:
        """``read(id)`` reads and applies one incident; ``resync()`` replaces a backlog."""
        self._read = read
        self._spawn = spawn
        self._resync = resync
        self._waiting: dict[str, None] = {}
        self._readers = 0
        self.overflows = 0
        """Backlogs replaced by a resync."""
        self.peak = 0
        """Most ids that waited at once."""

    @property
    def waiting(self) -> int:
        """Ids waiting for a reader."""
        return len(self._waiting)

    def add(self, incident_id: str) -> None:
        """Read this incident soon (once, however many events name it meanwhile)."""
        if incident_id in self._waiting:
            return
        if len(self._waiting) >= BACKLOG:
            self.overflows += 1
            _LOGGER.log(
                logging.WARNING if self.overflows == 1 else logging.DEBUG,
                "More than %d SAYMON incidents announced by id only wait to be read; "
                "resyncing instead (counted in diagnostics)",
                BACKLOG,
            )
            self._waiting.clear()
            self._resync()
            return
        self._waiting[incident_id] = None
        self.peak = max(self.peak, len(self._waiting))
        if self._readers < PARALLEL:
            self._readers += 1
            self._spawn(self._work(), "saymon-incident")

    async def _work(self) -> None:
        try:
            while self._waiting:
                incident_id = next(iter(self._waiting))
                del self._waiting[incident_id]
                await self._read(incident_id)
        finally:
            self._readers -= 1
