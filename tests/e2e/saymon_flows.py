"""SAYMON's config and options flows driven through Home Assistant's REST API, as the UI does.

Shared by the end-to-end test and ``scripts/develop``: every step posts exactly what the
frontend would post for the forms in ``custom_components/saymon/strings.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from .hass_process import HassClient, HassError

FLOW = "/api/config/config_entries/flow"
OPTIONS_FLOW = "/api/config/config_entries/options/flow"


def _expect(result: dict[str, Any], kind: str, step: str | None = None) -> dict[str, Any]:
    """Check a flow answer's type (and step); the error names what came instead."""
    if result.get("type") != kind or (step is not None and result.get("step_id") != step):
        raise HassError(
            f"expected {kind} {step or ''}, got {result.get('type')} {result.get('step_id')}: "
            f"errors={result.get('errors')} reason={result.get('reason')}"
        )
    return result


async def add_saymon_entry(
    client: HassClient,
    *,
    url: str,
    comet: str,
    username: str,
    password: str,
    scope: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add SAYMON: address form, credentials menu (password), scope steps; returns the entry.

    ``scope`` is the choice: ``{"scope": "all"}`` (the default) or the selection form's answer
    (``parents``/``tags``/``classes``), plus ``links``; the confirmation step creates it.
    """
    result = await client.post(FLOW, {"handler": "saymon", "show_advanced_options": False})
    flow_id = _expect(result, "form", "user")["flow_id"]
    step = f"{FLOW}/{flow_id}"
    result = await client.post(step, {"url": url, "comet": comet, "verify_ssl": True})
    menu = _expect(result, "menu", "auth")
    if "password" not in menu["menu_options"]:
        raise HassError(f"no password option in {menu['menu_options']}")
    _expect(await client.post(step, {"next_step_id": "password"}), "form", "password")
    result = await client.post(step, {"username": username, "password": password})
    _expect(result, "menu", "scope")
    choice = dict(scope or {"scope": "all"})
    links = bool(choice.pop("links", False))
    if choice.pop("scope", "selected") == "all":
        result = await client.post(step, {"next_step_id": "scope_all"})
    else:
        _expect(await client.post(step, {"next_step_id": "scope_select"}), "form", "scope_select")
        result = await client.post(step, choice)
    _expect(result, "menu", "scope_confirm")
    create = "scope_create_links" if links else "scope_create"
    result = await client.post(step, {"next_step_id": create})
    entry: dict[str, Any] = _expect(result, "create_entry")["result"]
    return entry


async def enable_mqtt_mirror(
    client: HassClient,
    entry_id: str,
    *,
    host: str,
    port: int,
    base_topic: str,
    qos: int = 1,
    discovery_prefix: str | None = None,
) -> dict[str, Any]:
    """Options -> MQTT mirror -> dedicated broker (plain TCP, MQTT 3.1.1); returns the options.

    With ``discovery_prefix``, Home Assistant MQTT discovery is turned on under that prefix.
    """
    result = await client.post(OPTIONS_FLOW, {"handler": entry_id})
    flow_id = _expect(result, "menu", "init")["flow_id"]
    step = f"{OPTIONS_FLOW}/{flow_id}"
    _expect(await client.post(step, {"next_step_id": "mqtt"}), "form", "mqtt")
    result = await client.post(
        step,
        {
            "mqtt_mode": "broker",
            "mqtt_base_topic": base_topic,
            "mqtt_qos": str(qos),
            "mqtt_retain": True,
            "mqtt_queue_size": 100_000,
            **(
                {}
                if discovery_prefix is None
                else {"mqtt_discovery": True, "mqtt_discovery_prefix": discovery_prefix}
            ),
        },
    )
    _expect(result, "form", "mqtt_broker")
    result = await client.post(
        step,
        {
            "mqtt_host": host,
            "mqtt_port": port,
            "mqtt_tls": False,
            "mqtt_verify": True,
            "mqtt_protocol": "3.1.1",
        },
    )
    options: dict[str, Any] = _expect(result, "create_entry").get("data") or {}
    return options


async def saymon_entries(client: HassClient) -> list[dict[str, Any]]:
    """The SAYMON config entries (entry_id, state, title, ...)."""
    entries: list[dict[str, Any]] = await client.get(
        "/api/config/config_entries/entry?domain=saymon"
    )
    return entries


async def wait_settled(client: HassClient, entry_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the entry is loaded, connected to Comet and done with its first resync.

    Read from the entry's diagnostics (``/api/diagnostics/config_entry/<id>``, what *Download
    diagnostics* returns). Until the first resync has read SAYMON after subscribing, a change
    made in SAYMON may reach Home Assistant only with the next event. Returns the diagnostics.
    """
    deadline = time.monotonic() + timeout
    hub: dict[str, Any] = {}
    while True:
        states = {e["entry_id"]: e["state"] for e in await saymon_entries(client)}
        if states.get(entry_id) == "loaded":
            with contextlib.suppress(HassError):  # not loaded again yet (a reload in progress)
                diagnostics = await client.get(f"/api/diagnostics/config_entry/{entry_id}")
                data: dict[str, Any] = diagnostics["data"]
                hub = data["hub"]
                if hub["connected"] and hub["resyncs"] >= 1:
                    return data
        if time.monotonic() > deadline:
            raise HassError(f"entry {entry_id} not settled after {timeout} s: {states} {hub}")
        await asyncio.sleep(0.05)
