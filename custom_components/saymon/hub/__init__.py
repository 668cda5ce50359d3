"""The hub: one SAYMON server in Home Assistant (see :mod:`.hub`).

``hub.py`` wires the parts: ``devices.py`` (scope and device tree), ``signals.py`` (entity
updates), ``events.py`` (bus events), ``availability.py`` (outages and repairs), ``metrics.py``
(metric entities; with ``metric_subscriptions.py`` and ``metric_registry.py``).
"""

from .hub import SaymonHub

__all__ = ["SaymonHub"]
