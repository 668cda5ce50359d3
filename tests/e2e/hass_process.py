"""A real Home Assistant process on loopback, onboarded, with small REST and websocket clients.

Used by the end-to-end test (``tests/e2e/test_e2e.py``), the demo (``scripts/develop``) and the
chaos suite, which restarts Home Assistant in the middle of a fault. It has no pytest
dependency, so plain scripts can use it.

Process
    :class:`HassProcess` runs ``<python> -m homeassistant -c <config dir> --skip-pip`` on a free
    ``127.0.0.1`` port (or the one given). ``<python>`` defaults to :data:`sys.executable`, the
    interpreter running this code: ``.venv/bin/python`` on the host leg (Home Assistant
    2025.4), ``/opt/saymon-venv/bin/python`` inside the Debian forky root of
    ``scripts/test-current-ha`` (Home Assistant 2026.x), so each leg starts its own Home
    Assistant. The child runs in its own session (a Ctrl-C in the terminal reaches only the
    parent, which stops it in order) with the config folder as working directory.

    :meth:`HassProcess.prepare` writes a minimal ``configuration.yaml`` (``http`` bound to
    127.0.0.1, ``api``, ``websocket_api``, ``config``, ``onboarding``, ``frontend``,
    ``automation``, ``script``, ``blueprint``, ``logger`` - never ``default_config``, which
    pulls packages the test venvs lack; Home Assistant adds its always-on integrations such
    as ``input_boolean``, ``input_button`` and ``person`` itself),
    links this repository's ``custom_components/saymon`` into ``<config>/custom_components``
    and copies ``blueprints/automation/saymon``. Home Assistant goes into recovery mode when
    its frontend does not load, so without the ``home-assistant-frontend`` package
    (``frontend="stub"``, the default) the frontend is pointed at a tiny placeholder folder
    through its documented ``development_repo`` option; the REST and websocket APIs are the
    real ones either way. ``frontend="package"`` uses the installed package (the demo).
    ``packages`` maps names to YAML written as ``<config>/packages/<name>.yaml`` (Home
    Assistant packages: e.g. an ``input_boolean`` and a ``template`` light).

    :meth:`HassProcess.start` spawns and returns once the HTTP API answers;
    :meth:`HassProcess.stop` sends SIGTERM and waits (SIGKILL after ``timeout``);
    :meth:`HassProcess.kill` sends SIGKILL at once (a crash);
    :meth:`HassProcess.restart` is stop + start on the same folder and port. stdout and
    stderr go to :attr:`HassProcess.output_file`; :meth:`HassProcess.log_tail` returns its end
    for failure messages, and every :class:`HassError` carries it.

Onboarding and tokens
    :func:`onboard` creates the owner through ``/api/onboarding/users``, exchanges the auth code
    at ``/auth/token`` and finishes the remaining onboarding steps; on an already onboarded
    config it logs in with the same credentials through ``/auth/login_flow`` instead. Both
    return an access token (valid 30 minutes, and across restarts of the same config).
    (Finishing the ``core_config`` step makes Home Assistant start the flows it offers new
    users - met, radio_browser, google_translate, shopping_list; without their packages they
    only log an import error.)

Clients (the caller owns the ``aiohttp.ClientSession``)
    :class:`HassClient`: REST (``get``/``post``/``delete``, ``call_service``, ``states``,
    ``wait_running``). :class:`HassWebSocket`: ``/api/websocket`` with ``command`` and
    ``subscribe_events`` (events are collected in a :class:`Subscription`); ``close()`` ends
    its reader task.

Typical use::

    hass = HassProcess(config_dir)
    await hass.start()
    async with aiohttp.ClientSession() as session:
        token = await onboard(session, hass.url, Owner("Demo", "demo", "demo"))
        client = HassClient(session, hass.url, token)
        await client.wait_running()
        ws = await HassWebSocket.connect(session, hass.url, token)
        ...
        await ws.close()
    await hass.stop()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import time
from typing import IO, Any, Literal

import aiohttp

LOCALHOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
INTEGRATION_DIR = REPO_ROOT / "custom_components" / "saymon"
BLUEPRINT_DIR = REPO_ROOT / "blueprints" / "automation" / "saymon"
FrontendMode = Literal["stub", "package"]


class HassError(RuntimeError):
    """Home Assistant did not start, stop or answer as expected (message ends with its log)."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Owner:
    """The owner user created at onboarding (and used to log in later)."""

    name: str
    username: str
    password: str
    language: str = "en"


