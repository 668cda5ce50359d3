"""MQTT topic names of the mirror, built from SAYMON ids only.

A SAYMON id never contains MQTT's special characters in practice, but a topic built from
foreign data must not become a wildcard or an extra level: ``+``, ``#``, ``/``, NUL and
control characters are removed from every segment, and an empty segment becomes ``_``.
Names of objects never appear in topics (they change, and may contain anything).
"""

from __future__ import annotations

import re
from typing import Final

_UNSAFE: Final = re.compile(r"[+#/\x00-\x1f\x7f]")


def clean_segment(value: str) -> str:
    """Return ``value`` usable as one topic level."""
    cleaned = _UNSAFE.sub("", value)
    return cleaned or "_"


def clean_base(value: str) -> str:
    """Clean a user-given base topic: keep its levels, drop wildcards and empty levels."""
    levels = [clean_segment(level) for level in value.strip().strip("/").split("/") if level]
    return "/".join(levels) or "saymon"


def default_base(host: str) -> str:
    """Return ``saymon/<server>`` for a SAYMON host."""
    return f"saymon/{clean_segment(host)}"


class Topics:
    """Every topic of one mirror, under its base topic."""

    def __init__(self, base: str) -> None:
        """Use ``base`` (cleaned) as the prefix."""
        self.base = clean_base(base)
        self.status = f"{self.base}/status"
        self.incident_count = f"{self.base}/incidents/count"
        self.incident_event = f"{self.base}/incidents/event"
        self.model_event = f"{self.base}/model/event"
        self.connection = f"{self.base}/connection"

    def level_count(self, level_id: str) -> str:
        """Active incidents of one level (retained)."""
        return f"{self.incident_count}/{clean_segment(level_id)}"

    def object_state(self, object_id: str) -> str:
        """An object's current state (retained)."""
        return f"{self.base}/objects/{clean_segment(object_id)}/state"

    def object_incidents(self, object_id: str) -> str:
        """Active incidents of one object (retained)."""
        return f"{self.base}/objects/{clean_segment(object_id)}/incidents"

    def object_event(self, object_id: str) -> str:
        """An object's state changes (not retained)."""
        return f"{self.base}/objects/{clean_segment(object_id)}/event"

    def link_state(self, link_id: str) -> str:
        """A link's current state (retained)."""
        return f"{self.base}/links/{clean_segment(link_id)}/state"

    def link_event(self, link_id: str) -> str:
        """A link's state changes (not retained)."""
        return f"{self.base}/links/{clean_segment(link_id)}/event"

    def object_stat(self, object_id: str) -> str:
        """An object's latest metrics (retained)."""
        return f"{self.base}/objects/{clean_segment(object_id)}/stat"

    def link_stat(self, link_id: str) -> str:
        """A link's latest metrics (retained)."""
        return f"{self.base}/links/{clean_segment(link_id)}/stat"
