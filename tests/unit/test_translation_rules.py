"""hassfest's rules for translation values, applied to strings.json and every translation.

Written from reading ``script/hassfest/translations.py`` in home-assistant/core (its
``translation_value_validator`` and the tests of it): a value must not contain HTML
(``cv.string_with_no_html``, used here as is), URLs ("use description placeholders instead";
hassfest's tests reject ``https://example.com``, ``www.example.com``, ``HTTP://...``),
placeholders in single quotes, combined ``[%key:...%]`` references, or leading and trailing
whitespace. The frontend adds one more: it parses texts as ICU messages with rich-text tags,
so ``saymon/<server>/status`` is shown as "Translation error: UNCLOSED_TAG"; anything tag-like
is refused here, not only what hassfest calls HTML.

Every ``{placeholder}`` must also be supplied by the code. The code is read with ``ast``: the
keys of the dictionaries passed as ``description_placeholders``, ``translation_placeholders`` or
``placeholders`` (directly, through the helpers that build them, or as
``_attr_translation_placeholders``); for exceptions and repair issues the keys given with the
same ``translation_key`` must match the message's placeholders exactly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.helpers import config_validation as cv
import pytest
import voluptuous as vol

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "saymon"
FILES = [INTEGRATION / "strings.json", *sorted((INTEGRATION / "translations").glob("*.json"))]

URL = re.compile(r"\b[a-z][a-z0-9+.-]*://|\bwww\.", re.IGNORECASE)
TAG_LIKE = re.compile(r"</?[a-z]", re.IGNORECASE)
SINGLE_QUOTED_PLACEHOLDER = re.compile(r"'\{\w+\}'")
COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLACEHOLDER_KEYWORDS = frozenset(
    {"description_placeholders", "translation_placeholders", "placeholders"}
)
SUPPLIED_BY_HOME_ASSISTANT: dict[tuple[str, ...], set[str]] = {
    ("device_automation",): {"entity_name", "subtype"},
    # Reauthentication and reconfiguration forms get the entry's title as {name}.
    ("config", "step", "reauth_confirm"): {"name"},
    ("config", "step", "reconfigure"): {"name"},
}


def supplied_by_home_assistant(path: tuple[str, ...]) -> set[str]:
    return {
        name
        for prefix, names in SUPPLIED_BY_HOME_ASSISTANT.items()
        if path[: len(prefix)] == prefix
        for name in names
    }


def leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, node


def value_errors(value: str) -> list[str]:
    """What hassfest (and the frontend) would say about one translation value."""
    errors: list[str] = []
    try:
        cv.string_with_no_html(value)
    except vol.Invalid as err:
        errors.append(str(err))
    if URL.search(value):
        errors.append("contains a URL: use a description placeholder instead")
    if TAG_LIKE.search(value):
        errors.append("contains something tag-like (the frontend reads it as a tag)")
    if SINGLE_QUOTED_PLACEHOLDER.search(value):
        errors.append("placeholder in single quotes")
    if COMBINED_REFERENCE.search(value):
        errors.append("combines a reference with other text")
    if value != value.strip():
        errors.append("leading or trailing whitespace")
    if PLACEHOLDER.sub("", value).count("{") or PLACEHOLDER.sub("", value).count("}"):
        errors.append("a brace that is not a {placeholder}")
    return errors


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_translation_values_pass_hassfest_rules(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    problems = {
        ".".join(key): errors
        for key, value in leaves(data)
        if (errors := value_errors(value if isinstance(value, str) else repr(value)))
    }
    assert problems == {}


@pytest.mark.parametrize(
    "value",
    [
        "An example is: https://example.com.",
        "www.example.com",
        "HTTP://example.com:8080",
        "Every topic starts with this, e.g. saymon/<server>/status.",
        "Bold <b>text</b>",
        "Quoted '{name}'",
        "Prefix [%key:common::config_flow::data::url%]",
        " padded",
        "Unbalanced {",
    ],
)
def test_the_rules_catch_what_hassfest_refuses(value: str) -> None:
    assert value_errors(value)


@pytest.mark.parametrize(
    "value",
    ["Log in to {url}.", "Arrow → and 1 < 2", "[%key:common::config_flow::data::url%]"],
)
def test_the_rules_pass_ordinary_text(value: str) -> None:
    assert value_errors(value) == []


# -- placeholders supplied by the code ------------------------------------------------------


def _string_keys(node: ast.AST) -> set[str]:
    """String keys of dict literals and of ``x["key"] = ...`` inside ``node``."""
    keys: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Dict):
            keys |= {
                key.value
                for key in child.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
    return keys


@cache
def _modules() -> tuple[ast.Module, ...]:
    return tuple(
        ast.parse(path.read_text(encoding="utf-8")) for path in sorted(INTEGRATION.rglob("*.py"))
    )


def _called_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def _functions() -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    found: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.setdefault(node.name, []).append(node)
    return found


def _placeholder_keys_of_function(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Keys a placeholder-building helper returns: its dict literals and subscript writes."""
    keys = _string_keys(function)
    for node in ast.walk(function):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            index = node.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, str):
                keys.add(index.value)
    return keys


