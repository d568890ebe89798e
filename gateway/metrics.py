"""GET /metrics: Prometheus text, read from Redis at scrape time.

Nothing is counted in the gateway's memory: with several gateway replicas, or after a
restart, every scrape still sees the whole pipeline. prometheus-client collectors are
synchronous, so the Redis reads happen first and a collector renders their snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.services import Services
from gateway.streams import StageStats, stage_stats
from pipeline.store import JobStore
from pipeline.types import Status
from stages.table import JobStatus

#: Completed jobs whose stage durations feed the histogram.
RECENT_JOBS = 200
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


@dataclass
class Snapshot:
    jobs_by_status: dict[Status, int] = field(default_factory=dict)
    stages: dict[str, StageStats] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=dict)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(delta.total_seconds(), 0.0)


async def read_snapshot(store: JobStore) -> Snapshot:
    snap = Snapshot()
    # Pruning first, so jobs that expired since the janitor's last pass are not counted.
    await store.prune()
    snap.jobs_by_status = await store.count_by_status()
    for stage in store.table.names:
        snap.stages[stage] = await stage_stats(store, stage)
    recent, _ = await store.list(status=JobStatus.COMPLETED, limit=RECENT_JOBS)
    for job in recent:
        for stage, record in job.stages.items():
            seconds = _seconds(record.started_at, record.finished_at)
            if seconds is not None:
                snap.durations.setdefault(stage, []).append(seconds)
    return snap


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
        hist = HistogramMetricFamily(
            "stt_stage_duration_seconds",
            f"Stage running time over the last {RECENT_JOBS} completed jobs", labels=["stage"])
        for stage, values in sorted(self.snap.durations.items()):
            buckets = [(f"{bound:g}", float(sum(v <= bound for v in values)))
                       for bound in DURATION_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            hist.add_metric([stage], buckets, sum_value=sum(values))
        yield hist


@get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics(services: Services) -> Response[bytes]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(await read_snapshot(services.store)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
