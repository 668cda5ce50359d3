"""The schema library of the running Home Assistant, in one place.

Home Assistant 2026 validates forms and action data with probatio and types its flow and
service APIs with it; older versions use voluptuous. Both spell the schema API the same way,
so every module imports ``vol`` from here instead of repeating the fallback.
"""

from __future__ import annotations

try:
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the Home Assistant version
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

__all__ = ["vol"]
