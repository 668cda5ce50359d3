"""The SAYMON integration for Home Assistant."""

from __future__ import annotations

from .const import DOMAIN

__all__ = ["DOMAIN"]
