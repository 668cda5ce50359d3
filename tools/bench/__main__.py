"""``python -m tools.bench``: run the benchmarks (see ``--help``)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
