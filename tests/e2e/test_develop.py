"""The ``scripts/develop`` demo shows what a user will see: History, Logbook and **Visit**.

The demo's own Home Assistant configuration (:func:`tests.e2e.develop.demo_hass`) runs in a
real ``hass`` process (with the placeholder frontend: the APIs are the real ones) next to the
simulator; SAYMON is added through the config flow as the demo does. Then, as the sidebar and
a device page would: the History and Logbook APIs answer, and every object device's **Visit**
link (its ``configuration_url``) opens a page that shows that object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tools.simulator import SaymonSimulator
from tools.simulator.web import render_with_node

from .develop import DEMO_OWNER, demo_hass, saymon_entry
from .hass_process import HassClient, HassWebSocket, onboard
from .saymon_flows import wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_demo_has_history_logbook_and_visit_pages(tmp_path: Path) -> None:
    hass = demo_hass(tmp_path / "config", frontend="stub")
    async with SaymonSimulator(objects=8, seed=3) as sim, aiohttp.ClientSession() as session:
        try:
            await hass.start(timeout=180)
            token = await onboard(session, hass.url, DEMO_OWNER)
            client = HassClient(session, hass.url, token)
            await client.wait_running(timeout=180)
            entry_id = await saymon_entry(client, sim)
            await wait_settled(client, entry_id)

            ws = await HassWebSocket.connect(session, hass.url, token)
            try:
                devices: list[dict[str, Any]] = await ws.command("config/device_registry/list")
                entities: list[dict[str, Any]] = await ws.command("config/entity_registry/list")
            finally:
                await ws.close()
            sensor = next(
                e["entity_id"]
                for e in entities
                if e["platform"] == "saymon" and e["entity_id"].startswith("sensor.")
            )

            components = set((await client.get("/api/config"))["components"])
            assert {"recorder", "history", "logbook"} <= components
            # What the History and Logbook panels ask for; 404 without the integrations.
            [history] = await client.get(f"/api/history/period?filter_entity_id={sensor}")
            assert history[0]["entity_id"] == sensor
            assert isinstance(await client.get("/api/logbook"), list)
        except BaseException:
            print(f"--- Home Assistant output ---\n{hass.log_tail(120)}")
            raise
        finally:
            await hass.stop()

        objects = [d for d in devices if "#objects/" in (d.get("configuration_url") or "")]
        assert len(objects) == len(sim.model.objects)
        for device in objects:
            url: str = device["configuration_url"]
            async with session.get(url) as response:
                assert response.status == 200, url
                page = await response.text()
            object_id = url.rpartition("#objects/")[2]
            shown = render_with_node(page, f"#objects/{object_id}")
            assert f"<h1>{sim.model.objects[object_id].name}</h1>" in shown
            assert sim.model.objects[object_id].name == device["name"]
