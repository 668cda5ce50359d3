"""Developer tooling: the SAYMON simulator, the benchmarks and the real-server harnesses.

Kept out of ``tests/`` (which holds tests) because the demo, the benchmarks and the chaos suite
use them too: a real Socket.IO + HTTP SAYMON simulator (``simulator/``), the Node
``socket.io@4.5.0`` server and its driver (``node_server/``, ``node_comet.py``), a private
Mosquitto broker (``mosquitto.py``) and the benchmark runner (``bench/``, ``scripts/bench``).
Nothing here is imported by the integration.
"""
