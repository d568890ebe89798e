"""Result records (msgspec Structs), the printed tables and the markdown summary."""

from __future__ import annotations

import msgspec


class Figure(msgspec.Struct, kw_only=True):
    """One measured number, and the target it is held to (if any)."""

    name: str
    value: float
    unit: str = ""
    target: str | None = None
    passed: bool | None = None


class PartResult(msgspec.Struct, kw_only=True):
    part: str
    figures: list[Figure] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    seconds: float = 0.0

    def add(self, name: str, value: float, unit: str = "", target: str | None = None,
            passed: bool | None = None) -> Figure:
        figure = Figure(name=name, value=value, unit=unit, target=target, passed=passed)
        self.figures.append(figure)
        return figure


class Machine(msgspec.Struct, kw_only=True):
    cpu: str
    cores: int
    memory_gb: float
    python: str
    platform: str


class Report(msgspec.Struct, kw_only=True):
    machine: Machine
    date: str
    command: str
    full: bool
    parts: list[PartResult]
    wall_seconds: float = 0.0


def _value(figure: Figure) -> str:
    v = figure.value
    text = f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return f"{text} {figure.unit}".strip()


def _verdict(figure: Figure) -> str:
    return "" if figure.passed is None else ("ok" if figure.passed else "MISSED")


def table(part: PartResult) -> str:
    """A plain-text table of one part, for the terminal."""
    rows = [(f.name, _value(f), f.target or "", _verdict(f)) for f in part.figures]
    header = ("figure", "value", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"== {part.part} ({part.seconds:.0f} s)"]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines += [f"   note: {n}" for n in part.notes]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """A table for docs/performance.md: machine, date, command and one table of every figure."""
    m = report.machine
    lines = [
        "## Benchmarks", "",
        f"Machine: {m.cpu}, {m.cores} cores, {m.memory_gb:.0f} GB RAM, no GPU "
        f"({m.platform}, Python {m.python}).  ",
        f"Date: {report.date}.  ",
        f"Command: `{report.command}` ({report.wall_seconds / 60:.1f} min wall).", "",
        "| part | figure | value | target | |", "|---|---|---|---|---|",
    ]
    for part in report.parts:
        for f in part.figures:
            lines.append(f"| {part.part} | {f.name} | {_value(f)} | {f.target or ''} "
                         f"| {_verdict(f)} |")
    notes = [f"- **{p.part}**: {n}" for p in report.parts for n in p.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"
