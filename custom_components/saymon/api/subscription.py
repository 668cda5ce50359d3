"""What the Comet client asks SAYMON to send: one value per subscription.

Comet (socket.io 4.5.0) keeps no subscription across a reconnect, so the client holds these and
re-emits every one on every connect; as frozen values they also tell a duplicate subscription
apart from a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import json
from typing import Any

from .events import TOPIC_INCIDENTS, TOPIC_STAT
from .models import EntityType


@dataclass(frozen=True, slots=True)
class Subscription:
    """One Comet subscription, re-emitted on every connect.

    ``key`` selects the per-entity form (``add-filtered-topic``, used by ``stat``);
    ``filter`` is the optional third argument of ``add-topics`` (``incidents`` filters).
    """

    topic: str
    key: str | None = None
    filter: str | None = None

    @classmethod
    def incidents(cls, incident_filter: Mapping[str, Any] | str | None = None) -> Subscription:
        """Subscribe to ``incidents``, optionally with SAYMON's filter object."""
        if isinstance(incident_filter, Mapping):
            incident_filter = json.dumps(incident_filter, separators=(",", ":"))
        return cls(TOPIC_INCIDENTS, filter=incident_filter)

    @classmethod
    def stat(cls, entity_type: EntityType, entity_id: str) -> Subscription:
        """Subscribe to monitoring data of one object or link."""
        return cls(TOPIC_STAT, key=f"{int(entity_type)}:{entity_id}")

    def add_args(self) -> tuple[str, ...]:
        """Arguments of the emit that subscribes."""
        if self.key is not None:
            return ("add-filtered-topic", self.topic, self.key)
        if self.filter is not None:
            return ("add-topics", self.topic, self.filter)
        return ("add-topics", self.topic)

    def remove_args(self) -> tuple[str, ...]:
        """Arguments of the emit that unsubscribes."""
        if self.key is not None:
            return ("remove-filtered-topic", self.topic, self.key)
        return ("remove-topics", self.topic)
