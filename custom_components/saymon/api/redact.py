"""Keeping Comet session ids out of logs and error messages.

The Comet client puts its SAYMON session id into the Engine.IO URL, and python-engineio logs
that URL, session id included, at INFO level; with debug logging on in Home Assistant that
would put a live secret in the log, and connection errors may quote the URL too. So the client
hands the libraries loggers that pass :data:`REDACTOR` (:func:`library_logger`), registers every
spelling of its session id while it uses it (:class:`SessionSecrets`), and redacts its own
messages with the same forms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
import logging
from typing import Final
from urllib.parse import quote, urlencode

REDACTED: Final = "***"

_HANDLED_LIBRARY_ERRORS: Final = frozenset({"packet queue is empty, aborting"})
"""python-engineio errors that only announce a disconnect the Comet client handles (its write
loop gives up when it had nothing to send for ``max(pingInterval, pingTimeout) + 5`` s, e.g.
while a burst delays the server's ping); shown at debug level like the library's other chatter."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by :data:`REDACTED`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Removes live session ids from python-socketio/-engineio log records.

    It also keeps the libraries' chatter at debug level: they warn about things the Comet
    client handles itself (e.g. "Server sent close packet" on every clean disconnect), and the
    caller reports outages through the client's connected/disconnected callbacks.
    """

    def __init__(self) -> None:
        """Start with nothing to redact."""
        super().__init__()
        self.secrets: Counter[str] = Counter()
        """Secrets in use, counted: clients of one process may share a session id."""

    def remember(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` until :meth:`forget` was called as often for them."""
        self.secrets.update(secret for secret in secrets if secret)

    def forget(self, secrets: Iterable[str]) -> None:
        """Stop redacting ``secrets`` once no client uses them any more."""
        self.secrets.subtract(secret for secret in secrets if secret)
        for secret in [secret for secret, uses in self.secrets.items() if uses <= 0]:
            del self.secrets[secret]

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the libraries' chatter unless debug is on; redact what passes."""
        level = record.levelno
        if level >= logging.ERROR and record.msg in _HANDLED_LIBRARY_ERRORS:
            level = logging.INFO
        if level < logging.ERROR and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        if self.secrets:
            record.msg, record.args = redact(record.getMessage(), self.secrets), None
        return True


REDACTOR: Final = RedactingFilter()
"""The one filter of the process: every client registers its secrets here."""


def library_logger(name: str) -> logging.Logger:
    """Return the logger ``name``, to hand python-socketio/-engineio, behind :data:`REDACTOR`."""
    logger = logging.getLogger(name)
    logger.addFilter(REDACTOR)
    return logger


class SessionSecrets:
    """Every spelling of one client's current session id, redacted while the client uses it."""

    def __init__(self) -> None:
        """Start with no session id."""
        self._forms: tuple[str, ...] = ()

    def use(self, session_id: str) -> None:
        """Redact ``session_id`` (as given and URL-encoded) instead of the previous one."""
        self.forget()
        self._forms = _secret_forms(session_id)
        REDACTOR.remember(self._forms)

    def forget(self) -> None:
        """Stop redacting this client's session id (other clients may still redact it)."""
        REDACTOR.forget(self._forms)
        self._forms = ()

    def redact(self, text: str) -> str:
        """Return ``text`` without the current session id in any spelling."""
        return redact(text, self._forms)


def _secret_forms(session_id: str) -> tuple[str, ...]:
    """Return the session id as given and as URL-encoded, so every spelling can be redacted."""
    return tuple({session_id, quote(session_id, safe=""), urlencode({"": session_id})[1:]})
