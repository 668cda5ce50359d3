"""The one retry policy: capped exponential backoff with jitter.

Every retry loop of the integration waits by it: the Comet supervisor between connection
attempts (``comet.py``), the MQTT sender thread between broker connections
(``mqtt/sender.py``) and the resync of the live model. One implementation, so a retry against
a server that is down never becomes a hot loop, and many clients restarted at once (a Home
Assistant restart, a SAYMON upgrade) do not all come back in the same second.
"""

from __future__ import annotations

from dataclasses import dataclass
import random


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``min(cap, base * 2**n)`` scaled by 50-100 %.

    Stateless, so one instance may serve several loops and threads; each loop counts its own
    failures in a row.
    """

    base: float = 1.0
    cap: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` failures in a row."""
        if failures <= 0:
            return 0.0
        ceiling = min(self.cap, self.base * (1 << min(failures - 1, 30)))
        jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        return ceiling * jitter
