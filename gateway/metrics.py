"""GET /metrics: Prometheus text, read from Redis at scrape time.

Nothing is counted in the gateway's memory: with several gateway replicas, or after a
restart, every scrape still sees the whole pipeline. A scrape only reads, with the same
few commands however many jobs are kept: the status indexes' sizes, each stage stream's
state, and the counters and histogram of pipeline/metrics.py (written by the processes
that commit each change). prometheus-client collectors are synchronous, so the Redis reads
happen first and a collector renders their snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.apidocs import errors
from gateway.auth import ADMIN
from gateway.health import Storage, storage_state
from gateway.services import Services
from gateway.streams import StageStats, stage_stats
from pipeline import metrics as recorded
from pipeline.store import JobStore
from pipeline.types import Status
from stages.table import STAGES, JobStatus

#: The values each label takes, so that every series is there from the first scrape (at
#: 0) and rate() sees its first increase.
KNOWN_LABEL_VALUES: dict[str, Sequence[str]] = {
    "stage": STAGES,
    "status": [s.value for s in JobStatus if s.terminal],
    "outcome": recorded.STAGE_OUTCOMES,
}


@dataclass
class Snapshot:
    jobs_by_status: dict[Status, int] = field(default_factory=dict)
    stages: dict[str, StageStats] = field(default_factory=dict)
    readings: recorded.Readings = field(default_factory=recorded.Readings)
    retrying: dict[str, int] = field(default_factory=dict)
    storage: Storage | None = None  # read apart: it asks the server, not the keys


async def read_snapshot(store: JobStore) -> Snapshot:
    snap = Snapshot()
    # Expired jobs stay counted until housekeeping prunes them (pipeline/janitor.py).
    snap.jobs_by_status = await store.count_by_status()
    for stage in store.table.names:
        snap.stages[stage] = await stage_stats(store, stage)
        snap.retrying[stage] = await store.waiting_retries(stage)
    snap.readings = await recorded.read(store)
    return snap


def _label_sets(labels: Sequence[str]) -> list[tuple[str, ...]]:
    return list(product(*(KNOWN_LABEL_VALUES.get(label, ()) for label in labels)))


class SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("stt_jobs", "Jobs kept in Redis, by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], self.snap.jobs_by_status.get(status, 0))
        yield jobs
        gauges = {
            "lag": GaugeMetricFamily("stt_queue_lag", "Entries waiting for a worker",
                                     labels=["stage"]),
            "pending": GaugeMetricFamily("stt_queue_pending",
                                         "Entries delivered and not yet acknowledged",
                                         labels=["stage"]),
            "dead_letters": GaugeMetricFamily("stt_dead_letters", "Entries given up on",
                                              labels=["stage"]),
            "consumers": GaugeMetricFamily("stt_live_workers", "Live consumers",
                                           labels=["stage"]),
        }
        for stage, stats in self.snap.stages.items():
            for name, family in gauges.items():
                family.add_metric([stage], getattr(stats, name))
        yield from gauges.values()
        retrying = GaugeMetricFamily("stt_retrying", "Jobs waiting for another attempt at "
                                     "a stage after a failed one", labels=["stage"])
        for stage, count in self.snap.retrying.items():
            retrying.add_metric([stage], count)
        yield retrying
        yield from self._storage()
        yield from self._counters()
        yield from self._histograms()

    def _storage(self) -> Iterator[Metric]:
        storage = self.snap.storage
        if storage is None:
            return
        yield GaugeMetricFamily("stt_jobs_dir_free_bytes", "Free space on the disk of "
                                "JOBS_DIR", value=storage.free_bytes)
        if storage.persistence != "unknown":
            yield GaugeMetricFamily(
                "stt_redis_persistence_ok", "1 while the Redis server's last writes of its "
                "data to disk (AOF, RDB) succeeded; 0: it refuses writes (MISCONF)",
                value=float(storage.persistence == "ok"))

    def _counters(self) -> Iterator[Metric]:
        for counter, values in self.snap.readings.counters.items():
            family = CounterMetricFamily(counter.name, counter.help, labels=counter.labels)
            seeded = {labels: 0.0 for labels in _label_sets(counter.labels)}
            for labels, value in sorted({**seeded, **values}.items()):
                family.add_metric(labels, value)
            yield family

    def _histograms(self) -> Iterator[Metric]:
        for hist, series in self.snap.readings.histograms.items():
            family = HistogramMetricFamily(hist.name, hist.help, labels=hist.labels)
            empty = recorded.HistogramValues([0] * len(hist.bounds))
            seeded = {labels: empty for labels in _label_sets(hist.labels)}
            for labels, values in sorted({**seeded, **series}.items()):
                buckets = [(le, float(n))
                           for le, n in zip(hist.bounds, values.cumulative(), strict=True)]
                family.add_metric(labels, buckets, sum_value=values.sum)
            yield family


@get("/metrics", opt={ADMIN: True}, summary="Prometheus metrics", include_in_schema=True,
     responses=errors(),
     description="With API_KEYS set, needs a key of ADMIN_API_KEYS: the figures are every "
                 "key's.")
async def metrics(services: Services) -> Response[bytes]:
    registry = CollectorRegistry(auto_describe=False)
    snap = await read_snapshot(services.store)
    snap.storage = await storage_state(services)
    registry.register(SnapshotCollector(snap))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
