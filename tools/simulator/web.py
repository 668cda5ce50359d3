"""The simulator's stand-in for SAYMON's web interface: one page at ``/``.

Home Assistant's **Visit** link on a SAYMON device is ``<base url>/#objects/<id>``, as in the
real web interface. The fragment never reaches the server, so the page carries the objects it
can show (id, name, class, state, parents, children and active incidents) as JSON and a small
script renders the one the fragment names, and the whole tree when it names none. No external
resources, no dependencies: it works offline in any browser.

:func:`page_data` builds that JSON and :data:`RENDER_JS` renders it. The script's
``render(data, hash)`` is a pure function that returns HTML, so tests run it on a fetched page
with Node.js (:func:`render_with_node`) instead of a browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
import orjson

from .catalog import CLASSES, ENTITY_OBJECT
from .rest_support import core_of

if TYPE_CHECKING:
    from .model import SimulatorModel

RENDER_JS: Final = r"""
function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}
function link(data, id) {
  const obj = data.objects[id];
  return obj ? '<a href="#objects/' + esc(id) + '">' + esc(obj.name) + "</a>" : esc(id);
}
function render(data, hash) {
  const match = /^#objects\/(.+)$/.exec(hash || "");
  const id = match ? decodeURIComponent(match[1]) : data.root_id;
  const obj = data.objects[id];
  if (!obj) {
    return "<h1>No such object</h1><p>SAYMON has no object " + esc(id) + ". " +
      link(data, data.root_id) + "</p>";
  }
  const rows = [
    ["ID", "<code>" + esc(id) + "</code>"],
    ["Class", esc(obj.class)],
    ["State", '<span class="state">' + esc(obj.state) + "</span>"],
    ["Parents", obj.parents.map((p) => link(data, p)).join(", ") || "none"],
  ];
  let html = "<h1>" + esc(obj.name) + "</h1><table>" +
    rows.map((r) => "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>").join("") +
    "</table><h2>Active incidents</h2>";
  html += obj.incidents.length
    ? "<ul>" + obj.incidents.map((i) => "<li>" + esc(i.level) + ": " + esc(i.text) +
        " <code>" + esc(i.id) + "</code></li>").join("") + "</ul>"
    : "<p>None.</p>";
  html += "<h2>Children</h2>";
  html += obj.children.length
    ? "<ul>" + obj.children.map((c) => "<li>" + link(data, c) + "</li>").join("") + "</ul>"
    : "<p>None.</p>";
  return html;
}
"""

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SAYMON simulator</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 48em; padding: 1em; }}
header {{ color: #555; border-bottom: 1px solid #ccc; margin-bottom: 1em; }}
th {{ text-align: left; padding-right: 1em; }}
.state {{ font-weight: bold; }}
</style></head>
<body><header>SAYMON simulator: the objects Home Assistant's <b>Visit</b> links open</header>
<main id="object"><p>Loading...</p></main>
<script id="data" type="application/json">{data}</script>
<script>{script}
const data = JSON.parse(document.getElementById("data").textContent);
const show = () => {{
  document.getElementById("object").innerHTML = render(data, location.hash);
  document.title = document.querySelector("h1").textContent + " - SAYMON simulator";
}};
window.addEventListener("hashchange", show);
show();
</script></body></html>
"""


def page_data(model: SimulatorModel) -> dict[str, Any]:
    """Everything the page shows: each object with its names resolved, and the root's id."""
    states = {state_id: state["name"] for state_id, state in model.states.items()}
    levels = {level["id"]: level["name"] for level in model.incident_levels}
    incidents: dict[str, list[dict[str, Any]]] = {}
    for incident in model.incidents.active.values():
        if incident.entity_type == ENTITY_OBJECT:
            incidents.setdefault(incident.entity_id, []).append(
                {"id": incident.id, "level": levels.get(incident.state), "text": incident.text}
            )
    return {
        "root_id": model.root_id,
        "objects": {
            obj.id: {
                "name": obj.name,
                "class": CLASSES.get(obj.class_id, obj.class_id),
                "state": states.get(obj.state_id, str(obj.state_id)),
                "parents": list(obj.parent_id),
                "children": list(obj.child_ids),
                "incidents": incidents.get(obj.id, []),
            }
            for obj in model.objects.values()
        },
    }


def render_page(model: SimulatorModel) -> str:
    """The HTML page with the model's current objects embedded."""
    # "<" escaped: an object named "</script>" must not end the data block.
    data = orjson.dumps(page_data(model)).decode().replace("<", "\\u003c")
    return _PAGE.format(data=data, script=RENDER_JS)


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=render_page(core_of(request).model), content_type="text/html")


_DATA_BLOCK: Final = re.compile(r'<script id="data" type="application/json">(.*?)</script>', re.S)
_SCRIPT_BLOCK: Final = re.compile(r"<script>(.*?)</script>", re.S)


def render_with_node(page: str, fragment: str) -> str:
    """What a served page shows for ``location.hash == fragment``, rendered by Node.js."""
    node = shutil.which("node")
    data = _DATA_BLOCK.search(page)
    script = _SCRIPT_BLOCK.search(page)
    if node is None or data is None or script is None:
        raise RuntimeError("needs Node.js on PATH and a page served by the simulator")
    renderer = script.group(1).split("const data =", 1)[0]
    program = (
        f"{renderer}\nconst data = JSON.parse({json.dumps(data.group(1))});\n"
        f"process.stdout.write(render(data, {json.dumps(fragment)}));\n"
    )
    return subprocess.run(  # noqa: S603 - node running our own program
        [node, "-e", program], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def web_routes() -> list[web.RouteDef]:
    """``GET /``: the page behind Home Assistant's **Visit** links."""
    return [web.get("/", _index)]
