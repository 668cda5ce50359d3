"""The MQTT client against a real Mosquitto: delivery, Last Will, in-flight cap, reconnects.

``mqtt/broker.py`` with its sender thread (``mqtt/sender.py``), and the connection test
(``mqtt/probe.py``).

The numbers that matter come from ``shared/mqtt-notes.md``: paho-mqtt 2.1.0 silently loses
QoS 1 messages past 65,535 outstanding, so one test pushes 70,000 through a proxy that makes
acknowledgements lag and checks that every single one arrives.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import logging
from pathlib import Path
import threading
import time
from typing import Any

import pytest

from custom_components.saymon.mqtt.broker import BrokerConfig, DedicatedBroker
from custom_components.saymon.mqtt.probe import async_test_connection
from tests.util import wait_for as until
from tools.mosquitto import MosquittoBroker, Received, SlowProxy, Subscriber, free_port
from tools.simulator.tls import write_self_signed

STATUS = "saymon/test/status"
USER = "saymon"
PASSWORD = "Pw-9f3kq-never-logged"


@dataclass
class Calls:
    """What a DedicatedBroker reported through its callbacks, and from which thread."""

    connected: int = 0
    disconnected: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def on_connected(self) -> None:
        self.connected += 1
        self.threads.add(threading.get_ident())

    def on_disconnected(self, reason: str) -> None:
        self.disconnected.append(reason)
        self.threads.add(threading.get_ident())


def make(
    port: int, calls: Calls | None = None, *, config: dict[str, Any] | None = None, **kwargs: Any
) -> DedicatedBroker:
    """A DedicatedBroker on 127.0.0.1 with quick reconnects (tests wait for them)."""
    calls = calls or Calls()
    options: dict[str, Any] = {"reconnect_min": 0.1, "reconnect_max": 0.5, **kwargs}
    return DedicatedBroker(
        asyncio.get_running_loop(),
        BrokerConfig("127.0.0.1", port, **(config or {})),
        status_topic=STATUS,
        on_connected=calls.on_connected,
        on_disconnected=calls.on_disconnected,
        **options,
    )


def sequence(messages: list[Received], topic: str) -> list[int]:
    return [int(message.payload) for message in messages if message.topic == topic]


def sender_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("saymon-mqtt")]


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    async with MosquittoBroker(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
async def subscriber(mosquitto: MosquittoBroker) -> AsyncIterator[Subscriber]:
    async with Subscriber(mosquitto.port, "saymon/#") as sub:
        yield sub


async def test_qos0_qos1_order_and_retain(
    mosquitto: MosquittoBroker, subscriber: Subscriber
) -> None:
    calls = Calls()
    broker = make(mosquitto.port, calls)
    await broker.async_start()
    try:
        await until(lambda: broker.connected, what="the connection")
        for i in range(300):
            assert broker.publish("saymon/q0", str(i), 0)
            assert broker.publish("saymon/q1", str(i).encode(), 1)
        assert broker.publish("saymon/kept", "value", 1, retain=True)
        await subscriber.wait_for(lambda: subscriber.last("saymon/kept") is not None)
        await subscriber.wait_for(lambda: len(subscriber.payloads("saymon/q0")) == 300)
        await subscriber.wait_for(lambda: len(subscriber.payloads("saymon/q1")) == 300)
        assert sequence(subscriber.messages, "saymon/q0") == list(range(300))
        assert sequence(subscriber.messages, "saymon/q1") == list(range(300))
        by_topic = {m.topic: m for m in subscriber.messages}
        assert (by_topic["saymon/q0"].qos, by_topic["saymon/q0"].retain) == (0, False)
        assert (by_topic["saymon/q1"].qos, by_topic["saymon/q1"].retain) == (1, False)
        assert (by_topic["saymon/kept"].qos, by_topic["saymon/kept"].retain) == (1, True)
        await until(lambda: broker.stats()["acknowledged"] == 301, what="all PUBACKs")
        stats = broker.stats()
        assert stats["published"] == 601
        assert stats["inflight"] == 0
        assert stats["queued"] == 0
        assert stats["connects"] == 1
        assert stats["last_error"] is None
    finally:
        await broker.async_stop()
    # A subscriber that arrives later gets the retained message.
    async with Subscriber(mosquitto.port, "saymon/kept") as late:
        await late.wait_for(lambda: late.retained("saymon/kept") == b"value")
    assert calls.connected == 1
    assert calls.threads == {threading.get_ident()}  # callbacks ran in the event loop


async def test_clean_stop_publishes_offline_and_joins(
    mosquitto: MosquittoBroker, subscriber: Subscriber
) -> None:
    calls = Calls()
    broker = make(mosquitto.port, calls)
    assert broker.publish("saymon/early", "queued before start", 1)
    await broker.async_start()
    await until(lambda: broker.connected)
    assert len(sender_threads()) == 1
    assert broker.publish(STATUS, "online", 1, retain=True)
    await broker.async_stop()
    assert sender_threads() == []
    assert not broker.connected
    await broker.async_stop()  # idempotent
    assert not broker.publish("saymon/late", "after stop")

    await subscriber.wait_for(lambda: subscriber.retained(STATUS) == b"offline")
    assert subscriber.payloads("saymon/early") == [b"queued before start"]
    assert calls.disconnected == []  # our own stop is not reported
    # The broker got a DISCONNECT, so no Last Will (a second "offline") follows.
    await asyncio.sleep(0.3)
    assert subscriber.payloads(STATUS) == [b"online", b"offline"]


async def test_stop_timeout_drops_the_connection_so_the_will_says_offline(
    mosquitto: MosquittoBroker, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    """Unacknowledged at the deadline: no DISCONNECT, so the broker publishes the Will."""
    proxy = SlowProxy(mosquitto.port)
    await proxy.start()
    broker = make(proxy.port)
    await broker.async_start()
    try:
        await until(lambda: broker.connected)
        proxy.delay = 10.0  # PUBACKs from now on arrive far too late
        for i in range(100):
            broker.publish("saymon/seq", str(i), 1)
        started = time.monotonic()
        await broker.async_stop(timeout=0.5)
        assert time.monotonic() - started < 3.0
        assert sender_threads() == []
    finally:
        await broker.async_stop()
        await proxy.close()
    # Our own "offline" (sent, never acknowledged) and then the broker's Last Will.
    await subscriber.wait_for(lambda: subscriber.payloads(STATUS) == [b"offline", b"offline"])
    assert subscriber.retained(STATUS) == b"offline"
    assert sequence(subscriber.messages, "saymon/seq") == list(range(100))
    assert any("stop timeout ran out" in r.getMessage() for r in caplog.records)


async def test_last_will_when_the_connection_dies(
    mosquitto: MosquittoBroker, subscriber: Subscriber
) -> None:
    proxy = SlowProxy(mosquitto.port)
    await proxy.start()
    calls = Calls()
    broker = make(proxy.port, calls)
    await broker.async_start()
    try:
        await until(lambda: broker.connected)
        broker.publish(STATUS, "online", 1, retain=True)
        await subscriber.wait_for(lambda: subscriber.retained(STATUS) == b"online")

        await proxy.cut()  # no DISCONNECT reaches the broker; new connections are refused
        await subscriber.wait_for(lambda: subscriber.retained(STATUS) == b"offline", what="Will")
        will = subscriber.last(STATUS)
        assert will is not None
        assert (will.qos, will.retain) == (1, True)
        await until(lambda: not broker.connected and calls.disconnected != [])
        assert calls.disconnected == ["connection lost"]
        assert broker.publish("saymon/while-away", "kept", 1)

        await proxy.resume()
        await until(lambda: calls.connected == 2, what="the reconnect")
        await subscriber.wait_for(lambda: subscriber.payloads("saymon/while-away") == [b"kept"])
        stats = broker.stats()
        assert (stats["connects"], stats["disconnects"]) == (2, 1)
        assert calls.threads == {threading.get_ident()}
    finally:
        await broker.async_stop()
        await proxy.close()
    await subscriber.wait_for(lambda: subscriber.payloads(STATUS)[-1:] == [b"offline"])


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_subscription_in_the_loop_and_again_after_a_reconnect(
    mosquitto: MosquittoBroker, subscriber: Subscriber, protocol: str
) -> None:
    """What discovery needs for birth messages: made on every connection, handed to the loop."""
    received: list[tuple[bytes, int]] = []
    calls = Calls()
    broker = make(mosquitto.port, calls, config={"protocol": protocol})
    broker.subscribe("saymon/in", lambda payload: received.append((payload, threading.get_ident())))
    subscriber.publish("saymon/in", b"one", retain=True)  # arrives whenever the SUBSCRIBE does
    await broker.async_start()
    try:
        await until(lambda: [payload for payload, _ in received] == [b"one"], what="one")
        assert {thread for _, thread in received} == {threading.get_ident()}  # the event loop
        subscriber.publish("saymon/other", b"not subscribed")
        await mosquitto.restart(downtime=0.3)  # persistence off: no session, no retained
        await until(lambda: calls.connected == 2, timeout=20, what="the reconnect")
        await subscriber.wait_for(lambda: subscriber.connects == 2, timeout=20)
        subscriber.publish("saymon/in", b"two", retain=True)
        await until(lambda: [payload for payload, _ in received] == [b"one", b"two"], what="two")
    finally:
        await broker.async_stop()
    subscriber.publish("saymon/in", b"three")
    await asyncio.sleep(0.3)
    assert [payload for payload, _ in received] == [b"one", b"two"]


async def test_70k_qos1_through_lagging_acks_all_arrive(
    mosquitto: MosquittoBroker, subscriber: Subscriber
) -> None:
    """More than 65,535 QoS 1 messages outstanding would make paho drop some silently."""
    total = 70_000
    proxy = SlowProxy(mosquitto.port, delay=0.5)  # sure to fill the window first
    await proxy.start()
    broker = make(proxy.port, max_inflight=1000)
    await broker.async_start()
    try:
        await until(lambda: broker.connected)
        started = time.perf_counter()
        for i in range(total):
            assert broker.publish("saymon/seq", str(i), 1)
        await until(lambda: broker.stats()["inflight_peak"] == 1000, what="a full window")
        proxy.delay = 0.05  # then acknowledgements still lag, but the test ends sooner
        await subscriber.wait_for(
            lambda: len(subscriber.messages) >= total, timeout=90, what="70,000 messages"
        )
        await until(lambda: broker.stats()["acknowledged"] == total, timeout=30)
        elapsed = time.perf_counter() - started
        stats = broker.stats()
    finally:
        await broker.async_stop()
        await proxy.close()
    seen = Counter(sequence(subscriber.messages, "saymon/seq"))
    assert set(seen) == set(range(total))
    assert max(seen.values()) == 1
    assert sequence(subscriber.messages, "saymon/seq") == list(range(total))
    # The window filled up and was never exceeded.
    assert stats["inflight_peak"] == 1000
    assert stats["published"] == total
    # Handed to paho at once, more than 65,535 would have been unacknowledged.
    queue_peak = stats["queue_peak"]
    assert isinstance(queue_peak, int)
    assert queue_peak > 65_535
    print(f"\n70,000 QoS 1 through lagging acks: {elapsed:.1f} s ({total / elapsed:,.0f} msg/s)")


async def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path) -> None:
    total = 12_000
    async with MosquittoBroker(tmp_path / "broker") as mosquitto:
        await mosquitto.stop()
        await mosquitto.start(persistent=True)  # keeps the subscriber's session over restarts
        async with Subscriber(
            mosquitto.port, "saymon/#", client_id="restart-sub", persistent=True
        ) as sub:
            calls = Calls()
            broker = make(mosquitto.port, calls)
            await broker.async_start()
            try:
                await until(lambda: broker.connected)
                restart: asyncio.Task[None] | None = None
                for start in range(0, total, 250):
                    for i in range(start, start + 250):
                        assert broker.publish("saymon/seq", str(i), 1)
                    if start == 3000:
                        restart = asyncio.create_task(mosquitto.restart(downtime=1.0))
                    await asyncio.sleep(0.01)
                assert restart is not None
                await restart
                await sub.wait_for(
                    lambda: len(set(sequence(sub.messages, "saymon/seq"))) == total,
                    timeout=30,
                    what="every sequence number",
                )
                await until(
                    lambda: broker.stats()["queued"] == 0 and broker.stats()["inflight"] == 0
                )
                stats = broker.stats()
            finally:
                await broker.async_stop()
    seen = Counter(sequence(sub.messages, "saymon/seq"))
    duplicates = sum(count - 1 for count in seen.values())
    print(
        f"\nbroker restart: {duplicates} duplicates, {stats['requeued']} re-sent, "
        f"{calls.connected} connects, disconnect reasons {calls.disconnected}"
    )
    assert set(seen) == set(range(total))
    assert calls.connected >= 2
    assert stats["disconnects"] == calls.connected - 1 >= 1
    assert calls.threads == {threading.get_ident()}


async def test_unreachable_at_start_then_messages_arrive(
    mosquitto: MosquittoBroker, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the broker's address at first (connection refused), later it does.

    The refusing address is a proxy that is not listening yet: then the subscriber is
    subscribed before our client can connect, which a broker process started late could not
    promise (Mosquitto 2.0.11 also mishandles QoS 0/1 mixes queued for an offline session).
    """
    proxy = SlowProxy(mosquitto.port)
    proxy.port = free_port()  # refused until resume()
    broker = make(proxy.port, reconnect_max=0.3)
    await broker.async_start()
    try:
        for i in range(500):
            assert broker.publish("saymon/seq", str(i), i % 2)
        await until(lambda: broker.stats()["last_error"] is not None)
        await asyncio.sleep(1.0)  # several attempts
        stats = broker.stats()
        assert (stats["connects"], stats["queued"]) == (0, 500)
        assert str(stats["last_error"]).startswith("cannot_connect")
        assert not broker.connected

        await proxy.resume()
        await subscriber.wait_for(lambda: len(subscriber.payloads("saymon/seq")) == 500)
        # MQTT orders messages per QoS level; Mosquitto may pass QoS 0 ones ahead of QoS 1
        # ones waiting for the subscriber's window.
        for qos in (0, 1):
            received = [int(m.payload) for m in subscriber.messages if m.qos == qos]
            assert received == list(range(qos, 500, 2))
    finally:
        await broker.async_stop()
        await proxy.close()
    where = f"127.0.0.1:{proxy.port}"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [text.split(" (")[0] for text in warnings] == [f"Cannot connect to MQTT broker {where}"]
    mqtt_client = "custom_components.saymon.mqtt."
    infos = [r.getMessage() for r in caplog.records if r.name.startswith(mqtt_client)]
    assert f"Connection to MQTT broker {where} restored" in infos


