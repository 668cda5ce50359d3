"""strings.json, the translations, icons.json, services.yaml and the code agree."""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
import sys
from typing import Any

from homeassistant.util.yaml import load_yaml
import pytest

from custom_components.saymon.device_trigger import TRIGGER_EVENTS
from custom_components.saymon.server_triggers import SERVER_TRIGGERS
from custom_components.saymon.states import BUILTIN_STATE_KEYS

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


def load_services() -> dict[str, Any]:
    data = load_yaml(INTEGRATION / "services.yaml")
    assert isinstance(data, dict)
    return data


def test_services_yaml_strings_and_icons_name_the_same_actions() -> None:
    services = load_services()
    strings = load(INTEGRATION / "strings.json")["services"]
    icons = load(INTEGRATION / "icons.json")["services"]
    assert sorted(services) == sorted(strings) == sorted(icons)
    for name, service in services.items():
        fields = set((service or {}).get("fields", {}))
        assert fields == set(strings[name].get("fields", {})), name
        assert strings[name]["name"]
        assert strings[name]["description"]
        assert icons[name]["service"].startswith("mdi:")


def test_registered_actions_are_described() -> None:
    source = "\n".join(
        (INTEGRATION / name).read_text(encoding="utf-8")
        for name in ("services.py", "operations_action.py", "metric_history.py")
    )
    registered = set(re.findall(r"^SERVICE_\w+(?:: Final)? = \"(\w+)\"", source, re.MULTILINE))
    assert registered
    assert registered == set(load_services())


def test_entity_icons_match_entity_translations() -> None:
    strings = load(INTEGRATION / "strings.json")["entity"]
    icons = load(INTEGRATION / "icons.json")["entity"]
    for platform, entities in icons.items():
        for key, icon in entities.items():
            assert key in strings.get(platform, {}), f"{platform}.{key}"
            states = strings[platform][key].get("state", {})
            if platform != "binary_sensor":  # binary sensors use on/off from their device class
                assert set(icon.get("state", {})) <= set(states), f"{platform}.{key}"
            for attribute, values in icon.get("state_attributes", {}).items():
                described = strings[platform][key]["state_attributes"][attribute]["state"]
                assert set(values["state"]) == set(described), f"{platform}.{key}.{attribute}"


def test_translation_keys_in_the_code_exist() -> None:
    strings = load(INTEGRATION / "strings.json")
    known = set(strings["exceptions"]) | set(strings["issues"]) | set(strings["selector"])
    for entities in strings["entity"].values():
        known |= set(entities)
    used: set[str] = set()
    for path in INTEGRATION.rglob("*.py"):
        used |= set(re.findall(r'translation_key="(\w+)"', path.read_text(encoding="utf-8")))
    assert used
    assert sorted(used - known) == []


def test_state_options_are_translated() -> None:
    strings = load(INTEGRATION / "strings.json")["entity"]["sensor"]
    assert set(BUILTIN_STATE_KEYS.values()) == set(strings["object_state"]["state"])
    assert set(BUILTIN_STATE_KEYS.values()) == set(strings["link_state"]["state"])


def test_device_triggers_are_translated() -> None:
    strings = load(INTEGRATION / "strings.json")["device_automation"]["trigger_type"]
    assert set(TRIGGER_EVENTS) | set(SERVER_TRIGGERS) == set(strings)
