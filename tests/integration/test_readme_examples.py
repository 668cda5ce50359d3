"""The documentation's automation and action examples are valid Home Assistant configuration.

Every ```yaml block that starts with ``automation:`` or ``actions:`` is parsed and run through
Home Assistant's own trigger, condition and action validation (device triggers through this
integration's trigger schema), and every template in it must compile.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.condition import async_validate_conditions_config
from homeassistant.helpers.script import async_validate_actions_config
from homeassistant.helpers.template import Template
from homeassistant.helpers.trigger import async_validate_trigger_config
from homeassistant.util.yaml import parse_yaml
import pytest

from custom_components.saymon.device_trigger import TRIGGER_SCHEMA
from custom_components.saymon.server_kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


def yaml_blocks(start: str) -> list[Any]:
    blocks = [
        block
        for document in DOCUMENTS
        for block in re.findall(
            r"```yaml\n(.*?)```", document.read_text(encoding="utf-8"), re.DOTALL
        )
    ]
    return [parse_yaml(block) for block in blocks if block.startswith(start)]


def templates(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node] if "{{" in node or "{%" in node else []
    if isinstance(node, dict):
        return [t for value in node.values() for t in templates(value)]
    if isinstance(node, list):
        return [t for value in node for t in templates(value)]
    return []


async def test_readme_automations_are_valid(hass: HomeAssistant) -> None:
    automations = [item for block in yaml_blocks("automation:") for item in block["automation"]]
    assert len(automations) >= 6
    device_triggers = 0
    for automation in automations:
        assert automation["alias"]
        for trigger in automation["triggers"]:
            if trigger["trigger"] == "device":
                device_triggers += 1
                assert trigger["domain"] == "saymon"
                TRIGGER_SCHEMA(cv.TRIGGER_SCHEMA(trigger)[0])
            else:
                await async_validate_trigger_config(hass, cv.TRIGGER_SCHEMA(trigger))
        if "conditions" in automation:
            await async_validate_conditions_config(
                hass, cv.CONDITIONS_SCHEMA(automation["conditions"])
            )
        await async_validate_actions_config(hass, cv.SCRIPT_SCHEMA(automation["actions"]))
        for text in templates(automation):
            Template(text, hass).ensure_valid()
    assert device_triggers >= 2
    # Every server event has an automation example (docs/events.md).
    triggered = {t.get("event_type") for a in automations for t in a["triggers"]}
    assert {kind.event for kind in KINDS} <= triggered


async def test_readme_action_examples_are_valid(hass: HomeAssistant) -> None:
    blocks = yaml_blocks("actions:") + yaml_blocks("# ")
    actions = [action for block in blocks if isinstance(block, dict) for action in block["actions"]]
    used = {action["action"] for action in actions}
    assert {"saymon.acknowledge_incident", "saymon.get_incidents", "saymon.run_operation"} <= used
    await async_validate_actions_config(hass, cv.SCRIPT_SCHEMA(actions))
    for text in templates(actions):
        Template(text, hass).ensure_valid()