async def test_queue_overflow_drops_the_newest(
    mosquitto: MosquittoBroker, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make(mosquitto.port, queue_size=10)
    results = [broker.publish("saymon/seq", str(i), 1) for i in range(15)]
    assert results == [True] * 10 + [False] * 5
    stats = broker.stats()
    assert (stats["queued"], stats["queue_peak"], stats["dropped_overflow"]) == (10, 10, 5)
    assert len([r for r in caplog.records if "is full" in r.getMessage()]) == 1
    await broker.async_start()
    try:
        await subscriber.wait_for(lambda: len(subscriber.payloads("saymon/seq")) == 10)
        assert sequence(subscriber.messages, "saymon/seq") == list(range(10))
    finally:
        await broker.async_stop()


async def test_invalid_messages_are_refused_not_raised(
    mosquitto: MosquittoBroker, subscriber: Subscriber
) -> None:
    broker = make(mosquitto.port)
    assert not broker.publish("saymon/+", "x")
    assert not broker.publish("", "x")
    assert not broker.publish("saymon/ok", "x", qos=3)
    assert broker.stats()["dropped_invalid"] == 3
    assert broker.stats()["queued"] == 0
    # What only paho can refuse is dropped in the sender thread, which carries on.
    payload: Any = {"not": "bytes"}
    assert broker.publish("saymon/bad", payload, 1)
    assert broker.publish("saymon/ok", "after", 1)
    await broker.async_start()
    try:
        await subscriber.wait_for(lambda: subscriber.payloads("saymon/ok") == [b"after"])
        assert broker.stats()["dropped_invalid"] == 4
        assert subscriber.payloads("saymon/bad") == []
    finally:
        await broker.async_stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_wrong_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with MosquittoBroker(tmp_path / "broker") as mosquitto:
        await mosquitto.stop()
        await mosquitto.start(password=(USER, PASSWORD))
        good = BrokerConfig("127.0.0.1", mosquitto.port, USER, PASSWORD, protocol=protocol)
        bad = BrokerConfig("127.0.0.1", mosquitto.port, USER, PASSWORD + "x", protocol=protocol)
        anonymous = BrokerConfig("127.0.0.1", mosquitto.port, protocol=protocol)
        assert await async_test_connection(good) is None
        assert await async_test_connection(bad) == "invalid_auth"
        assert await async_test_connection(anonymous) == "invalid_auth"

        calls = Calls()
        proxy = SlowProxy(mosquitto.port)  # counts the attempts
        await proxy.start()
        broker = make(
            proxy.port,
            calls,
            config={"username": USER, "password": PASSWORD + "x", "protocol": protocol},
            reconnect_min=0.05,
            reconnect_max=0.1,
        )
        await broker.async_start()
        try:
            await until(lambda: proxy.accepted >= 4, what="several attempts")
            assert broker._thread is not None
            assert broker._thread.is_alive()
            stats = broker.stats()
        finally:
            await broker.async_stop()
            await proxy.close()
    assert stats["connects"] == 0
    assert str(stats["last_error"]).startswith("invalid_auth")
    assert calls.connected == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Cannot connect to MQTT broker" in warnings[0].getMessage()
    # The password appears nowhere.
    with pytest.raises(ValueError, match="protocol") as invalid:
        BrokerConfig("127.0.0.1", password=PASSWORD, protocol="4")
    for text in (
        caplog.text,
        repr(bad),
        str(bad),
        repr(broker),
        str(stats),
        str(invalid.value),
        mosquitto.log(),
    ):
        assert PASSWORD not in text


async def test_unreachable_port() -> None:
    port = free_port()
    assert await async_test_connection(BrokerConfig("127.0.0.1", port)) == "cannot_connect"
    assert await async_test_connection(BrokerConfig("127.0.0.1", port, protocol="5")) == (
        "cannot_connect"
    )


async def test_tls(tmp_path: Path) -> None:
    certs = write_self_signed(tmp_path)
    ca = certs.cert.read_text()
    async with MosquittoBroker(tmp_path / "broker") as mosquitto:
        await mosquitto.stop()
        await mosquitto.start(tls=certs)
        port = mosquitto.port

        assert await async_test_connection(BrokerConfig("127.0.0.1", port, tls=True)) == (
            "tls_error"
        )
        trusted = BrokerConfig("127.0.0.1", port, tls=True, ca_cert=ca)
        assert await async_test_connection(trusted) is None
        unverified = BrokerConfig("127.0.0.1", port, tls=True, verify=False)
        assert await async_test_connection(unverified) is None
        assert await async_test_connection(BrokerConfig("127.0.0.1", port)) == "cannot_connect"
        assert "BEGIN CERTIFICATE" not in repr(trusted)

        async with Subscriber(port, "saymon/#", tls=certs.client_context()) as sub:
            for config in ({"tls": True, "ca_cert": ca}, {"tls": True, "verify": False}):
                broker = make(port, config=config)
                await broker.async_start()
                try:
                    for i in range(1000):
                        broker.publish("saymon/tls", str(i), 1)
                    await until(lambda: broker.stats()["acknowledged"] == 1000)  # noqa: B023
                finally:
                    await broker.async_stop()
            await sub.wait_for(lambda: len(sub.payloads("saymon/tls")) == 2000)
            assert sequence(sub.messages, "saymon/tls") == list(range(1000)) * 2
            assert sub.payloads(STATUS) == [b"offline", b"offline"]

            rejected = make(port, config={"tls": True})
            await rejected.async_start()
            try:
                await until(lambda: rejected.stats()["last_error"] is not None)
            finally:
                await rejected.async_stop()
            assert str(rejected.stats()["last_error"]).startswith("tls_error: certificate")


async def test_mqtt5(mosquitto: MosquittoBroker, subscriber: Subscriber) -> None:
    assert (
        await async_test_connection(BrokerConfig("127.0.0.1", mosquitto.port, protocol="5")) is None
    )
    proxy = SlowProxy(mosquitto.port)
    await proxy.start()
    broker = make(proxy.port, config={"protocol": "5"})
    await broker.async_start()
    try:
        await until(lambda: broker.connected)
        # Mosquitto announces Receive Maximum 20 in CONNACK; more unacknowledged would break
        # the protocol.
        assert broker.stats()["inflight_limit"] == 20
        for i in range(2000):
            broker.publish("saymon/v5", str(i), 1)
        await subscriber.wait_for(lambda: len(subscriber.payloads("saymon/v5")) == 2000)
        assert sequence(subscriber.messages, "saymon/v5") == list(range(2000))
        assert broker.stats()["inflight_peak"] == 20
        await proxy.cut()
        await subscriber.wait_for(lambda: subscriber.retained(STATUS) == b"offline", what="Will")
    finally:
        await broker.async_stop()
        await proxy.close()


@pytest.mark.parametrize("qos", [0, 1])
async def test_throughput_straight_to_mosquitto(mosquitto: MosquittoBroker, qos: int) -> None:
    """Measured and printed (``-s``), not asserted: the machine decides the numbers."""
    total = 20_000
    broker = make(mosquitto.port)
    await broker.async_start()
    try:
        await until(lambda: broker.connected)
        payload = b'{"schema":1,"id":"5f1e0c2a9b","name":"core-switch-17","state_id":"3"}'
        started = time.perf_counter()
        for _ in range(total):
            broker.publish("saymon/bench", payload, qos)
        enqueued = time.perf_counter() - started
        done = "acknowledged" if qos else "published"
        await until(lambda: broker.stats()[done] == total, timeout=60)
        elapsed = time.perf_counter() - started
    finally:
        await broker.async_stop()
    print(
        f"\nQoS {qos}: {total:,} messages in {elapsed:.2f} s = {total / elapsed:,.0f} msg/s "
        f"({done}); publish() in the event loop: {enqueued / total * 1e6:.2f} us each"
    )
