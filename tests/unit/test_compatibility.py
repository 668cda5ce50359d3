"""The release files say exactly what is tested.

``hacs.json``'s minimum Home Assistant is the version the first leg tests (``scripts/setup``);
the manifest's ranges are the project's dependency ranges; their lower bounds and the pinned
versions appear in the compatibility table of ``docs/installation.md``, and the pins lie inside
the ranges (``scripts/test-deps`` tests both ends of each).
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import tomllib
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
TESTED = ("python-socketio", "python-engineio", "paho-mqtt")


def _load(name: str) -> Any:
    return json.loads((ROOT / name).read_text(encoding="utf-8"))


def _ranges() -> dict[str, Requirement]:
    requirements = _load("custom_components/saymon/manifest.json")["requirements"]
    return {req.name: req for req in map(Requirement, requirements)}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pins() -> dict[str, Version]:
    pins = {}
    for text in _pyproject()["dependency-groups"]["dev"]:
        req = Requirement(text)
        (spec,) = req.specifier
        if req.name in TESTED and spec.operator == "==":
            pins[req.name] = Version(spec.version)
    return pins


def _lowest(req: Requirement) -> Version:
    (low,) = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return low


def _full(version: Version) -> str:
    """``5.14`` as pip installs it: ``5.14.0``."""
    return f"{version.major}.{version.minor}.{version.micro}"


def _compatibility_section() -> str:
    text = (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")
    match = re.search(r"^## Compatibility\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/installation.md has no '## Compatibility' section"
    return match.group(1)


def test_hacs_minimum_is_the_tested_home_assistant() -> None:
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    match = re.search(r"^HA_VERSION=(\S+)$", setup, re.MULTILINE)
    assert match
    assert _load("hacs.json")["homeassistant"] == match.group(1)


def test_manifest_ranges_are_the_project_dependencies() -> None:
    ranges = _ranges()
    assert set(TESTED) <= ranges.keys()
    project = {req.name: req for req in map(Requirement, _pyproject()["project"]["dependencies"])}
    for name in TESTED:
        assert str(project[name].specifier) == str(ranges[name].specifier), name


def test_pins_lie_inside_the_ranges() -> None:
    ranges, pins = _ranges(), _pins()
    assert pins.keys() == set(TESTED)
    for name, pin in pins.items():
        assert pin in ranges[name].specifier, f"{name} {pin} outside {ranges[name].specifier}"


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def test_compatibility_table_lists_what_is_tested() -> None:
    section = _compatibility_section()
    ranges, pins = _ranges(), _pins()
    for text in _load("custom_components/saymon/manifest.json")["requirements"]:
        if Requirement(text).name in TESTED:
            assert f"`{text}`" in section, f"the manifest's {text} is not stated"
    # Columns: Home Assistant, Python, then the three packages in TESTED order, then what ran.
    rows = [_cells(line)[:5] for line in section.splitlines() if line.startswith("| 20")]
    lowest = [f"{_full(_lowest(ranges[name]))} (lowest)" for name in TESTED]
    pinned = [str(pins[name]) for name in TESTED]
    assert [row[2:] for row in rows].count(lowest) == 1, f"no single row with {lowest}"
    first_leg = re.search(r"^HA_VERSION=(\S+)$", _text("scripts/setup"), re.MULTILINE)
    second_leg = re.search(r"Home Assistant (\d{4}\.\d+\.\d+)", _pyproject_comment("ha-current"))
    assert first_leg is not None
    assert second_leg is not None
    tested = {row[0] for row in rows if row[2:] == pinned}
    assert tested == {first_leg.group(1), second_leg.group(1)}


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _pyproject_comment(group: str) -> str:
    """The comment line above a dependency group (it names the Home Assistant it pins)."""
    lines = (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{group} = ["))
    return lines[index - 1]
