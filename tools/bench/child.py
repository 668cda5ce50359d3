"""Run one measurement in this process: ``python -m tools.bench.child NAME PARAMS_JSON``.

The figures go to stdout as one line ``BENCH-RESULT <json>``; logs go to stderr. A failure
still prints a result line carrying the error, so the front end reports it and goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import importlib
import json
import logging
import sys
import traceback
from typing import Any

from .report import Figure

MODULES = {
    "pipeline": "tools.bench.pipeline",
    "latency": "tools.bench.latency",
    "mirror": "tools.bench.mirror",
    "bridge": "tools.bench.bridge",
    "startup": "tools.bench.startup",
    "memory": "tools.bench.memory",
    "traps": "tools.bench.traps",
    "metrics": "tools.bench.metrics",
}
RESULT_PREFIX = "BENCH-RESULT "


def main(argv: list[str]) -> int:
    """Run ``argv[0]`` with the JSON parameters ``argv[1]``."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    name, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    out: dict[str, Any] = {"name": name, "params": params, "figures": [], "error": None}
    try:
        module = importlib.import_module(MODULES[name])
        runner: Callable[[dict[str, Any]], Coroutine[Any, Any, list[Figure]]] = module.run
        figures: list[Figure] = asyncio.run(runner(params))
        out["figures"] = [f.as_json() for f in figures]
    except Exception as err:  # noqa: BLE001 - reported, not raised: one figure, not the run
        traceback.print_exc()
        out["error"] = f"{type(err).__name__}: {err}"
    sys.stdout.write(RESULT_PREFIX + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
