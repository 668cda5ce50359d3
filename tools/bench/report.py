"""Figures, their targets and the result table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
from typing import Any, Literal

Op = Literal["ge", "le", "eq", "info"]
_SYMBOL = {"ge": "≥", "le": "<", "eq": "=", "info": ""}


@dataclass(slots=True)
class Figure:
    """One measured value, optionally beside its limit.

    ``op`` says how ``value`` is judged against ``limit``: ``ge`` (at least), ``le`` (below),
    ``eq`` (exactly) or ``info`` (reported, no target). ``value`` is ``None`` when the
    measurement could not produce it (``note`` says why); that counts as a failure when there
    is a target.
    """

    measurement: str
    name: str
    value: float | None
    unit: str = ""
    op: Op = "info"
    limit: float | None = None
    scale: str = "1x"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """``None`` for figures without a target."""
        if self.op == "info" or self.limit is None:
            return None
        if self.value is None or math.isnan(self.value):
            return False
        if self.op == "ge":
            return self.value >= self.limit
        if self.op == "le":
            return self.value < self.limit
        return self.value == self.limit

    def target_text(self) -> str:
        """E.g. ``≥ 10,000 events/s``."""
        if self.op == "info" or self.limit is None:
            return ""
        return f"{_SYMBOL[self.op]} {fmt(self.limit)} {self.unit}".rstrip()

    def as_json(self) -> dict[str, Any]:
        """JSON form, with the verdict."""
        data = asdict(self)
        data["passed"] = self.passed
        data["target"] = self.target_text()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        """Inverse of :meth:`as_json` (verdict and target text are recomputed)."""
        known = {k: v for k, v in data.items() if k not in ("passed", "target")}
        return cls(**known)


def fmt(value: float | None) -> str:
    """Readable number: thousands separators, sensible decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def verdict(figure: Figure) -> str:
    """PASS, FAIL or empty."""
    passed = figure.passed
    return "" if passed is None else ("PASS" if passed else "FAIL")


def table(figures: list[Figure]) -> str:
    """A plain-text (and Markdown-compatible) table of every figure."""
    header = ["#", "figure", "scale", "value", "target", "result", "note"]
    rows = [
        [
            f.measurement,
            f.name,
            f.scale,
            f"{fmt(f.value)} {f.unit}".rstrip(),
            f.target_text(),
            verdict(f),
            f.note,
        ]
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
