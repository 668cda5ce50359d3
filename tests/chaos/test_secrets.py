"""No secret anywhere: logs at debug level, diagnostics, MQTT payloads, exception texts.

Everything logs at DEBUG (the integration, python-socketio, python-engineio, aiohttp, paho,
Home Assistant) while the suite runs a setup with the MQTT mirror (broker with a password),
an event stream, a server-side session expiry, a login with the API token, changed
credentials with the reauth that follows, a diagnostics download and failing connections.
Then every log record (formatted, tracebacks included), the diagnostics, every MQTT message
and the text of every exception raised is searched for the password (old and new), the API
token, the broker password and every session id and csrf value the simulator issued, in
plain and URL-encoded spellings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import json
import logging
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.api.comet import CometClient, Subscription
from custom_components.saymon.api.errors import SaymonError
from custom_components.saymon.api.rest import (
    PasswordCredentials,
    SaymonRestClient,
    TokenCredentials,
)
from custom_components.saymon.api.url import comet_endpoint
from custom_components.saymon.const import AUTH_TOKEN, CONF_API_TOKEN, CONF_COMET, DOMAIN
from custom_components.saymon.diagnostics import async_get_config_entry_diagnostics
from tools.mosquitto import Subscriber, free_port
from tools.simulator.accounts import Session

from . import report
from .conftest import MakeRig
from .rig import wait_until

pytestmark = pytest.mark.chaos

PASSWORD = "S3cr3t p@ss/w&rd=?"
NEW_PASSWORD = "N3w-s3cr3t+p@ss#2"
API_TOKEN = "tok-9f1c7e55-2b4d-4e8a-a6f0-5c3d2e1b0a99"
BROKER = ("mirror", "mqtt-br0ker-s3cret")
LOGGERS = ("", "custom_components.saymon", "socketio", "engineio", "aiohttp", "paho")


class Everything(logging.Handler):
    """Keeps every record, formatted as a log file would show it (with tracebacks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def debug_logging() -> Iterator[Everything]:
    handler = Everything()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


async def test_no_secret_in_logs_diagnostics_mqtt_or_errors(
    hass: HomeAssistant, make_rig: MakeRig
) -> None:
    with debug_logging() as logs:
        rig = await make_rig(password=PASSWORD, api_token=API_TOKEN, broker_auth=BROKER)
        sim = rig.sim
        issued: list[Session] = []
        create = sim.accounts.create_session

        def recording(user: Any) -> Session:
            session = create(user)
            issued.append(session)
            return session

        sim.accounts.create_session = recording  # type: ignore[method-assign]
        mqtt = Subscriber(rig.broker.port, "#", auth=BROKER)
        await mqtt.start()
        errors: list[str] = []
        try:
            hub = await rig.start()
            await rig.storm(2.0, 60.0)
            # A session expired server-side, during the stream, then silently.
            await sim.expire_sessions(disconnect=True)
            await wait_until(lambda: hub.comet.stats.connects >= 2, 20, "Comet back")
            await sim.expire_sessions()
            await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
            # A login with the API token (the config flow proves it, then aborts: same user).
            flow = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_USER}
            )
            flow = await hass.config_entries.flow.async_configure(
                flow["flow_id"],
                {CONF_URL: sim.rest_url, CONF_COMET: str(sim.comet_port), CONF_VERIFY_SSL: True},
            )
            flow = await hass.config_entries.flow.async_configure(
                flow["flow_id"], {"next_step_id": AUTH_TOKEN}
            )
            flow = await hass.config_entries.flow.async_configure(
                flow["flow_id"], {CONF_API_TOKEN: API_TOKEN}
            )
            assert flow.get("reason") == "already_configured", flow
            # Credentials changed: reauth, with a wrong try first.
            sim.set_password(NEW_PASSWORD)
            await sim.expire_sessions(disconnect=True)
            await wait_until(
                lambda: any(
                    f["context"].get("source") == SOURCE_REAUTH
                    for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
                ),
                20,
                "a reauth flow",
            )
            [reauth] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            for password in (PASSWORD, NEW_PASSWORD):
                await hass.config_entries.flow.async_configure(
                    reauth["flow_id"], {CONF_USERNAME: sim.login, CONF_PASSWORD: password}
                )
            await rig.wait_reloaded(hub)
            assert rig.entry is not None
            diagnostics = json.dumps(
                await async_get_config_entry_diagnostics(hass, rig.entry), default=str
            )
            errors += await provoked_errors(sim.rest_url, sim.comet_port, issued[0].id)
            # Where a leak would show: a library record carrying the live session id goes
            # through the same logger and filter as python-engineio's connect line.
            live = rig.entry.runtime_data.hub.rest.session_id
            assert live is not None
            logging.getLogger("custom_components.saymon.api.comet.engineio").info(
                "probe: connecting to /socket.io/?sessionId=%s", quote(live, safe="")
            )
        finally:
            await mqtt.close()
            sim.accounts.create_session = create  # type: ignore[method-assign]

    secrets = {
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "API token": API_TOKEN,
        "broker password": BROKER[1],
    }
    for number, session in enumerate(issued):
        secrets[f"session id {number}"] = session.id
        secrets[f"csrf {number}"] = session.csrf
    assert len(issued) >= 4, "setup, reconnect, relogin, token login and reauth logins"
    payloads = [m.payload.decode(errors="replace") for m in mqtt.messages]
    haystacks = {"log": logs.lines, "diagnostics": [diagnostics], "MQTT": payloads, "error": errors}
    found = [
        f"{what} in {where}: {text[:200]!r}"
        for what, secret in secrets.items()
        for spelled in spellings(secret)
        for where, texts in haystacks.items()
        for text in texts
        if spelled in text
    ]
    assert not found, found[:10]
    assert len(logs.lines) > 500  # debug logging really was on
    assert any("engineio" in line for line in logs.lines)
    assert any("probe: connecting to /socket.io/?sessionId=***" in line for line in logs.lines)
    assert any("comet.engineio" in line for line in logs.lines)  # the library's own records
    report.record(
        "inputs",
        {
            "target": "secrets scan (debug logs, diagnostics, MQTT, exceptions)",
            "tried": sum(len(texts) for texts in haystacks.values()),
            "accepted": 0,
            "rejected": 0,
            "crashes": 0,
            "notes": f"{len(secrets)} secrets ({len(issued)} sessions) in "
            f"{len(logs.lines)} log records, {len(payloads)} MQTT messages, "
            f"{len(errors)} exception texts, the diagnostics: none found",
        },
    )


async def provoked_errors(rest_url: str, comet_port: int, old_session: str) -> list[str]:
    """Texts of the exceptions the client raises for refused logins and sessions."""
    texts: list[str] = []
    async with aiohttp.ClientSession() as session:
        for credentials in (
            PasswordCredentials("admin", PASSWORD),
            TokenCredentials(API_TOKEN + "x"),
        ):
            rest = SaymonRestClient(session, rest_url, credentials)
            texts += [repr(credentials), str(credentials)]
            try:
                await rest.login()
            except SaymonError as err:
                texts += [str(err), repr(err)]

        async def old(refresh: bool) -> str:
            return old_session

        for port in (comet_port, free_port()):
            comet = CometClient(
                session,
                comet_endpoint(rest_url, port),
                old,
                subscriptions=[Subscription("state-change")],
                connect_timeout=2.0,
            )
            try:
                await comet.check()
            except SaymonError as err:
                texts += [str(err), repr(err), str(err.__cause__), str(err.__context__)]
            await asyncio.sleep(0)
    return texts
