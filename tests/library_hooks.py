"""Make the import-time checks of ``api/_compat.py`` fail, as a library release would.

``SAYMON_TEST_CHANGE_HOOKS`` names private library methods (``module.Class.method``, comma
separated). Before our package is imported (``tests/conftest.py`` calls :func:`apply_from_env`
first), each is replaced by a wrapper that behaves the same but takes one more parameter: what a
release that changed the method's signature looks like to the real check. The check then
disables our overrides, and the tests run against the library's public behaviour.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from typing import Any

ENV: str = "SAYMON_TEST_CHANGE_HOOKS"

COMET_HOOK = "socketio.AsyncClient._handle_eio_message"
"""One of the methods ``api/_socketio.py`` overrides (any one disables all of them)."""
MQTT_HOOK = "paho.mqtt.client.Client._sock_recv"
"""The method ``mqtt/connection.py`` overrides."""

ORIGINALS: dict[str, Any] = {}
"""The library's own methods, by path, of those changed so far."""


def change_signature(path: str) -> None:
    """Replace the method at ``path`` by an equivalent one with an extra keyword parameter."""
    module_name, class_name, method_name = path.rsplit(".", 2)
    owner = getattr(importlib.import_module(module_name), class_name)
    original = inspect.getattr_static(owner, method_name)
    ORIGINALS.setdefault(path, original)

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def changed_async(*args: Any, released_later: bool = False, **kwargs: Any) -> Any:
            return await original(*args, **kwargs)

        replacement: Any = changed_async
    else:

        @functools.wraps(original)
        def changed(*args: Any, released_later: bool = False, **kwargs: Any) -> Any:
            return original(*args, **kwargs)

        replacement = changed
    # functools.wraps copies __wrapped__, which inspect.signature would follow back to the
    # original signature: a release's new method has no such link.
    del replacement.__wrapped__
    setattr(owner, method_name, replacement)


def changed_from_env() -> list[str]:
    """The methods ``SAYMON_TEST_CHANGE_HOOKS`` asks to change."""
    return [path.strip() for path in os.environ.get(ENV, "").split(",") if path.strip()]


def apply_from_env() -> list[str]:
    """Change every method named in ``SAYMON_TEST_CHANGE_HOOKS``; return their paths."""
    paths = changed_from_env()
    for path in paths:
        change_signature(path)
    return paths
