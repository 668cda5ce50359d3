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
    ("heap_growth_mb", "heap growth settled MB"),
    ("heap_under_load_growth_mb", "heap growth under load MB"),
    ("drain_s", "drain s"),
    ("comet_queue_max", "Comet queue max"),
    ("sim_backlog_max", "SAYMON backlog max"),
    ("mirror_queue_max", "MQTT queue max"),
    ("storm_lag_max", "storm lag max"),
    ("tasks", "tasks min-max"),
    ("tasks_settled", "tasks settled"),
    ("warnings", "warnings"),
    ("truth_equal", "truth equal"),
)
_SOAK_DETAILS = (
    ("heap_settled_mb", "heap settled (after warm-up, at the end), MB"),
    ("heap_peak", "heap peak under load"),
    ("heap_vs_backlog", "heap under load against the messages waiting in queues"),
    ("tracemalloc_frames", "tracemalloc frames per allocation"),
    ("sim_backlog_mb_max", "SAYMON backlog max, MB"),
    ("mirror_inflight_max", "MQTT unacknowledged max"),
    ("listeners", "bus listeners"),
    ("timers", "loop timers"),
    ("own_tasks", "tasks without the simulator's, min-max"),
    ("own_tasks_settled", "tasks without the simulator's, settled (after warm-up, at the end)"),
    ("tasks_extra_at_peak", "tasks beyond the settled set at the peak"),
    ("tasks_missing_at_low", "settled tasks missing at the low"),
    ("tasks_left_settled", "tasks left at the end beyond the warm-up's"),
    ("closed_ids_remembered", "closed incident ids remembered (settled; bounded at 10,000)"),
    ("measured_blobs", "integration files measured (git blob ids)"),
)


def record(section: str, row: Mapping[str, Any]) -> None:
    """Add one row to a section (``faults``, ``inputs`` or ``soak``)."""
    RESULTS.setdefault(section, []).append(dict(row))


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(_cell(item) for item in value)
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
            if key == "soak":
                parts.extend(_soak_details(row) for row in rows)
    return "\n\n".join(parts)


def _soak_details(row: Mapping[str, Any]) -> str:
    """The soak's figures that do not fit a table cell, and its top growing allocation sites."""
    lines = [f"- {title}: {_cell(row[key])}" for key, title in _SOAK_DETAILS if key in row]
    sites = row.get("top_growth") or []
    if sites:
        lines.append("- allocation sites that grew most between the settled heaps:")
        lines.extend(f"  - {site}" for site in sites)
    return "Soak details\n\n" + "\n".join(lines)


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
