"""The mirror's stat topics: each followed object's latest metrics, retained, validated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.api import stat
from custom_components.saymon.hub import SaymonHub
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import ENTITY_OBJECT, SaymonSimulator

from .test_mirror import BASE, latest, mirror, start

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    from tests.integration.common import serving

    async with serving(hass, SaymonSimulator(objects=30, seed=21)) as sim:
        yield sim


def truth(sim: SaymonSimulator, object_id: str) -> dict[str, Any]:
    return stat.flatten(sim.model.last_stat[(ENTITY_OBJECT, object_id)]["payload"])


async def test_latest_metrics_of_followed_objects_are_retained(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    hub: SaymonHub = await start(hass, simulator, broker)
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    followed = sorted(hub.metrics.subscriptions.followed)
    assert followed
    subscriber = Subscriber(broker.port, f"{BASE}/#")  # late: it sees what is retained
    await subscriber.start()
    try:

        def topics() -> set[str]:
            return {m.topic for m in subscriber.messages if m.topic.endswith("/stat")}

        await subscriber.wait_for(lambda: len(topics()) == len(followed))
        assert topics() == {f"{BASE}/objects/{o}/stat" for o in followed}
        first = followed[0]
        payload = latest(subscriber, f"{BASE}/objects/{first}/stat")
        assert payload["metrics"] == truth(simulator, first)
        assert payload["name"] == simulator.model.objects[first].name
        assert payload["type"] == "object"
        assert payload["expired"] == []
        assert payload["task_type"] == simulator.model.probes.probes[ENTITY_OBJECT, first].kind
        await simulator.run_probes()
        await subscriber.wait_for(
            lambda: all(
                latest(subscriber, f"{BASE}/objects/{o}/stat")["metrics"] == truth(simulator, o)
                for o in followed
            )
        )
        await simulator.delete_object(first)
        await subscriber.wait_for(
            lambda: (
                [m.payload for m in subscriber.messages if m.topic.endswith(f"{first}/stat")][-1]
                == b""
            )
        )
        assert mirror(hub).stats.published >= 2 * len(followed)
    finally:
        await subscriber.close()
