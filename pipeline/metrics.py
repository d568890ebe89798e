"""Counters and a histogram that only grow, kept in Redis for Prometheus.

They live in one hash per key prefix (:attr:`Keys.metrics`), so every gateway replica and
every restart sees the same values, and a scrape reads them with one HGETALL however many
jobs are kept. The process that commits a change counts it, and only when the job script
says it changed something: a redelivered entry whose work is already recorded comes back
``lost``, ``done`` or ``terminal`` and is not counted again. The count is a command of its
own after the commit, so a process that dies or loses its connection in between leaves
that change uncounted: the counters may fall short, they never count twice.

A hash field is the metric's name and its label values, joined by ``:``; a histogram keeps
one field per bucket (not cumulative: the reader adds them up) and one for the sum. One
recording changes its fields in one script (pipeline/lua/record_metrics.lua), so a scrape
never sees half an observation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from pipeline import types
from pipeline.connection import CONNECTION_ERRORS
from pipeline.store import JobStore

log = logging.getLogger(__name__)

#: One change of one hash field: whole numbers go through HINCRBY, sums through HINCRBYFLOAT.
Increment = tuple[str, int | float]
LabelValues = tuple[str, ...]

_SEP = ":"
#: Seconds a recording's token is kept: longer than the client's retries of it can take.
_TOKEN_SECONDS = 600
#: Upper bounds (seconds) of the stage-duration buckets: from a few seconds' work to an
#: hour-long recording's slowest stage on a CPU.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

#: How a stage run ended (the ``outcome`` label of :data:`STAGE_RUNS`).
DONE = "done"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
STAGE_OUTCOMES = (DONE, FAILED, DEAD_LETTERED)


def _field(name: str, values: Sequence[str]) -> str:
    for value in values:
        if _SEP in value:
            raise ValueError(f"a metric label value must not contain {_SEP!r}: {value!r}")
    return _SEP.join((name, *values))


def _check_arity(name: str, labels: Sequence[str], values: Sequence[str]) -> None:
    if len(values) != len(labels):
        raise ValueError(f"{name} takes the labels {labels}, got {values}")


@dataclass(frozen=True)
class Counter:
    name: str  # the Prometheus name, ending in _total
    help: str
    labels: tuple[str, ...] = ()

    def inc(self, *values: str) -> list[Increment]:
        _check_arity(self.name, self.labels, values)
        return [(_field(self.name, values), 1)]


@dataclass(frozen=True)
class Histogram:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = DURATION_BUCKETS

    @property
    def bounds(self) -> tuple[str, ...]:
        """The ``le`` label of every bucket, +Inf last."""
        return (*(f"{b:g}" for b in self.buckets), "+Inf")

    def observe(self, value: float, *values: str) -> list[Increment]:
        _check_arity(self.name, self.labels, values)
        le = next((f"{b:g}" for b in self.buckets if value <= b), "+Inf")
        return [(_field(f"{self.name}_bucket", (*values, le)), 1),
                (_field(f"{self.name}_sum", values), float(value))]


JOBS_CREATED = Counter("stt_jobs_created_total", "Jobs created")
JOBS_RERUN = Counter("stt_jobs_rerun_total", "Runs started again for finished jobs")
JOBS_FINISHED = Counter("stt_jobs_finished_total",
                        "Job runs that reached a final status", ("status",))
JOBS_DELETED = Counter("stt_jobs_deleted_total", "Jobs deleted by a client")
STAGE_RUNS = Counter("stt_stage_runs_total", "Stage runs that ended, by how",
                     ("stage", "outcome"))
STAGE_RETRIES = Counter("stt_stage_retries_total",
                        "Stage attempts that failed and will be retried", ("stage",))
STAGE_SECONDS = Histogram("stt_stage_duration_seconds",
                          "Seconds a stage worked on a job, for the runs that ended done",
                          ("stage",))


def job_failed(stage: str, outcome: str) -> list[Increment]:
    """A run of ``stage`` that ended ``outcome`` and failed its job with it."""
    return STAGE_RUNS.inc(stage, outcome) + JOBS_FINISHED.inc(types.FAILED)


COUNTERS = (JOBS_CREATED, JOBS_RERUN, JOBS_FINISHED, JOBS_DELETED, STAGE_RUNS, STAGE_RETRIES)
HISTOGRAMS = (STAGE_SECONDS,)


async def record(store: JobStore, *changes: Iterable[Increment]) -> None:
    """Apply ``changes`` together, once. Best effort: with Redis unreachable the change
    goes uncounted and the caller carries on (what it committed is what matters)."""
    args: list[str | int | float] = [_TOKEN_SECONDS]
    for name, amount in (inc for change in changes for inc in change):
        args += [name, "i" if isinstance(amount, int) else "f", amount]
    if len(args) == 1:
        return
    # The client resends a call whose reply it lost; the token makes the resent one a no-op.
    keys = [store.keys.metrics, store.keys.metrics_once(secrets.token_hex(8))]
    try:
        await store.redis.register_script(_script())(keys=keys, args=args)
    except CONNECTION_ERRORS as exc:
        log.warning("metrics not recorded, Redis unreachable: %s", exc)


@cache
def _script() -> str:
    return (resources.files("pipeline") / "lua" / "record_metrics.lua").read_text()


@dataclass
class HistogramValues:
    counts: list[int]  # per bucket of Histogram.bounds, not cumulative
    sum: float = 0.0

    def cumulative(self) -> list[int]:
        total, out = 0, []
        for count in self.counts:
            total += count
            out.append(total)
        return out


@dataclass
class Readings:
    counters: dict[Counter, dict[LabelValues, float]] = field(default_factory=dict)
    histograms: dict[Histogram, dict[LabelValues, HistogramValues]] = field(
        default_factory=dict)


def parse(raw: dict[str, str]) -> Readings:
    """The hash's fields as values per metric and label values. Fields of metrics this
    version does not know (written by a newer one) are left out."""
    counters = {c.name: c for c in COUNTERS}
    buckets = {f"{h.name}_bucket": h for h in HISTOGRAMS}
    sums = {f"{h.name}_sum": h for h in HISTOGRAMS}
    out = Readings({c: {} for c in COUNTERS}, {h: {} for h in HISTOGRAMS})
    for name, text in raw.items():
        metric, *values = name.split(_SEP)
        if (counter := counters.get(metric)) and len(values) == len(counter.labels):
            out.counters[counter][tuple(values)] = float(text)
        elif (hist := buckets.get(metric)) and len(values) == len(hist.labels) + 1:
            *labels, le = values
            if le in hist.bounds:
                series = _series(out, hist, tuple(labels))
                series.counts[hist.bounds.index(le)] = int(text)
        elif (hist := sums.get(metric)) and len(values) == len(hist.labels):
            _series(out, hist, tuple(values)).sum = float(text)
    return out


def _series(out: Readings, hist: Histogram, labels: LabelValues) -> HistogramValues:
    series = out.histograms[hist]
    if labels not in series:
        series[labels] = HistogramValues([0] * len(hist.bounds))
    return series[labels]


async def read(store: JobStore) -> Readings:
    """Every counter and histogram, in one command."""
    raw: dict[str, str] = await store.redis.hgetall(store.keys.metrics)  # type: ignore[assignment]
    return parse(raw)
