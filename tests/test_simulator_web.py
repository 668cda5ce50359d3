"""The simulator's web page: what Home Assistant's **Visit** link on a SAYMON device opens.

The page is fetched over a real socket like a browser would; its script's ``render`` is run
by Node.js (the same binary the wire-compatibility tests use) on the page's own embedded data,
so the object the fragment names is really what the page shows.
"""

from __future__ import annotations

import aiohttp
import pytest

from tools.simulator import STATE_ALARM, SaymonSimulator
from tools.simulator.web import render_with_node as run_render


async def test_visit_link_opens_a_page_naming_the_object() -> None:
    async with SaymonSimulator(objects=12, seed=5) as sim:
        target = next(o for o in sim.model.objects.values() if o.id != sim.model.root_id)
        await sim.set_state(target.id, STATE_ALARM)
        incident = sim.model.incidents.open_for((1, target.id))
        assert incident is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sim.rest_url}/#objects/{target.id}") as response,
        ):
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
    assert "http://" not in page, "no external resources"
    assert "https://" not in page, "no external resources"
    shown = run_render(page, f"#objects/{target.id}")
    assert f"<h1>{target.name}</h1>" in shown
    assert "Alarm" in shown  # its state and its incident's level
    assert incident.text in shown
    parent = sim.model.objects[target.parent_id[0]]
    assert f'<a href="#objects/{parent.id}">{parent.name}</a>' in shown

    root = run_render(page, "")
    assert f"<h1>{sim.model.objects[sim.model.root_id].name}</h1>" in root
    assert "No such object" in run_render(page, "#objects/nope")


@pytest.mark.parametrize("name", ['</script><script>alert("x")</script>', "A & <b>B</b>"])
async def test_object_names_are_data_not_markup(name: str) -> None:
    async with SaymonSimulator(objects=3, seed=1) as sim:
        object_id = await sim.create_object(name, sim.model.root_id, "15")
        async with aiohttp.ClientSession() as session, session.get(sim.rest_url) as response:
            page = await response.text()
    assert name not in page  # embedded with "<" escaped: nothing ends the data block
    shown = run_render(page, f"#objects/{object_id}")
    assert "<script>" not in shown
    assert "<b>" not in shown
    assert "&#60;" in shown  # shown as text
