"""Fault knobs and counters: how tests make the server slow, failing or malformed, and watch it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

REST_PREFIX: Final = "/node/api"

IncidentCountShape = Literal["object", "number"]


def api_path(path: str) -> str:
    """Normalise `objects` / `/objects` / `/node/api/objects` to the full request path."""
    if path.startswith(REST_PREFIX):
        return path
    return f"{REST_PREFIX}/{path.lstrip('/')}"


@dataclass(slots=True)
class Faults:
    """Everything a test can break on purpose; `reset()` restores a healthy server."""

    rest_delay: float = 0.0
    """Seconds every REST call waits before the server reads its answer."""
    rest_delay_after: float = 0.0
    """Seconds every REST call waits after reading its answer, before sending it."""
    fail_next: int = 0
    fail_all: bool = False
    garbage_paths: set[str] = field(default_factory=set)
    accept_delay: float = 0.0
    incident_count_shape: IncidentCountShape = "object"
    csrf_cookie: bool = True

    def reset(self) -> None:
        """Back to defaults."""
        self.rest_delay = 0.0
        self.rest_delay_after = 0.0
        self.fail_next = 0
        self.fail_all = False
        self.garbage_paths.clear()
        self.accept_delay = 0.0
        self.incident_count_shape = "object"
        self.csrf_cookie = True

    def take_failure(self) -> bool:
        """Whether this REST call must fail; consumes one of `fail_next`."""
        if self.fail_all:
            return True
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        """Return the current knob values (GET /control/faults)."""
        return {
            "rest_delay": self.rest_delay,
            "rest_delay_after": self.rest_delay_after,
            "fail_next": self.fail_next,
            "fail_all": self.fail_all,
            "garbage_paths": sorted(self.garbage_paths),
            "accept_delay": self.accept_delay,
            "incident_count_shape": self.incident_count_shape,
            "csrf_cookie": self.csrf_cookie,
        }


@dataclass(slots=True)
class Counters:
    """What the server saw and sent, for assertions."""

    rest_requests: Counter[str] = field(default_factory=Counter)
    comet_accepted: int = 0
    comet_rejected: int = 0
    comet_disconnected: int = 0
    restarts: int = 0
    events_published: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Zero everything."""
        self.rest_requests.clear()
        self.comet_accepted = self.comet_rejected = self.comet_disconnected = 0
        self.restarts = 0
        self.events_published.clear()

    def to_json(self) -> dict[str, Any]:
        """GET /control/counters."""
        return {
            "rest_requests": dict(self.rest_requests),
            "comet_accepted": self.comet_accepted,
            "comet_rejected": self.comet_rejected,
            "comet_disconnected": self.comet_disconnected,
            "restarts": self.restarts,
            "events_published": dict(self.events_published),
        }