def _base_yaml(port: int, frontend: str, log_level: str) -> str:
    return f"""\
# Written by tests/e2e/hass_process.py; rewritten on every start.
homeassistant:
  name: SAYMON demo
  unit_system: metric
  time_zone: UTC
  country: DE
  currency: EUR
  latitude: 52.52
  longitude: 13.40
  elevation: 34
  internal_url: http://{LOCALHOST}:{port}
  packages: !include_dir_named packages
http:
  server_host: {LOCALHOST}
  server_port: {port}
{frontend}
api:
config:
websocket_api:
onboarding:
automation: !include automations.yaml
script: !include scripts.yaml
blueprint:
logger:
  default: warning
  logs:
    custom_components.saymon: {log_level}
"""


class HassProcess:
    """One Home Assistant process on one config folder; start, stop and restart it."""

    def __init__(
        self,
        config_dir: Path,
        *,
        port: int | None = None,
        python: str | None = None,
        frontend: FrontendMode = "stub",
        packages: Mapping[str, str] | None = None,
        saymon_log_level: str = "info",
        blueprints: bool = True,
    ) -> None:
        """Nothing is written or started before :meth:`start` (or :meth:`prepare`)."""
        self.config_dir = config_dir.resolve()
        self.port = port or free_port()
        self.python = python or sys.executable
        self.frontend = frontend
        self.packages = dict(packages or {})
        self.saymon_log_level = saymon_log_level
        self.blueprints = blueprints
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def output_file(self) -> Path:
        """Where the process's stdout and stderr go (Home Assistant logs to stderr)."""
        return self.config_dir / "hass-output.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last process (None while running or never started)."""
        return None if self._process is None else self._process.returncode

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines Home Assistant wrote (stdout and stderr)."""
        try:
            text = self.output_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def _error(self, message: str) -> HassError:
        return HassError(
            f"{message}\n--- Home Assistant output ({self.output_file}) ---\n{self.log_tail()}"
        )

    # -- config folder ------------------------------------------------------------------

    def prepare(self) -> None:
        """Write the configuration, link the integration and copy the blueprints."""
        config = self.config_dir
        config.mkdir(parents=True, exist_ok=True)
        if self.frontend == "stub":
            stub = config / ".frontend-stub" / "hass_frontend"
            for sub in ("static", "frontend_latest", "frontend_es5"):
                (stub / sub).mkdir(parents=True, exist_ok=True)
            for page in ("index.html", "authorize.html", "onboarding.html"):
                (stub / page).write_text(
                    "<!doctype html><title>Home Assistant</title>"
                    "<p>Frontend not installed in this test harness; use the APIs.</p>\n"
                )
            frontend = f"frontend:\n  development_repo: {stub.parent}"
        else:
            frontend = "frontend:"
        (config / "configuration.yaml").write_text(
            _base_yaml(self.port, frontend, self.saymon_log_level)
        )
        packages = config / "packages"
        packages.mkdir(exist_ok=True)
        for name, text in self.packages.items():
            (packages / f"{name}.yaml").write_text(text)
        for name, empty in (("automations.yaml", "[]\n"), ("scripts.yaml", "{}\n")):
            if not (config / name).exists():
                (config / name).write_text(empty)
        components = config / "custom_components"
        components.mkdir(exist_ok=True)
        link = components / "saymon"
        if link.is_symlink() and link.resolve() != INTEGRATION_DIR:
            link.unlink()  # a checkout moved (or the other test leg's path)
        elif link.exists() and not link.is_symlink():
            raise HassError(f"{link} exists and is not our symlink; remove it")
        if not link.is_symlink():
            link.symlink_to(INTEGRATION_DIR, target_is_directory=True)
        if self.blueprints and BLUEPRINT_DIR.is_dir():
            target = config / "blueprints" / "automation" / "saymon"
            target.mkdir(parents=True, exist_ok=True)
            for blueprint in BLUEPRINT_DIR.glob("*.yaml"):
                shutil.copyfile(blueprint, target / blueprint.name)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, timeout: float = 90.0) -> None:
        """Prepare the folder, spawn Home Assistant and wait until its HTTP API answers.

        "Answers" means ``GET /auth/providers`` returns 200 (onboarded) or 400 (onboarding
        required); integrations may still be loading - :meth:`HassClient.wait_running` waits
        for those.
        """
        if self.running:
            return
        self.prepare()
        self._output = self.output_file.open("ab")
        self._output.write(f"\n===== start {self.starts + 1} on port {self.port} =====\n".encode())
        self._output.flush()
        # No coverage in the child: pytest-cov's subprocess hook would start it there with
        # other settings (no branch data, another working folder), and combining the two
        # fails the whole run. The integration's coverage comes from the in-process tests.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("COV_CORE_", "COVERAGE_"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        self._process = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "homeassistant",
            "-c",
            str(self.config_dir),
            "--skip-pip",
            cwd=self.config_dir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        try:
            await self._wait_http(timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_http(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = f"{self.url}/auth/providers"
        async with aiohttp.ClientSession() as session:
            while True:
                if not self.running:
                    raise self._error(f"Home Assistant exited with status {self.returncode}")
                if time.monotonic() > deadline:
                    raise self._error(f"Home Assistant did not answer on {probe} in {timeout} s")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(
                        probe, timeout=aiohttp.ClientTimeout(total=2)
                    ) as response:
                        if response.status in {200, 400}:
                            return
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit status."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._reap()
        return process.returncode

    async def kill(self) -> int | None:
        """SIGKILL, as in a crash (no stop event, no clean disconnect); returns the exit status."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self._reap()
        return process.returncode

    def _reap(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    async def restart(self, timeout: float = 90.0) -> None:
        """Stop and start again on the same folder and port."""
        await self.stop()
        await self.start(timeout)


# -- auth ---------------------------------------------------------------------------------


def _client_id(url: str) -> str:
    return f"{url}/"


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    if response.status >= 400:
        raise HassError(f"{what}: HTTP {response.status}: {await response.text()}")
    return await response.json()


async def _exchange_code(session: aiohttp.ClientSession, url: str, code: str) -> str:
    async with session.post(
        f"{url}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": _client_id(url)},
    ) as response:
        tokens = await _json(response, "POST /auth/token")
    return str(tokens["access_token"])


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    """Log in through the login flow (as the frontend does); returns an access token."""
    client_id = _client_id(url)
    async with session.post(
        f"{url}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{client_id}?auth_callback=1",
        },
    ) as response:
        flow = await _json(response, "POST /auth/login_flow")
    async with session.post(
        f"{url}/auth/login_flow/{flow['flow_id']}",
        json={"username": username, "password": password, "client_id": client_id},
    ) as response:
        result = await _json(response, "POST /auth/login_flow/<flow>")
    if result.get("type") != "create_entry":
        raise HassError(f"login as {username} failed: {result.get('errors')}")
    return await _exchange_code(session, url, str(result["result"]))


