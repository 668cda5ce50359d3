"""The simulator's shared state and the actions that change it and publish the resulting events.

REST handlers, control routes, storms and ticks all go through here, so every path produces the
same Comet traffic for the same change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

from .accounts import Accounts, User
from .events import Event
from .faults import Counters, Faults
from .model import SimulatorModel

Publisher = Callable[[Sequence[Event]], Awaitable[None]]


class SimulatorCore:
    """Model, accounts, fault knobs and counters, plus the publishing hook Comet plugs into."""

    def __init__(self, model: SimulatorModel, accounts: Accounts) -> None:
        """Start with a healthy server and no publisher (events are counted but go nowhere)."""
        self.model = model
        self.accounts = accounts
        self.faults = Faults()
        self.counters = Counters()
        self.publisher: Publisher | None = None

    async def publish(self, events: Sequence[Event], kinds: Collection[str] | None = None) -> int:
        """Publish events (only those named in `kinds`, when given); returns how many."""
        selected = [event for event in events if kinds is None or event.name in kinds]
        for event in selected:
            self.counters.events_published[event.name] += 1
        if selected and self.publisher is not None:
            await self.publisher(selected)
        return len(selected)

    def _actor(self, user: User | None) -> dict[str, str]:
        return (user or self.accounts.admin).ref()

    async def set_state(self, object_id: str, state_id: int) -> dict[str, Any]:
        """Set an object's state; returns the updated object."""
        await self.publish(self.model.set_state(object_id, state_id))
        return self.model.get_object(object_id).to_json()

    async def set_link_state(self, link_id: str, state_id: int) -> dict[str, Any]:
        """Set a link's state; returns the updated link."""
        await self.publish(self.model.set_link_state(link_id, state_id))
        return self.model.get_link(link_id).to_json()

    async def acknowledge(self, incident_id: str, user: User) -> None:
        """Acknowledge an incident as `user`."""
        await self.publish(self.model.acknowledge(incident_id, user.id))

    async def unacknowledge(self, incident_id: str) -> None:
        """Remove an acknowledgement."""
        await self.publish(self.model.unacknowledge(incident_id))

    async def clear(self, incident_id: str) -> None:
        """Clear an incident (it moves to the history after the incident timeout)."""
        await self.publish(self.model.clear(incident_id))

    async def clear_remove(self, incident_id: str) -> None:
        """Clear an incident and move it to the history at once."""
        await self.publish(self.model.clear_remove(incident_id))

    async def expire_incidents(self) -> int:
        """Move cleared incidents past the incident timeout to the history; returns how many."""
        events = self.model.expire_incidents()
        await self.publish(events)
        return sum(event.name == "incidents" for event in events)

    async def create_object(
        self, name: str, parent_id: str, class_id: str, user: User | None = None
    ) -> str:
        """Create an object; returns its id."""
        object_id, events = self.model.create_object(name, parent_id, class_id, self._actor(user))
        await self.publish(events)
        return object_id

    async def rename_object(self, object_id: str, name: str, user: User | None = None) -> None:
        """Rename an object."""
        await self.publish(self.model.rename_object(object_id, name, self._actor(user)))

    async def move_object(self, object_id: str, parent_id: str, user: User | None = None) -> None:
        """Re-parent an object."""
        await self.publish(self.model.move_object(object_id, parent_id, self._actor(user)))

    async def delete_object(self, object_id: str, user: User | None = None) -> None:
        """Delete an object and its subtree."""
        await self.publish(self.model.delete_object(object_id, self._actor(user)))

    async def emit_stat(
        self, object_id: str, payload: dict[str, Any] | None = None, *, link: bool = False
    ) -> None:
        """Publish a `stat` event for an object (or link)."""
        await self.publish([self.model.stat_event(object_id, payload, link=link)])

    async def run_probes(self, keys: Iterable[tuple[int, str]] | None = None) -> int:
        """Run the probes of `keys` (default: all) now and publish their stats; how many."""
        model = self.model
        events = [
            event
            for key in (list(model.probes.probes) if keys is None else keys)
            if (event := model.probe_stat(key)) is not None
        ]
        return await self.publish(events)
