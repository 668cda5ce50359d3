"""The one-command demo behind ``scripts/develop``: SAYMON simulator, Mosquitto, Home Assistant.

It starts

* the SAYMON simulator (``tools/simulator``) with a tree of ``--objects`` objects that changes
  one to three object states every ``--tick`` seconds (opening, changing and closing
  incidents),
* a Mosquitto broker on 127.0.0.1,
* a real Home Assistant (:class:`~tests.e2e.hass_process.HassProcess`) on ``.dev/config`` with
  this repository's integration linked in, the frontend (``home-assistant-frontend``,
  installed into the venv on first use at the version Home Assistant pins) and what a user's
  sidebar has besides: the recorder with History and Logbook (:data:`DEMO_PACKAGES`),

onboards Home Assistant with a demo user, adds SAYMON through the config-flow REST API, turns
the MQTT mirror on (dedicated broker: the Mosquitto above), prints where to look, and runs
until Ctrl-C, which stops everything it started. The ports are remembered in
``.dev/develop.json``, so a second run reuses the onboarded configuration and its SAYMON entry
(the simulator's seeded user id and address stay the same).

A SAYMON device's **Visit** link opens the simulator's own page for that object
(``tools/simulator/web.py``). ``tests/e2e/test_develop.py`` starts this configuration (with a
placeholder frontend) and checks both.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import importlib.util
import json
import logging
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Final

import aiohttp

from custom_components.saymon.mqtt.topics import default_base
from tools.mosquitto import MosquittoBroker
from tools.simulator import SaymonSimulator

from .hass_process import (
    LOCALHOST,
    REPO_ROOT,
    FrontendMode,
    HassClient,
    HassError,
    HassProcess,
    Owner,
    free_port,
    onboard,
)
from .saymon_flows import add_saymon_entry, enable_mqtt_mirror, saymon_entries

DEV_DIR = REPO_ROOT / ".dev"
STATE_FILE = DEV_DIR / "develop.json"
DEMO_OWNER = Owner("Demo", "demo", "saymon-demo")
DEFAULT_PORTS = {"hass": 8123, "rest": 8080, "comet": 8091, "mqtt": 1883}
ONBOARDING_EXTRAS = ("google_translate", "met", "radio_browser")
"""Integrations onboarding offers; their packages are not installed, so their entries fail."""
DEMO_PACKAGES: Final = {
    "saymon_demo": """\
# Written by tests/e2e/develop.py: what default_config would add for History and Logbook
# (default_config itself pulls packages the venv lacks).
recorder:
  commit_interval: 1
  purge_keep_days: 3
history:
logbook:
"""
}
"""Home Assistant packages of the demo: the recorder, History and Logbook in the sidebar."""

_LOGGER = logging.getLogger("develop")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


def choose_ports(args: argparse.Namespace) -> dict[str, int]:
    """Ports from the command line, else from the last run, else the defaults (if free)."""
    saved: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        saved = {k: int(v) for k, v in json.loads(STATE_FILE.read_text())["ports"].items()}
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        given: int | None = getattr(args, f"{name}_port")
        port = given or saved.get(name) or default
        if not _port_free(port):
            if given or name in saved:
                raise SystemExit(f"error: port {port} ({name}) is in use")
            port = free_port()
        ports[name] = port
    return ports


def ensure_frontend(python: str) -> None:
    """Install ``home-assistant-frontend`` into the venv at Home Assistant's pin, if missing."""
    if importlib.util.find_spec("hass_frontend") is not None:
        return
    import homeassistant.components.frontend as frontend_component

    manifest = json.loads((Path(frontend_component.__file__).parent / "manifest.json").read_text())
    (requirement,) = [
        r for r in manifest["requirements"] if r.startswith("home-assistant-frontend")
    ]
    command = [python, "-m", "pip", "install", "--quiet", requirement]
    constraints = Path(python).resolve().parents[1] / "ha-package-constraints.txt"
    venv_constraints = Path(sys.prefix) / "ha-package-constraints.txt"
    for candidate in (venv_constraints, constraints):
        if candidate.exists():
            command += ["-c", str(candidate)]
            break
    print(f"Installing the Home Assistant frontend ({requirement}), once ...", flush=True)
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter and a pinned name


def demo_hass(
    config_dir: Path, *, port: int | None = None, frontend: FrontendMode = "package"
) -> HassProcess:
    """The demo's Home Assistant: this integration, the frontend, recorder, History, Logbook."""
    return HassProcess(config_dir, port=port, frontend=frontend, packages=DEMO_PACKAGES)