async def _onboarding_steps(
    session: aiohttp.ClientSession, url: str, *, wait: bool, timeout: float = 30.0
) -> dict[str, bool]:
    """Which onboarding steps are done. A finished onboarding unregisters the view (404).

    With ``wait`` (the owner does not exist yet, so onboarding cannot be finished) a 404 only
    means the onboarding integration is still loading.
    """
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(f"{url}/api/onboarding") as response:
            if response.status == 200:
                return {step["step"]: step["done"] for step in await response.json()}
            if response.status != 404 or not wait or time.monotonic() > deadline:
                if response.status == 404 and not wait:
                    return {}  # all done
                raise HassError(f"GET /api/onboarding: HTTP {response.status}")
        await asyncio.sleep(0.1)


async def onboard(session: aiohttp.ClientSession, url: str, owner: Owner) -> str:
    """Onboard a fresh Home Assistant with ``owner`` (or log in if it was onboarded before).

    Finishes whatever onboarding steps are left (a run interrupted half-way is completed).
    Returns an access token of the owner.
    """
    async with session.get(f"{url}/auth/providers") as response:
        user_exists = response.status == 200
    steps = await _onboarding_steps(session, url, wait=not user_exists)
    if user_exists:
        token = await login(session, url, owner.username, owner.password)
    else:
        async with session.post(
            f"{url}/api/onboarding/users",
            json={
                "client_id": _client_id(url),
                "name": owner.name,
                "username": owner.username,
                "password": owner.password,
                "language": owner.language,
            },
        ) as response:
            created = await _json(response, "POST /api/onboarding/users")
        token = await _exchange_code(session, url, str(created["auth_code"]))
    headers = {"Authorization": f"Bearer {token}"}
    remaining: list[tuple[str, dict[str, Any]]] = [
        ("core_config", {}),
        ("analytics", {}),
        (
            "integration",
            {"client_id": _client_id(url), "redirect_uri": f"{_client_id(url)}?auth_callback=1"},
        ),
    ]
    for step, body in remaining:
        if not steps or steps.get(step):
            continue  # (no steps listed: onboarding is complete)
        async with session.post(
            f"{url}/api/onboarding/{step}", json=body, headers=headers
        ) as response:
            await _json(response, f"POST /api/onboarding/{step}")
    return token


# -- REST -----------------------------------------------------------------------------------


