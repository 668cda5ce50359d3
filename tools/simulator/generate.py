"""Seeded generation of the initial object tree and links.

Everything comes from one `random.Random`, so the same seed and size always give the same ids,
names, classes and states; only timestamps follow the clock passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import json
import math
import random

from .catalog import (
    CLASS_HOST,
    CLASS_LINK,
    CLASS_RACK,
    CLASS_ROOT,
    CLASS_SERVER,
    CLASS_SERVICE,
    CLASS_SITE,
    CLASS_SWITCH,
    CLASSES,
    STATE_ALARM,
    STATE_CREATED,
    STATE_DOWN,
    STATE_NO_DATA,
    STATE_OVERLOADED,
    STATE_STOPPED,
    STATE_WORKING,
)
from .entities import SimLink, SimObject

DAY_MS = 86_400_000
_DEVICE_CLASSES = (CLASS_SWITCH, CLASS_SERVER, CLASS_HOST)
_DEVICE_DEPTH = 3
# States given to the few objects that start out of `Working`; all but Stopped/Created open
# an incident, so a fresh simulator always has some active incidents.
_TROUBLE_STATES = (
    STATE_ALARM,
    STATE_OVERLOADED,
    STATE_NO_DATA,
    STATE_DOWN,
    STATE_STOPPED,
    STATE_CREATED,
)
_TAG_NAMES = ("production", "staging", "critical", "network", "storage", "backup")


class IdFactory:
    """Mongo-like 24-hex ids drawn from the seeded generator, never repeated."""

    def __init__(self, rng: random.Random) -> None:
        """Draw ids from `rng` so they are reproducible for a seed."""
        self._rng = rng
        self._used: set[str] = set()

    def __call__(self) -> str:
        """Return a new unique id."""
        while True:
            new_id = f"{self._rng.getrandbits(96):024x}"
            if new_id not in self._used:
                self._used.add(new_id)
                return new_id


@dataclass(slots=True)
class World:
    """The generated starting point of a model."""

    root_id: str
    objects: dict[str, SimObject]
    links: dict[str, SimLink]
    tags: dict[str, str]


def _class_for_depth(rng: random.Random, depth: int) -> str:
    if depth == 0:
        return CLASS_ROOT
    if depth == 1:
        return CLASS_SITE
    if depth == 2:
        return CLASS_RACK
    if depth == _DEVICE_DEPTH:
        return rng.choice(_DEVICE_CLASSES)
    return CLASS_SERVICE


class _TreeBuilder:
    """Builds objects breadth-first with a fan-out chosen so the tree is about four levels deep."""

    def __init__(self, rng: random.Random, new_id: IdFactory, now: int, tag_ids: list[str]):
        self.rng = rng
        self.new_id = new_id
        self.now = now
        self.tag_ids = tag_ids
        self.objects: dict[str, SimObject] = {}
        self.devices: list[str] = []
        self._per_class: dict[str, int] = {}

    def make(self, depth: int, parent: SimObject | None) -> SimObject:
        rng = self.rng
        class_id = _class_for_depth(rng, depth)
        number = self._per_class.get(class_id, 0) + 1
        self._per_class[class_id] = number
        class_name = CLASSES[class_id]
        name = "SAYMON" if parent is None else f"{class_name} {number}"
        last_update = self.now - rng.randrange(60_000, DAY_MS)
        obj = SimObject(
            id=self.new_id(),
            name=name,
            parent_id=[] if parent is None else [parent.id],
            class_id=class_id,
            state_id=STATE_WORKING,
            last_state_update=last_update,
            created=self.now - 30 * DAY_MS - rng.randrange(DAY_MS),
            updated=last_update,
            client_data=json.dumps({"icon": class_name.lower()}),
        )
        if rng.random() < 0.3:
            obj.tags.append(rng.choice(self.tag_ids))
        if class_id in _DEVICE_CLASSES:
            address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            obj.properties.append(
                {"id": self.new_id(), "name": "ip", "value": address, "type_id": 1}
            )
            self.devices.append(obj.id)
        elif class_id == CLASS_SITE:
            obj.properties.append(
                {"id": self.new_id(), "name": "location", "value": f"City {number}", "type_id": 1}
            )
        if parent is not None:
            parent.child_ids.append(obj.id)
        self.objects[obj.id] = obj
        return obj

    def build(self, count: int) -> SimObject:
        fanout = max(2, math.ceil(count ** (1 / 4)))
        root = self.make(0, None)
        queue: deque[tuple[SimObject, int]] = deque([(root, 0)])
        created = 1
        while created < count:
            parent, depth = queue.popleft()
            for _ in range(fanout):
                if created >= count:
                    break
                queue.append((self.make(depth + 1, parent), depth + 1))
                created += 1
        return root

    def trouble(self, root_id: str) -> None:
        """Put a few objects out of `Working`, the first always in Alarm."""
        candidates = [oid for oid in self.objects if oid != root_id]
        if not candidates:
            return
        chosen = self.rng.sample(candidates, max(1, len(candidates) // 15))
        for index, oid in enumerate(chosen):
            state = STATE_ALARM if index == 0 else self.rng.choice(_TROUBLE_STATES)
            self.objects[oid].state_id = state


def _links(builder: _TreeBuilder) -> dict[str, SimLink]:
    rng, objects, devices = builder.rng, builder.objects, builder.devices
    links: dict[str, SimLink] = {}
    for _ in range(min(len(devices) - 1, len(objects) // 10)):
        source, target = rng.sample(devices, 2)
        last_update = builder.now - rng.randrange(60_000, DAY_MS)
        link = SimLink(
            id=builder.new_id(),
            class_id=CLASS_LINK,
            source=source,
            target=target,
            source_name=objects[source].name,
            target_name=objects[target].name,
            state_id=STATE_ALARM if rng.random() < 0.1 else STATE_WORKING,
            last_state_update=last_update,
            created=builder.now - 30 * DAY_MS,
            updated=last_update,
        )
        links[link.id] = link
    return links


def generate_world(rng: random.Random, new_id: IdFactory, count: int, now: int) -> World:
    """Generate `count` objects (at least the root) and some links between devices."""
    tags = {new_id(): name for name in _TAG_NAMES}
    builder = _TreeBuilder(rng, new_id, now, list(tags))
    root = builder.build(max(1, count))
    builder.trouble(root.id)
    return World(root_id=root.id, objects=builder.objects, links=_links(builder), tags=tags)
