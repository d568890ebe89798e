"""Part ``queue``: how long a job waits between one stage handing it on and the next stage
starting its work, with a real worker process (pipeline.worker) running a no-op stage.

What is timed, per message, on CLOCK_MONOTONIC (shared by all processes of the machine):
from just before this process sends the atomic job script that XADDs the job to the
stage's stream (JobStore.create, the same kind of script as the hand-over in
JobStore.finish) to the first line of the stage's process(). That includes the script's
round trip, the worker's blocking XREADGROUP waking up, the runtime's checks before work
(XPENDING delivery count, reading the job, the start script) and the hand-off to the
stage's thread. Messages go one at a time (the next after the previous one started), so
no message waits behind another.

The reference on the same server: XADD -> a bare XREADGROUP consumer's return, which is
what Redis's "99.9 % of deliveries within 2 ms" is about.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from benchmark.noop import STARTS
from benchmark.procs import Processes, child_env
from benchmark.report import PartResult
from benchmark.stats import percentile
from pipeline.store import JobStore, new_job_id
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import TABLE

MESSAGES = 1000
REDIS_P999_MS = 2.0


async def _through_worker(store: JobStore, messages: int) -> list[float]:
    redis = store.redis
    latencies = []
    options = JobOptions(diarize=False)
    # The first job also waits for the worker to start: not counted.
    for index in range(messages + 1):
        job_id = new_job_id()
        sent = time.monotonic_ns()
        await store.create(job_id, options)
        popped = await redis.blpop([STARTS], timeout=60)
        if popped is None:
            raise TimeoutError("the no-op worker did not start a job within 60 s")
        started_id, started = popped[1].split()
        if started_id != job_id:
            raise RuntimeError(f"expected job {job_id}, the worker started {started_id!r}")
        if index:
            latencies.append((int(started) - sent) / 1e6)
    return latencies


async def _raw(redis: Redis, stream: str, results: str, messages: int) -> list[float]:
    latencies = []
    for _ in range(messages):
        await redis.xadd(stream, {"sent": str(time.monotonic_ns())})
        popped = await redis.blpop([results], timeout=60)
        if popped is None:
            raise TimeoutError("the raw consumer did not answer within 60 s")
        sent, arrived = popped[1].split()
        latencies.append((int(arrived) - int(sent)) / 1e6)
    return latencies


async def _measure(procs: Processes, redis_url: str,
                   jobs_dir: Path) -> tuple[list[float], list[float]]:
    prefix = f"benchq{uuid.uuid4().hex[:6]}"
    settings = Settings.from_env({}, redis_url=redis_url, jobs_dir=str(jobs_dir),
                                 key_prefix=prefix)
    redis = Redis.from_url(redis_url, decode_responses=True)
    env = child_env(REDIS_URL=redis_url, JOBS_DIR=str(jobs_dir), KEY_PREFIX=prefix,
                    LOG_LEVEL="WARNING")
    worker = procs.spawn("queue-worker", ["-m", "pipeline.worker", "decode", "--stage-class",
                                          "benchmark.noop:NoopDecode", "--consumer", "noop"],
                         env)
    stream, results = f"{prefix}:raw", f"{prefix}:raw:arrivals"
    raw = procs.spawn("queue-raw", ["-m", "benchmark.noop", redis_url, stream, results], env)
    try:
        await redis.delete(STARTS)
        through = await _through_worker(JobStore(redis, settings, TABLE), MESSAGES)
        await redis.blpop([results], timeout=30)  # "ready"
        bare = await _raw(redis, stream, results, MESSAGES)
    finally:
        procs.stop(worker)
        procs.stop(raw)
        await redis.aclose()
    return through, bare


def run(work: Path, procs: Processes, redis_url: str) -> PartResult:
    part = PartResult(part="queue")
    through, bare = asyncio.run(_measure(procs, redis_url, work / "jobs-queue"))
    for q in (50.0, 99.0):
        part.add(f"XADD -> bare XREADGROUP returns: p{q:g}", percentile(bare, q), "ms")
    p999 = percentile(bare, 99.9)
    part.add("XADD -> bare XREADGROUP returns: p99.9", p999, "ms",
             f"<= {REDIS_P999_MS:g} ms (Redis docs)", p999 <= REDIS_P999_MS)
    for q in (50.0, 99.0, 99.9):
        part.add(f"job script XADD -> next stage's process() starts: p{q:g}",
                 percentile(through, q), "ms")
    part.notes.append(f"{MESSAGES} messages each, one at a time. The worker's figure includes "
                      "the XADD script's round trip and the runtime's bookkeeping before "
                      "work (XPENDING, HGETALL, start script, thread hand-off); see "
                      "benchmark/queue_part.py")
    return part