class HassClient:
    """Home Assistant's REST API with a bearer token (the caller owns the session)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        """Keep the session, base URL and token."""
        self.session = session
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"}

    async def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 30.0
    ) -> Any:
        """Send ``body`` as JSON to ``path``; return the decoded answer or raise HassError."""
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status >= 400:
                raise HassError(f"{method} {path}: HTTP {response.status}: {await response.text()}")
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()

    async def get(self, path: str) -> Any:
        """GET ``path``."""
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None) -> Any:
        """POST ``body`` to ``path``."""
        return await self.request("POST", path, {} if body is None else body)

    async def delete(self, path: str) -> Any:
        """DELETE ``path``."""
        return await self.request("DELETE", path)

    async def call_service(
        self,
        domain: str,
        service: str,
        data: Mapping[str, Any] | None = None,
        *,
        return_response: bool = False,
    ) -> Any:
        """Call an action (``POST /api/services/<domain>/<service>``)."""
        suffix = "?return_response" if return_response else ""
        return await self.post(f"/api/services/{domain}/{service}{suffix}", dict(data or {}))

    async def states(self) -> list[dict[str, Any]]:
        """All entity states."""
        result: list[dict[str, Any]] = await self.get("/api/states")
        return result

    async def wait_running(self, timeout: float = 90.0) -> None:
        """Wait until Home Assistant has finished starting (``/api/config`` state RUNNING)."""
        deadline = time.monotonic() + timeout
        state = None
        while True:
            with contextlib.suppress(HassError, aiohttp.ClientError, OSError, TimeoutError):
                state = (await self.request("GET", "/api/config", timeout=5))["state"]
                if state == "RUNNING":
                    return
            if time.monotonic() > deadline:
                raise HassError(f"Home Assistant not running after {timeout} s (state {state})")
            await asyncio.sleep(0.1)


# -- websocket ------------------------------------------------------------------------------


@dataclass
class Subscription:
    """Events of one ``subscribe_events`` subscription, in the order they arrived."""

    id: int
    event_type: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    listener: Callable[[dict[str, Any]], None] | None = None

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The ``data`` of every event of ``event_type``."""
        return [event["data"] for event in self.events if event["event_type"] == event_type]


async def _authenticate(ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
    hello = await ws.receive_json(timeout=10)
    if hello.get("type") != "auth_required":
        raise HassError(f"unexpected websocket greeting: {hello}")
    await ws.send_json({"type": "auth", "access_token": token})
    answer = await ws.receive_json(timeout=10)
    if answer.get("type") != "auth_ok":
        raise HassError(f"websocket authentication failed: {answer}")


class HassWebSocket:
    """A ``/api/websocket`` connection: commands with results and event subscriptions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Use :meth:`connect`."""
        self._ws = ws
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._reader = asyncio.create_task(self._read(), name="hass websocket reader")

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, token: str) -> HassWebSocket:
        """Connect and authenticate."""
        ws = await session.ws_connect(f"{url}/api/websocket", max_msg_size=64 * 1024 * 1024)
        try:
            await _authenticate(ws, token)
        except BaseException:
            await ws.close()
            raise
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                payload = message.json()
                for item in payload if isinstance(payload, list) else [payload]:
                    self._dispatch(item)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(HassError("websocket closed"))
            self._pending.clear()

    def _dispatch(self, item: dict[str, Any]) -> None:
        if item.get("type") == "event":
            subscription = self._subscriptions.get(item["id"])
            if subscription is not None:
                event = item["event"]
                subscription.events.append(event)
                if subscription.listener is not None:
                    subscription.listener(event)
            return
        future = self._pending.pop(item.get("id", -1), None)
        if future is None or future.done():
            return
        if item.get("success", True):
            future.set_result(item.get("result"))
        else:
            future.set_exception(HassError(f"websocket command failed: {item.get('error')}"))

    async def command(self, command_type: str, timeout: float = 30.0, **fields: Any) -> Any:
        """Send one command and return its ``result`` (HassError on failure)."""
        message_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        if self._reader.done():
            raise HassError("websocket closed")
        await self._ws.send_json({"id": message_id, "type": command_type, **fields})
        async with asyncio.timeout(timeout):
            return await future

    async def subscribe_events(
        self,
        event_type: str | None = None,
        listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> Subscription:
        """Subscribe to one event type (None: all events); events collect in the result."""
        subscription = Subscription(self._next_id, event_type, listener=listener)
        self._subscriptions[subscription.id] = subscription
        fields: dict[str, Any] = {} if event_type is None else {"event_type": event_type}
        await self.command("subscribe_events", **fields)
        return subscription

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._reader.done()

    async def close(self) -> None:
        """Close the connection and end the reader task."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
