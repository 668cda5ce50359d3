"""Wire-level fuzzing: random and mutated Socket.IO frames from the simulator to the integration.

The simulator writes raw WebSocket frames (``send_frames``) to the integration's Comet client:
real events, and mutations of them (flipped and inserted characters, truncation, other packet
types and namespaces, acknowledgement ids, bogus binary attachments, deep nesting, hostile
field values, wrong argument shapes, unexpected Engine.IO types, binary garbage). Afterwards:
no unhandled exception or error log, no stuck task, every frame accounted for (an event
delivered, or a rejection counted in ``CometStats.malformed``), and the client still delivers
valid events; a resync then restores the truth (the fuzzed events were not SAYMON's).
"""

from __future__ import annotations

import random
import time

import pytest

from custom_components.saymon.api.stats import MALFORMED_FRAME
from tools.simulator import STATE_ALARM, STATE_WORKING

from . import report
from .conftest import MakeRig
from .rig import wait_until
from .settings import LONG, WIRE_FRAMES
from .wire import CONNECTION_ENDERS, mutate, valid_events

# Every frame is accounted for (an event or a counted malformed frame) by our frame guards.
pytestmark = [pytest.mark.chaos, pytest.mark.library_hooks]

BATCH = 100
MARKER_TOPIC = "chaos-marker"
MARKER = f'42["{MARKER_TOPIC}",{{}}]'


async def test_wire_level_fuzzing(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=30)
    hub = await rig.start()
    stats = hub.comet.stats
    rng = random.Random(20261126)
    events_before = sum(stats.events.values())
    malformed_before = sum(stats.malformed.values())

    connects = stats.connects
    tried = mutated = pings = 0
    gaps: list[str] = []  # batches whose frames were not all accounted for, with their frames
    started = time.monotonic()

    def accounted() -> int:
        return sum(stats.events.values()) + sum(stats.malformed.values())

    for batch in range(max(1, WIRE_FRAMES // BATCH)):
        frames: list[str | bytes] = []
        announced = False  # a binary packet waits; only a Socket.IO message (4...) ends that
        for frame in valid_events(rig.sim, rng, BATCH):
            fuzzed = mutate(frame, rng) if rng.random() < 0.85 else frame
            if isinstance(fuzzed, bytes) and announced:
                fuzzed = frame  # it would be taken as the announced attachment: no outcome
            if isinstance(fuzzed, str) and fuzzed[:1] == "4":
                announced = fuzzed[:2] in ("45", "46")
            mutated += fuzzed is not frame
            frames.append(fuzzed)
        frames.append(valid_events(rig.sim, rng, 1)[0])  # closes a pending binary packet
        frames.append(MARKER)  # delivered last (frames are handled in order)
        batch_pings = sum(1 for f in frames if isinstance(f, str) and f[:1] in ("2", "6"))
        pings += batch_pings
        markers = stats.events[MARKER_TOPIC]
        before = accounted()
        assert await rig.sim.send_frames(frames) == 1
        tried += len(frames)
        # Paced by the client: a server flooding it without pause would delay its own pings
        # (one process here) until the client's Engine.IO write loop gives up.
        await wait_until(
            lambda: stats.events[MARKER_TOPIC] > markers,  # noqa: B023
            60,
            "the batch handled",
        )
        if accounted() - before != len(frames) - batch_pings and len(gaps) < 3:
            gaps.append(
                f"batch {batch}: {len(frames) - batch_pings} frames, "
                f"{accounted() - before} accounted: " + " | ".join(repr(f)[:160] for f in frames)
            )
    fuzz_seconds = time.monotonic() - started
    expected = tried - pings  # Engine.IO PING and NOOP carry nothing to count
    delivered = sum(stats.events.values()) - events_before
    rejected = sum(stats.malformed.values()) - malformed_before
    assert delivered + rejected == expected, (
        f"{expected} frames: {delivered} + {rejected}; " + "\n".join(gaps)
    )
    assert stats.connects == connects, "a fuzzed frame ended the connection"
    assert stats.malformed[MALFORMED_FRAME] > 0

    # Still delivering real events.
    target = next(o for o in rig.sim.model.objects.values() if o.state_id == STATE_WORKING)
    await rig.sim.set_state(target.id, STATE_ALARM)
    await wait_until(
        lambda: hub.model.state_of(target.id) == str(STATE_ALARM), 10, "a real event after fuzzing"
    )

    # Frames that end a connection by design: the client reconnects each time.
    enders_sent = CONNECTION_ENDERS if LONG else ["41", "x", ""]  # each costs a backoff
    for ender in enders_sent:
        before = stats.connects
        await rig.sim.send_frames([ender])
        await wait_until(lambda: stats.connects > before, 30, f"a reconnect after {ender!r}")  # noqa: B023
    enders = len(enders_sent)
    verdict = await rig.verify(
        "wire-level fuzzing",
        f"{tried} frames ({mutated} mutated) + {enders} connection enders",
        check_ledger=False,
        notes="fuzzed events are not SAYMON's: no ledger comparison; a resync restores the truth",
    )
    assert verdict.ok, verdict.explain()
    report.record(
        "inputs",
        {
            "target": "Comet client on the wire (mutated Socket.IO frames)",
            "tried": tried + enders,
            "accepted": delivered,
            "rejected": rejected,
            "crashes": 0,
            "seconds": round(fuzz_seconds, 1),
            "notes": f"{tried} frames in {fuzz_seconds:.0f} s; {pings} Engine.IO pings/noops "
            f"(nothing to count); {enders} frames ended the connection "
            "(reconnected, resynced); malformed by kind: "
            + ", ".join(f"{k} {v}" for k, v in sorted(stats.malformed.items())),
        },
    )
