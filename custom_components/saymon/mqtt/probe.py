"""The options flow's connection test: whether a broker accepts these settings.

One connection, opened and closed at once in an executor thread (paho blocks), with the same
paho client, TLS and error keys as the sender (``connection.py``) but without a Last Will: a
test must not make a subscriber see ``offline``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from . import connection
from .connection import BrokerConfig

_LOGGER = logging.getLogger(__name__)


async def async_test_connection(
    config: BrokerConfig,
    timeout: float = 10.0,  # noqa: ASYNC109 - bounds blocking work in a thread
) -> str | None:
    """Connect once and disconnect: ``None`` or ``cannot_connect``/``invalid_auth``/``tls_error``.

    Without a Last Will. Uses ``config.client_id`` if set (a broker may only admit certain
    ids; pass one different from a running connection's, or the broker drops that one),
    else a random ``saymon-test-<hex>`` id.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _test_connection, config, timeout)


def _test_connection(config: BrokerConfig, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    connack: list[ReasonCode] = []

    def on_connect(
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        connack.append(reason)

    client: mqtt.Client | None = None
    try:
        context = connection.ssl_context(config, timeout) if config.tls else None
        client_id = config.client_id or f"saymon-test-{secrets.token_hex(6)}"
        client = connection.make_client(config, client_id, context, timeout)
        client.on_connect = on_connect
        connection.open_connection(client, config)
        while not connack:
            remaining = deadline - time.monotonic()
            if client.socket() is None or remaining <= 0:
                _LOGGER.debug("MQTT test connection to %s:%s: no CONNACK", config.host, config.port)
                return connection.ERROR_CANNOT_CONNECT
            connection.run_io(client, min(remaining, 0.25), None)
    except (OSError, ValueError) as err:
        key, text = connection.classify(err)
        _LOGGER.debug("MQTT test connection to %s:%s failed: %s", config.host, config.port, text)
        return key
    finally:
        if client is not None and connack and not connack[0].is_failure:
            connection.disconnect(client)
        if client is not None:
            connection.close(client)
    if connack[0].is_failure:
        _LOGGER.debug(
            "MQTT test connection to %s:%s refused: %s", config.host, config.port, connack[0]
        )
        return connection.connack_error(connack[0])
    return None
