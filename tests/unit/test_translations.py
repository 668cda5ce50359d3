"""strings.json, the English and the Russian translations carry the same keys."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "saymon"


def keys(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix}
    found: set[str] = set()
    for key, value in node.items():
        found |= keys(value, f"{prefix}.{key}" if prefix else key)
    return found


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", ["en", "ru"])
def test_translation_has_every_key(language: str) -> None:
    strings = keys(load(INTEGRATION / "strings.json"))
    translation = keys(load(INTEGRATION / "translations" / f"{language}.json"))
    assert sorted(strings - translation) == []
    assert sorted(translation - strings) == []


def test_english_is_generated_from_strings() -> None:
    result = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "scripts" / "sync-translations"), "--check"], check=False
    )
    assert result.returncode == 0, "run scripts/sync-translations"


def test_no_unresolved_references_in_translations() -> None:
    for language in ("en", "ru"):
        assert "[%key:" not in (INTEGRATION / "translations" / f"{language}.json").read_text(
            encoding="utf-8"
        )
