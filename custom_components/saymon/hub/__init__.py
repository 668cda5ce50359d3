"""The hub: one SAYMON server in Home Assistant (see :mod:`.hub`).

``hub.py`` wires the parts: ``devices.py`` (scope and device tree), ``signals.py`` (entity
updates), ``events.py`` (bus events), ``availability.py`` (outages and repairs).
"""

from .hub import SaymonHub

__all__ = ["SaymonHub"]