@cache
def supplied_placeholders() -> frozenset[str]:
    """Every placeholder key the code hands to Home Assistant, as far as ``ast`` can see."""
    functions = _functions()
    supplied: set[str] = set()
    for module in _modules():
        for node in ast.walk(module):
            values: list[ast.AST] = []
            if isinstance(node, ast.Call):
                values += [kw.value for kw in node.keywords if kw.arg in PLACEHOLDER_KEYWORDS]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    name = target.attr if isinstance(target, ast.Attribute) else None
                    name = target.id if isinstance(target, ast.Name) else name
                    if name is not None and "placeholders" in name and node.value is not None:
                        values.append(node.value)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                base = node.value
                index = node.slice
                if (
                    isinstance(base, ast.Name)
                    and "placeholders" in base.id
                    and isinstance(index, ast.Constant)
                    and isinstance(index.value, str)
                ):
                    supplied.add(index.value)
            for value in values:
                supplied |= _string_keys(value)
                for name in _called_names(value):
                    for function in functions.get(name, []):
                        supplied |= _placeholder_keys_of_function(function)
    return frozenset(supplied)


def _keys_given_with(translation_key: str) -> list[set[str]]:
    """The placeholder keys of every call that raises or creates ``translation_key``.

    Variables in the placeholders are followed to their assignments in the function.
    """
    given: list[set[str]] = []
    for function in (f for functions in _functions().values() for f in functions):
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            keywords = {kw.arg: kw.value for kw in node.keywords}
            key = keywords.get("translation_key")
            if not (isinstance(key, ast.Constant) and key.value == translation_key):
                continue
            value = keywords.get("translation_placeholders")
            keys = _string_keys(value) if value is not None else set()
            names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} if value else set()
            for assign in ast.walk(function):
                if isinstance(assign, ast.Assign) and any(
                    isinstance(target, ast.Name) and target.id in names for target in assign.targets
                ):
                    keys |= _string_keys(assign.value)
            given.append(keys)
    return given


def test_every_placeholder_is_supplied_by_the_code() -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))
    supplied = supplied_placeholders()
    missing: dict[str, set[str]] = {}
    for path, value in leaves(strings):
        wanted = set(PLACEHOLDER.findall(value)) - supplied_by_home_assistant(path)
        if path[0] == "entity":
            continue  # checked below with the entity's own translation_placeholders
        if wanted - supplied:
            missing[".".join(path)] = wanted - supplied
    assert missing == {}


@pytest.mark.parametrize("section", ["exceptions", "issues"])
def test_exception_and_issue_placeholders_match_exactly(section: str) -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))[section]
    for translation_key, texts in strings.items():
        wanted = {name for text in texts.values() for name in PLACEHOLDER.findall(text)}
        given = _keys_given_with(translation_key)
        assert given, f"{section}.{translation_key} is never used"
        for keys in given:
            assert keys == wanted, f"{section}.{translation_key}: code gives {keys}"


def test_entity_name_placeholders_are_supplied() -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))["entity"]
    supplied = supplied_placeholders()
    for platform, entities in strings.items():
        for key, texts in entities.items():
            wanted = set(PLACEHOLDER.findall(texts.get("name", "")))
            assert wanted <= supplied, f"{platform}.{key}: {wanted - supplied}"


def test_the_placeholder_scan_sees_the_flows() -> None:
    """The scan finds what the flows pass, so a missing key above is really missing."""
    assert {"url", "comet_address", "http_url", "status", "url_example"} <= (
        supplied_placeholders()
    )
    assert {"device_count", "entity_count", "object_count", "host", "port"} <= (
        supplied_placeholders()
    )
