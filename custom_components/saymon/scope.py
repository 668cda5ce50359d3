"""Which SAYMON objects become Home Assistant devices.

A SAYMON server can hold tens of thousands of objects; the user chooses what is mirrored:
everything, or the union of whole subtrees (picked by their top object), objects carrying
chosen tags, and objects of chosen classes. Pure functions, shared by the config flow (to
show how many devices a choice makes) and the hub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .api.model import subtree_ids
from .api.models import SaymonObject
from .const import (
    AUTO_ALL_LIMIT,
    CONF_CLASSES,
    CONF_LINKS,
    CONF_PARENTS,
    CONF_SCOPE,
    CONF_TAGS,
    SCOPE_ALL,
    SCOPE_SELECTED,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """A scope choice, read from config entry options."""

    everything: bool = True
    parents: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    links: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Scope:
        """Read the options written by the config and options flows."""
        return cls(
            everything=options.get(CONF_SCOPE, SCOPE_ALL) != SCOPE_SELECTED,
            parents=frozenset(options.get(CONF_PARENTS, ())),
            tags=frozenset(options.get(CONF_TAGS, ())),
            classes=frozenset(options.get(CONF_CLASSES, ())),
            links=bool(options.get(CONF_LINKS, False)),
        )

    def select(self, objects: Mapping[str, SaymonObject]) -> set[str]:
        """Return the ids of the objects in scope."""
        if self.everything:
            return set(objects)
        selected = subtree_ids(objects, self.parents)
        if self.tags or self.classes:
            selected.update(
                obj.id
                for obj in objects.values()
                if obj.class_id in self.classes or not self.tags.isdisjoint(obj.tags)
            )
        return selected


def default_scope_options(object_count: int) -> dict[str, Any]:
    """Everything for small servers; nothing pre-selected for large ones."""
    return {
        CONF_SCOPE: SCOPE_ALL if object_count <= AUTO_ALL_LIMIT else SCOPE_SELECTED,
        CONF_PARENTS: [],
        CONF_TAGS: [],
        CONF_CLASSES: [],
        CONF_LINKS: False,
    }


def object_path(objects: Mapping[str, SaymonObject], object_id: str, limit: int = 8) -> str:
    """Return "Root / Site / Rack" for labels, following first parents."""
    names: list[str] = []
    current: str | None = object_id
    while current is not None and current in objects and len(names) < limit:
        obj = objects[current]
        names.append(obj.name)
        current = obj.parent_ids[0] if obj.parent_ids else None
        if current in (object_id, *names):
            break
    return " / ".join(reversed(names))
