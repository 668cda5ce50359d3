"""Benchmarks of the SAYMON integration (issue 6): ``scripts/bench`` / ``python -m tools.bench``.

Not a test package: nothing here is named ``test_*``, so pytest never collects it. Each
measurement runs in its own Python process (a crash or a stuck server costs one figure, not
the run; the process's memory is its own), prints its figures as JSON, and the command line
front end (:mod:`tools.bench.cli`) puts them in one table beside their targets.
"""
