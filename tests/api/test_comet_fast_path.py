"""The Comet client's fast path for plain Socket.IO events, and what it leaves to the library.

A plain event for the default namespace without an acknowledgement id (``2["name",...]``) is
decoded by our Engine.IO client and handed straight to the queue; everything else must go
through python-socketio unchanged. Checked on the Engine.IO client itself, with the packets
python-engineio would hand it.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any, cast

import pytest

from custom_components.saymon.api._socketio import FastJson, InlineEngineIOClient


def engine(binary_pending: bool = False) -> tuple[InlineEngineIOClient, list[tuple[Any, ...]]]:
    """An Engine.IO client wired to a recorder, as CometClient wires it."""
    seen: list[tuple[Any, ...]] = []
    client = InlineEngineIOClient()
    client.fast_event = lambda *args: seen.append(args)
    client.socketio_client = cast(
        "Any", SimpleNamespace(_binary_packet=object() if binary_pending else None)
    )
    return client, seen


def test_plain_events_take_the_fast_path() -> None:
    client, seen = engine()
    assert client.fast_path('2["state-change",{"id":"o","state_id":3}]')
    assert client.fast_path('2["incident-count",5]')
    assert client.fast_path('2["no-args"]')
    assert seen == [
        ("state-change", {"id": "o", "state_id": 3}),
        ("incident-count", 5),
        ("no-args",),
    ]


@pytest.mark.parametrize(
    "packet",
    [
        '0{"sid":"x"}',  # CONNECT
        "1",  # DISCONNECT
        '21["with-ack",1]',  # an acknowledgement id
        '2/admin,["other-namespace"]',  # a namespace
        '51-["binary",{"_placeholder":true,"num":0}]',  # a binary event
        '4{"message":"refused"}',  # CONNECT_ERROR
        '2["connect"]',  # python-socketio's reserved names
        '2["disconnect","x"]',
        "2[1,2]",  # not named
        "2[]",
        "2[broken",  # not JSON for orjson: the library decides
        '2["big",1e999999]',
        b"\x00binary attachment",
        None,
    ],
)
def test_everything_else_goes_to_python_socketio(packet: Any) -> None:
    client, seen = engine()
    assert not client.fast_path(packet)
    assert seen == []


def test_not_while_a_binary_event_waits_for_attachments() -> None:
    client, seen = engine(binary_pending=True)
    assert not client.fast_path('2["state-change",{"id":"o"}]')
    assert seen == []


def test_not_without_a_receiver() -> None:
    client = InlineEngineIOClient()
    assert not client.fast_path('2["state-change",{"id":"o"}]')


def test_json_module_falls_back_for_what_orjson_refuses() -> None:
    """python-socketio gets orjson; what orjson refuses goes to python-engineio's module."""
    assert FastJson.loads('["a",{"b":1}]') == ["a", {"b": 1}]
    assert math.isnan(FastJson.loads("[NaN]")[0])  # orjson refuses NaN; the fallback takes it
    assert FastJson.loads("[123456789012345678901234567890]") == [1.2345678901234568e29]
    assert FastJson.dumps(["a", {"b": 1}]) == '["a",{"b":1}]'
    assert json.loads(FastJson.dumps({1: "x"})) == {"1": "x"}  # non-string keys: fallback
