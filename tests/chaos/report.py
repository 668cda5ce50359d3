"""Results of a chaos run: collected by the tests, printed as tables, written as JSON.

``python -m tests.chaos.report <file.json>`` prints the tables of a saved run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import platform
import sys
import time
from typing import Any

RESULTS: dict[str, list[dict[str, Any]]] = {"faults": [], "inputs": [], "soak": []}
"""Rows recorded by the tests of this process, per section."""

_FAULT_COLUMNS = (
    ("fault", "fault"),
    ("tried", "what it tried"),
    ("live", "live"),
    ("replayed", "replayed"),
    ("duplicates", "dup"),
    ("missing", "missing"),
    ("unrecoverable", "gone while down"),
    ("recover_s", "recover s"),
    ("truth_equal", "truth equal"),
)
_INPUT_COLUMNS = (
    ("target", "target"),
    ("tried", "inputs tried"),
    ("accepted", "accepted"),
    ("rejected", "rejected (counted)"),
    ("crashes", "unhandled"),
    ("notes", "found"),
)
_SOAK_COLUMNS = (
    ("seconds", "seconds"),
    ("events", "Comet events"),
    ("events_per_s", "events/s"),
    ("reconnects", "reconnects"),
    ("rss_growth_mb", "RSS growth MB"),
    ("heap_growth_mb", "tracemalloc growth MB"),
    ("tasks", "tasks min-max"),
    ("warnings", "warnings"),
    ("truth_equal", "truth equal"),
)


def record(section: str, row: Mapping[str, Any]) -> None:
    """Add one row to a section (``faults``, ``inputs`` or ``soak``)."""
    RESULTS.setdefault(section, []).append(dict(row))


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2f}"
    if value is None:
        return "-"
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    header = [title for _, title in columns]
    body = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def render(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Every non-empty section as a Markdown table."""
    parts: list[str] = []
    for title, key, columns in (
        ("Faults", "faults", _FAULT_COLUMNS),
        ("Hostile input", "inputs", _INPUT_COLUMNS),
        ("Soak", "soak", _SOAK_COLUMNS),
    ):
        rows = results.get(key) or []
        if rows:
            parts.append(f"{title}\n\n{_table(rows, columns)}")
            if key == "faults":
                notes = [f"- {row['fault']}: {row['notes']}" for row in rows if row.get("notes")]
                if notes:
                    parts.append("Notes\n\n" + "\n".join(notes))
    return "\n\n".join(parts)


def write(path: Path) -> None:
    """Save this process's results (with when and where they were measured)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "home_assistant": _ha_version(),
        **RESULTS,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _ha_version() -> str:
    try:
        from homeassistant.const import __version__
    except ImportError:  # pragma: no cover - the suite always runs with Home Assistant
        return "?"
    return __version__


def main(argv: Sequence[str]) -> int:
    """Print the tables of saved runs."""
    for name in argv:
        document = json.loads(Path(name).read_text())
        print(
            f"== {name} (Python {document.get('python')}, "
            f"Home Assistant {document.get('home_assistant')}, {document.get('measured_at')})\n"
        )
        print(render(document))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
