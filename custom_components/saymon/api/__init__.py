"""SAYMON protocol library: REST (``/node/api``), Comet (Socket.IO) and a live model.

This package imports nothing from Home Assistant, so it can be read, tested, reused and
published on its own, as Home Assistant core keeps protocol code in libraries. The caller owns
the ``aiohttp.ClientSession``. The names below are its public API; modules starting with ``_``
(and the ones not re-exported here) are implementation details.

Most callers need one class: :class:`SaymonLive` follows one server and reports typed changes
(:data:`Change`) to a :class:`LiveListener`, exactly once and in order.
"""

from ._fields import SANITIZED
from .backoff import Backoff
from .comet import CometClient
from .errors import (
    SaymonAuthError,
    SaymonCometError,
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonNotFoundError,
    SaymonPermissionError,
    SaymonPlainHTTPError,
    SaymonProtocolError,
    SaymonResponseError,
    SaymonSessionExpiredError,
    SaymonTimeoutError,
    SaymonTLSError,
)
from .events import (
    CometEvent,
    IncidentChange,
    IncidentCountEvent,
    IncidentEvent,
    ModelChange,
    ModelChangedEvent,
    RawEvent,
    StateChangeEvent,
    StatEvent,
    parse_event,
)
from .live import LiveListener, LiveStats, SaymonLive, Scheduler
from .model import (
    Change,
    IncidentChanged,
    IncidentChangeKind,
    ModelChanged,
    SaymonModel,
    Snapshot,
    Source,
    StateChanged,
)
from .models import (
    LEVEL_ALARM,
    LEVEL_CLEARED,
    LEVEL_MAJOR,
    LEVEL_WARNING,
    CurrentUser,
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)
from .rest import Credentials, PasswordCredentials, SaymonRestClient, TokenCredentials
from .subscription import Subscription
from .url import CometEndpoint, InvalidURLError, comet_endpoint, normalize_base_url

__all__ = [
    "LEVEL_ALARM",
    "LEVEL_CLEARED",
    "LEVEL_MAJOR",
    "LEVEL_WARNING",
    "SANITIZED",
    "Backoff",
    "Change",
    "CometClient",
    "CometEndpoint",
    "CometEvent",
    "Credentials",
    "CurrentUser",
    "EntityType",
    "Incident",
    "IncidentChange",
    "IncidentChangeKind",
    "IncidentChanged",
    "IncidentCountEvent",
    "IncidentEvent",
    "IncidentLevel",
    "InvalidURLError",
    "LiveListener",
    "LiveStats",
    "ModelChange",
    "ModelChanged",
    "ModelChangedEvent",
    "PasswordCredentials",
    "RawEvent",
    "SaymonAuthError",
    "SaymonClass",
    "SaymonCometError",
    "SaymonConnectionError",
    "SaymonError",
    "SaymonInvalidCredentialsError",
    "SaymonLink",
    "SaymonLive",
    "SaymonModel",
    "SaymonNotFoundError",
    "SaymonObject",
    "SaymonPermissionError",
    "SaymonPlainHTTPError",
    "SaymonProtocolError",
    "SaymonResponseError",
    "SaymonRestClient",
    "SaymonSessionExpiredError",
    "SaymonState",
    "SaymonTLSError",
    "SaymonTimeoutError",
    "Scheduler",
    "Snapshot",
    "Source",
    "StatEvent",
    "StateChangeEvent",
    "StateChanged",
    "Subscription",
    "TokenCredentials",
    "comet_endpoint",
    "normalize_base_url",
    "parse_event",
]
