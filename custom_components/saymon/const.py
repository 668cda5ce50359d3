"""Constants of the SAYMON integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "saymon"