async def saymon_entry(client: HassClient, sim: SaymonSimulator) -> str:
    """The demo's SAYMON entry: the one a previous run added, else one added now."""
    entries = await saymon_entries(client)
    if entries:
        print(f"Reusing the SAYMON entry {entries[0]['title']} ({entries[0]['state']}).")
        return str(entries[0]["entry_id"])
    entry = await add_saymon_entry(
        client,
        url=sim.rest_url,
        comet=str(sim.comet_port),
        username=sim.login,
        password=sim.password,
    )
    print(f"Added SAYMON ({entry['title']}) through the config flow.")
    return str(entry["entry_id"])


async def remove_failed_onboarding_entries(client: HassClient) -> None:
    """Drop entries onboarding created for integrations whose packages are not installed."""
    entries: list[dict[str, Any]] = await client.get("/api/config/config_entries/entry")
    for entry in entries:
        if entry["domain"] in ONBOARDING_EXTRAS and entry["state"] != "loaded":
            await client.delete(f"/api/config/config_entries/entry/{entry['entry_id']}")


def banner(
    hass: HassProcess, sim: SaymonSimulator, broker: MosquittoBroker, base_topic: str
) -> str:
    """What to open, how to log in, and how to watch the MQTT mirror."""
    return "\n".join(
        [
            "",
            "=" * 78,
            f"Home Assistant:   {hass.url}",
            f"  log in as:      {DEMO_OWNER.username} / {DEMO_OWNER.password}",
            f"  its log:        {hass.output_file}",
            f"SAYMON simulator: {sim.rest_url} (Comet {sim.comet_url}), "
            f"{len(sim.model.objects)} objects, user {sim.login} / {sim.password}",
            f"  web page:       {sim.rest_url}/ (what a device's Visit link opens)",
            f"  control API:    {sim.control_url}/info",
            f"MQTT mirror:      mosquitto_sub -h {broker.host} -p {broker.port} "
            f"-t '{base_topic.partition('/')[0]}/#' -v",
            *(
                []
                if shutil.which("mosquitto_sub")
                else ["  (mosquitto_sub is in Debian's mosquitto-clients package)"]
            ),
            "History, Logbook: in the sidebar (recorder on, in .dev/config)",
            "Blueprints:       Settings > Automations & scenes > Blueprints (saymon/...)",
            "Press Ctrl-C to stop everything.",
            "=" * 78,
            "",
        ]
    )


async def run(args: argparse.Namespace) -> int:
    """Start everything, set it up, wait for Ctrl-C, stop everything."""
    ports = choose_ports(args)
    DEV_DIR.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps({"ports": ports}, indent=2) + "\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    sim = SaymonSimulator(
        objects=args.objects,
        seed=args.seed,
        rest_port=ports["rest"],
        comet_port=ports["comet"],
        tick=args.tick,
    )
    broker = MosquittoBroker(DEV_DIR / "mosquitto", port=ports["mqtt"])
    hass = demo_hass(DEV_DIR / "config", port=ports["hass"])
    async with contextlib.AsyncExitStack() as stack:
        await sim.start()
        stack.push_async_callback(sim.stop)
        await broker.start()
        stack.push_async_callback(broker.stop)
        print(f"Starting Home Assistant on {hass.url} (config: {hass.config_dir}) ...", flush=True)
        started = time.monotonic()
        stack.push_async_callback(hass.stop)
        await hass.start(timeout=180)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        token = await onboard(session, hass.url, DEMO_OWNER)
        client = HassClient(session, hass.url, token)
        await client.wait_running(timeout=180)
        print(f"Home Assistant is running ({time.monotonic() - started:.1f} s).", flush=True)

        base_topic = default_base(LOCALHOST)
        entry_id = await saymon_entry(client, sim)
        await enable_mqtt_mirror(
            client, entry_id, host=broker.host, port=broker.port, base_topic=base_topic
        )
        print("MQTT mirror on (dedicated broker).")
        await remove_failed_onboarding_entries(client)
        print(banner(hass, sim, broker, base_topic), flush=True)

        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if not hass.running:
                print(f"Home Assistant exited:\n{hass.log_tail(40)}", file=sys.stderr)
                return 1
        print("\nStopping Home Assistant, Mosquitto and the simulator ...", flush=True)
    print("Stopped.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=40, help="SAYMON objects (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--tick", type=float, default=5.0, help="seconds between random changes (default 5)"
    )
    for name, default in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}-port", type=int, default=None, help=f"default {default}, then remembered"
        )
    parser.add_argument("--quiet", action="store_true", help="do not log simulator changes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("aiohttp.access", "socketio", "engineio", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.quiet:
        logging.getLogger("tools.simulator").setLevel(logging.WARNING)
    ensure_frontend(sys.executable)
    try:
        return asyncio.run(run(args))
    except HassError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
