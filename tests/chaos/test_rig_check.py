"""The chaos rig's retained check sees topics that should not exist, not only wrong values.

Before, it compared only the topics the truth names: a deleted object's state left retained on
the broker (its removal published without ``retain``) passed every fault.
"""

from __future__ import annotations

import asyncio

from paho.mqtt import publish
import pytest

from tools.simulator import CLASS_HOST

from .conftest import MakeRig
from .rig import BASE_TOPIC, wait_until

pytestmark = pytest.mark.chaos


async def test_retained_topics_of_deleted_objects_are_flagged(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=12)
    hub = await rig.start()
    sim = rig.sim
    doomed = await sim.create_object("Doomed host", sim.model.root_id, CLASS_HOST)
    await wait_until(lambda: doomed in hub.objects_in_scope, 10, "the new object")
    await sim.delete_object(doomed)
    await wait_until(lambda: doomed not in hub.model.objects, 10, "the deletion")
    assert rig.truth_diff() == []
    assert await rig.retained_diff(timeout=10) == []

    ghost = f"{BASE_TOPIC}/objects/ghost/state"
    await asyncio.to_thread(
        publish.single,
        ghost,
        b'{"state_id": "3"}',
        qos=1,
        retain=True,
        hostname="127.0.0.1",
        port=rig.broker.port,
    )
    assert await rig.retained_diff(timeout=1) == [f"retained {ghost} should not exist"]
    await asyncio.to_thread(
        publish.single, ghost, b"", qos=1, retain=True, hostname="127.0.0.1", port=rig.broker.port
    )
    assert await rig.retained_diff(timeout=10) == []
