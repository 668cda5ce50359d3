"""Measurement 6 (model part): the model's memory per object, with tracemalloc.

The simulator serves ``objects`` objects; the integration's own REST client reads the same
picture the hub reads at setup (objects with the hub's fields, states, levels, classes,
active incidents) and builds :class:`SaymonModel` from it, all while tracemalloc traces. What
the model still holds afterwards (transient JSON and buffers are freed), divided by the
number of objects, is the figure. The process's RSS growth per object in scope comes from
the start-up measurement, which sets a whole entry up in a fresh process.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import aiohttp

from custom_components.saymon.api.live import OBJECT_FIELDS
from custom_components.saymon.api.model import SaymonModel, Snapshot, index_by_id
from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from tools.simulator import SaymonSimulator

from .report import Figure

TARGET_BYTES = 2048.0


async def _snapshot(rest: SaymonRestClient) -> Snapshot:
    """What the hub reads at setup (links aside: scope without links)."""
    await rest.ensure_session()
    return Snapshot(
        objects=index_by_id(await rest.objects(fields=OBJECT_FIELDS)),
        links={},
        states=index_by_id(await rest.states()),
        levels=index_by_id(await rest.incident_levels()),
        classes=index_by_id(await rest.classes()),
        incidents=index_by_id(await rest.incidents()),
    )


async def run(params: dict[str, Any]) -> list[Figure]:
    """One size; ``params``: objects, scale."""
    objects = int(params.get("objects", 2000))
    scale = str(params.get("scale", "1x"))
    async with (
        SaymonSimulator(objects=objects) as sim,
        aiohttp.ClientSession() as session,
    ):
        rest = SaymonRestClient(session, sim.rest_url, PasswordCredentials(sim.login, sim.password))
        await _snapshot(rest)  # warm-up: imports, connection, session
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        model = SaymonModel.from_snapshot(await _snapshot(rest))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        count = len(model.objects)
        incidents = len(model.incidents)
        await rest.logout()
    return [
        Figure(
            "6",
            "model memory per object (tracemalloc)",
            held / count,
            "bytes",
            op="le",
            limit=TARGET_BYTES,
            scale=scale,
            note=f"{held / 1024:,.0f} KiB for {count:,} objects and {incidents:,} incidents",
        )
    ]
