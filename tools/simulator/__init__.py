"""A SAYMON server simulator (REST + Comet Socket.IO) for tests and local demos.

Import `SaymonSimulator` for in-process use; run `python -m tools.simulator --help` for a
standalone server.
"""

from __future__ import annotations

from .accounts import VIEWER_LOGIN, VIEWER_PASSWORD
from .activity import StormResult
from .catalog import (
    CHANGE_CREATED,
    CHANGE_MODIFIED,
    CHANGE_REMOVED,
    CLASS_HOST,
    CLASS_LINK,
    CLASS_RACK,
    CLASS_ROOT,
    CLASS_SERVER,
    CLASS_SERVICE,
    CLASS_SITE,
    CLASS_SWITCH,
    ENTITY_LINK,
    ENTITY_OBJECT,
    LEVEL_ALARM,
    LEVEL_CLEARED,
    LEVEL_MAJOR,
    LEVEL_WARNING,
    STATE_ALARM,
    STATE_CREATED,
    STATE_DISABLE,
    STATE_DOWN,
    STATE_NO_DATA,
    STATE_OVERLOADED,
    STATE_STOPPED,
    STATE_TO_LEVEL,
    STATE_WORKING,
)
from .comet import REJECT_DATA, REJECT_MESSAGE, SocketInfo
from .events import (
    EVENT_INCIDENT_COUNT,
    EVENT_INCIDENTS,
    EVENT_MODEL_CHANGED,
    EVENT_STAT,
    EVENT_STATE_CHANGE,
)
from .model import SimulatorModel
from .server import DEFAULT_LOGIN, DEFAULT_PASSWORD, SaymonSimulator

__all__ = [
    "CHANGE_CREATED",
    "CHANGE_MODIFIED",
    "CHANGE_REMOVED",
    "CLASS_HOST",
    "CLASS_LINK",
    "CLASS_RACK",
    "CLASS_ROOT",
    "CLASS_SERVER",
    "CLASS_SERVICE",
    "CLASS_SITE",
    "CLASS_SWITCH",
    "DEFAULT_LOGIN",
    "DEFAULT_PASSWORD",
    "ENTITY_LINK",
    "ENTITY_OBJECT",
    "EVENT_INCIDENTS",
    "EVENT_INCIDENT_COUNT",
    "EVENT_MODEL_CHANGED",
    "EVENT_STAT",
    "EVENT_STATE_CHANGE",
    "LEVEL_ALARM",
    "LEVEL_CLEARED",
    "LEVEL_MAJOR",
    "LEVEL_WARNING",
    "REJECT_DATA",
    "REJECT_MESSAGE",
    "STATE_ALARM",
    "STATE_CREATED",
    "STATE_DISABLE",
    "STATE_DOWN",
    "STATE_NO_DATA",
    "STATE_OVERLOADED",
    "STATE_STOPPED",
    "STATE_TO_LEVEL",
    "STATE_WORKING",
    "VIEWER_LOGIN",
    "VIEWER_PASSWORD",
    "SaymonSimulator",
    "SimulatorModel",
    "SocketInfo",
    "StormResult",
]
