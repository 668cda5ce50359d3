"""Counting what a fuzzer tried, what was accepted and what was rejected (and how)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from custom_components.saymon.api.errors import SaymonError


@dataclass(slots=True)
class Tally:
    """Runs inputs through a parser and counts the outcome.

    A typed SAYMON error is a counted rejection; any other exception escapes and fails the test.
    """

    target: str
    tried: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def run(self, parse: Callable[[], Any]) -> bool:
        """Parse one input; ``True`` when it was accepted."""
        self.tried += 1
        try:
            parse()
        except SaymonError as err:
            self.rejected[type(err).__name__] += 1
            return False
        self.accepted += 1
        return True

    def row(self, notes: str = "") -> dict[str, Any]:
        """The results-table row."""
        return {
            "target": self.target,
            "tried": self.tried,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "crashes": 0,
            "notes": notes,
        }
