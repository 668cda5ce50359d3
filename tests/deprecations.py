"""Fail the run on any deprecation that names this integration, the day it appears.

Home Assistant announces what it will remove in its log, not as an error: ``report_usage``
writes "Detected that custom integration 'saymon' ... This will stop working in Home Assistant
2027.8" and its deprecated constants and functions write "The deprecated ... was used from
saymon". Python and libraries emit ``DeprecationWarning``. Both are only noticed when someone reads
them; here every such log record (any logger, WARNING and up) and every deprecation warning
raised from our package or naming it is collected, and the session fails at its end with the
list and the test each came from. On the current-Home-Assistant leg this is the early warning
for the next release.
"""

from __future__ import annotations

from collections.abc import Generator
import logging
from pathlib import Path
import re
from typing import Any
import warnings

import pytest

DOMAIN = "saymon"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN
_NAMES_US = re.compile(rf"\b{DOMAIN}\b")  # the domain, lower case: not the product name
_DEPRECATION_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def names_us(message: str) -> bool:
    """Whether a log message is a deprecation report about this integration.

    Home Assistant's frame helper names the integration as ``integration 'saymon'`` (its
    message need not say "deprecated": "... will stop working in ..."); other reports say
    "deprecated" and name the domain. SAYMON's product name in capitals is not the domain.
    """
    if f"integration '{DOMAIN}'" in message:
        return True
    lowered = message.lower()
    return ("deprecat" in lowered or "stop working" in lowered) and bool(_NAMES_US.search(message))


def ours(filename: str) -> bool:
    """Whether a warning was attributed to a file of this integration."""
    try:
        return Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        return False


class DeprecationCollector(logging.Handler):
    """Collects deprecation reports about this integration, with the test they came from."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[tuple[str, str]] = []
        self.nodeid = "(collection)"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to report
            return
        if names_us(message):
            self.found.append((self.nodeid, f"log {record.name}: {message}"))

    def warning(self, message: warnings.WarningMessage, nodeid: str) -> None:
        """Record a warning if it is a deprecation from or about this integration."""
        if not issubclass(message.category, _DEPRECATION_CATEGORIES):
            return
        text = str(message.message)
        if ours(message.filename) or names_us(text):
            where = f"{message.filename}:{message.lineno}"
            kind = message.category.__name__
            self.found.append((nodeid or self.nodeid, f"{kind} at {where}: {text}"))


COLLECTOR = DeprecationCollector()
"""This session's findings (one pytest session per process)."""


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(COLLECTOR)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(COLLECTOR)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    COLLECTOR.nodeid = item.nodeid
    try:
        return (yield)
    finally:
        COLLECTOR.nodeid = "(between tests)"


def pytest_warning_recorded(
    warning_message: warnings.WarningMessage, when: str, nodeid: str
) -> None:
    COLLECTOR.warning(warning_message, nodeid or f"({when})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if COLLECTOR.found and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:  # pytest.TerminalReporter
    if not COLLECTOR.found:
        return
    terminalreporter.section(f"deprecations naming {DOMAIN} (they fail the run)", red=True)
    for nodeid, text in dict.fromkeys(COLLECTOR.found):
        terminalreporter.line(f"{nodeid}: {text}")
