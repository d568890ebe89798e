"""Operator replay: rerun every job that passed through a stage in an id or time range.

Typical use: after upgrading a model, reprocess last week's jobs from that stage. The
replay reads the stage's live stream with XRANGE, and starts a rerun of each job found
(once per job) from that stage. It is idempotent: running the same replay again skips the
jobs it already re-enqueued. With a lane other than ``live`` the reruns travel on that
lane's own streams, served only by workers started with ``--lane``, so live traffic is
never queued behind them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime

import msgspec

from pipeline import metrics
from pipeline.keys import LIVE
from pipeline.store import JobStore, Outcome

_PAGE = 500


class ReplayReport(msgspec.Struct, kw_only=True):
    stage: str
    lane: str
    dry_run: bool
    entries: int = 0
    rerun: list[str] = msgspec.field(default_factory=list)
    already_replayed: list[str] = msgspec.field(default_factory=list)
    skipped: dict[str, str] = msgspec.field(default_factory=dict)  # job id -> why


def stream_bound(text: str) -> str:
    """A stream id (``1700000000000-0``, ``-``, ``+``) or an ISO 8601 time, as an id."""
    if text in ("-", "+") or text.replace("-", "").isdigit():
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return str(int(moment.timestamp() * 1000))


async def replay(store: JobStore, stage: str, start: str = "-", end: str = "+", *,
                 lane: str = LIVE, dry_run: bool = False) -> ReplayReport:
    report = ReplayReport(stage=stage, lane=lane, dry_run=dry_run)
    start, end = stream_bound(start), stream_bound(end)
    digest = hashlib.sha256(f"{stage}\0{start}\0{end}\0{lane}".encode()).hexdigest()[:32]
    done_key = store.keys.replay(digest)
    seen: set[str] = set()
    async for job_id in _jobs_in_range(store, stage, start, end, report):
        if job_id in seen:
            continue
        seen.add(job_id)
        job = await store.get(job_id)
        if job is None:
            report.skipped[job_id] = "gone"
        elif await store.redis.sismember(done_key, job_id):
            report.already_replayed.append(job_id)
        elif dry_run:
            report.rerun.append(job_id)
        else:
            try:
                outcome = await store.rerun(job, stage, lane=lane)
            except ValueError as exc:
                report.skipped[job_id] = str(exc)
                continue
            if outcome is Outcome.OK:
                await metrics.record(store, metrics.JOBS_RERUN.inc())
                await store.redis.sadd(done_key, job_id)
                await store.redis.expire(done_key, store.settings.job_ttl_seconds)
                report.rerun.append(job_id)
            else:
                report.skipped[job_id] = outcome
    return report


async def _jobs_in_range(store: JobStore, stage: str, start: str, end: str,
                         report: ReplayReport) -> AsyncIterator[str]:
    stream = store.keys.stream(stage)
    while True:
        page: list[tuple[str, dict[str, str]]] = await store.redis.xrange(  # type: ignore[assignment]
            stream, min=start, max=end, count=_PAGE)
        for _, fields in page:
            report.entries += 1
            if fields and "job_id" in fields:
                yield fields["job_id"]
        if len(page) < _PAGE:
            return
        start = "(" + page[-1][0]
