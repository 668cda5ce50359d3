"""Import-time checks of the private library methods our clients override.

The Comet client replaces private methods of python-socketio and python-engineio (inline
dispatch instead of a task per message, guards against broken frames, the fast path; all in
``_socketio.py``), and the MQTT client overrides paho's socket read (``mqtt/connection.py``).
Private methods may change in any release the manifest allows, and an override of a method that
changed would break the connection or, worse, deliver a wrong event stream without a sign. So
each one is checked once, when the module is imported: that it exists, is (or is not) a
coroutine, takes the parameters it took when we wrote the override, and still refers to the
names the override relies on. When anything differs the caller does not install its overrides
and uses the library's public behaviour instead: slower, still correct. One warning in the log
says why, and diagnostics show it (:func:`diagnostics`).

``_binary_packet`` (python-socketio's packet waiting for its attachments) and
``Payload.max_decode_packets`` are attributes, not methods: they are checked on a client that is
constructed and never connected, and on the class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
import inspect
import logging
from typing import Any, Final

import engineio
from engineio.payload import Payload
import socketio
import socketio.base_client

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HookSpec:
    """What an overridden private method looked like when the override was written."""

    owner: type[Any]
    name: str
    params: tuple[str, ...] | None
    """Parameter names as :func:`inspect.signature` shows them (``*args``, ``**kwargs``);
    ``None`` for a method whose parameters do not matter to us (a constructor)."""
    is_async: bool
    uses: tuple[str, ...] = ()
    """Names its code must still refer to: attributes, methods, string constants."""


@dataclass(frozen=True, slots=True)
class HookReport:
    """Outcome of one library's checks: whether our overrides are installed, and if not, why."""

    name: str
    """What the overrides serve (``comet``, ``polling``, ``mqtt``)."""
    library: str
    """The distributions checked, as ``a / b``."""
    versions: str
    """Their installed versions, read at import (reading them is file I/O: never in the loop)."""
    problems: tuple[str, ...]
    fallback: str
    """What happens instead when a check failed."""

    @property
    def active(self) -> bool:
        """Whether every check passed, so the overrides are in use."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly form for diagnostics."""
        return {
            "versions": self.versions,
            "overrides": "active" if self.active else "not installed: " + self.fallback,
            "problems": list(self.problems),
        }


def mismatch(spec: HookSpec) -> str | None:
    """Say how the library's method differs from ``spec``; ``None`` when it does not."""
    label = f"{spec.owner.__module__}.{spec.owner.__qualname__}.{spec.name}"
    try:
        func = inspect.getattr_static(spec.owner, spec.name)
    except AttributeError:
        return f"{label} is missing"
    if not inspect.isfunction(func):
        return f"{label} is no longer a plain method ({type(func).__name__})"
    if inspect.iscoroutinefunction(func) != spec.is_async:
        return f"{label} {'is no longer' if spec.is_async else 'is now'} a coroutine function"
    params = _param_names(func)
    if spec.params is not None and params != spec.params:
        return f"{label} takes ({', '.join(params)}), not ({', '.join(spec.params)})"
    code = func.__code__
    names = {*code.co_names, *(c for c in code.co_consts if isinstance(c, str))}
    if missing := [name for name in spec.uses if name not in names]:
        return f"{label} no longer refers to {', '.join(missing)}"
    return None


def check(
    name: str, library: str, fallback: str, specs: Iterable[HookSpec], *extra: str | None
) -> HookReport:
    """Check ``specs`` plus problems found otherwise; if any failed, warn once why.

    ``fallback`` says what the caller does instead, for the log and diagnostics.
    """
    problems = tuple(p for p in (*(mismatch(spec) for spec in specs), *extra) if p)
    report = HookReport(name, library, versions_of(library), problems, fallback)
    if problems:
        _LOGGER.warning(
            "%s changed private code this integration relies on, so %s: %s",
            report.versions,
            fallback,
            "; ".join(problems),
        )
    return report


def versions_of(library: str) -> str:
    """Installed versions of the distributions named in ``library`` (``a / b``)."""
    found = []
    for name in library.split(" / "):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (version unknown)")
    return ", ".join(found)


def _param_names(func: Any) -> tuple[str, ...]:
    prefix: dict[Any, str] = {
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    parameters = inspect.signature(func).parameters.values()
    return tuple(prefix.get(p.kind, "") + p.name for p in parameters)


COMET_HOOKS: Final = (
    # Inline dispatch: a message goes to Socket.IO without a task; "run_async" keeps
    # python-engineio's task for the one packet that must not run inside the read loop.
    HookSpec(
        engineio.AsyncClient,
        "_trigger_event",
        ("self", "event", "*args", "**kwargs"),
        is_async=True,
        uses=("run_async",),
    ),
    HookSpec(engineio.AsyncClient, "_receive_packet", ("self", "pkt"), is_async=True),
    # How python-socketio makes its Engine.IO client: our inline one is plugged in here.
    HookSpec(socketio.AsyncClient, "_engineio_client_class", ("self",), is_async=False),
    HookSpec(
        socketio.base_client.BaseClient,
        "__init__",
        None,
        is_async=False,
        uses=("_engineio_client_class", "_binary_packet"),
    ),
    # Frame guards: every text frame ends a pending binary packet; events reach _handle_event.
    HookSpec(
        socketio.AsyncClient,
        "_handle_eio_message",
        ("self", "data"),
        is_async=True,
        uses=("_binary_packet", "_handle_event"),
    ),
    HookSpec(
        socketio.AsyncClient,
        "_handle_event",
        ("self", "namespace", "id", "data"),
        is_async=True,
    ),
)
"""The private methods ``_socketio.py`` overrides or relies on."""


def _binary_packet_problem() -> str | None:
    """python-socketio keeps a binary packet waiting for attachments in ``_binary_packet``."""
    try:
        probe = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    except Exception as err:  # noqa: BLE001 - any failure means: do not rely on internals
        return f"socketio.AsyncClient() failed: {type(err).__name__}: {err}"
    if getattr(probe, "_binary_packet", ...) is not None:
        return "socketio.AsyncClient no longer starts with _binary_packet = None"
    return None


def _max_decode_packets_problem() -> str | None:
    """python-engineio refuses poll responses with more packets than this class attribute."""
    if not isinstance(getattr(Payload, "max_decode_packets", None), int):
        return "engineio.payload.Payload.max_decode_packets is missing"
    return mismatch(
        HookSpec(
            Payload,
            "decode",
            ("self", "encoded_payload"),
            is_async=False,
            uses=("max_decode_packets",),
        )
    )


COMET: Final = check(
    "comet",
    "python-socketio / python-engineio",
    "the Comet client uses the library's public event handling (slower, still correct)",
    COMET_HOOKS,
    _binary_packet_problem(),
)
"""Whether ``_socketio.py`` installs its overrides (checked once, at import)."""

POLLING: Final = check(
    "polling",
    "python-engineio",
    "the polling transport keeps the library's packet limit (WebSocket is not affected)",
    (),
    _max_decode_packets_problem(),
)
"""Whether the polling packet limit can be raised (bursts over polling are lost otherwise)."""

REPORTS: list[HookReport] = [COMET, POLLING]
"""Every check made so far (other modules add theirs through :func:`register`)."""


def register(report: HookReport) -> HookReport:
    """Add another module's report (the MQTT client's) to :func:`diagnostics`."""
    REPORTS.append(report)
    return report


def diagnostics() -> dict[str, Any]:
    """Every check's outcome, by what the overrides serve."""
    return {report.name: report.as_dict() for report in REPORTS}
