"""Housekeeping without a gateway: the workers remove expired jobs, one process at a time."""

from __future__ import annotations

import asyncio
import os
import time

import msgspec

from pipeline import janitor
from pipeline.store import JobStore
from stages.table import JobStatus
from tests.support.stages import submit
from tests.support.workers import running_workers, until


async def test_workers_alone_remove_expired_jobs(store: JobStore) -> None:
    # No validation on replace: a TTL of a second, where settings ask for at least 60.
    store = JobStore(store.redis, msgspec.structs.replace(store.settings, job_ttl_seconds=1),
                     store.table)
    job_id = await submit(store)
    folder = store.files(job_id).root
    old = time.time() - 2 * janitor.MIN_AGE_SECONDS
    os.utime(folder, (old, old))

    async def expired() -> bool:
        return not await store.redis.exists(store.keys.job(job_id))

    await until(expired, what="the job's hash to expire")
    indexes = [store.keys.jobs_index, store.keys.status_index(JobStatus.QUEUED),
               store.keys.expiry_index]

    async def indexed() -> list[str]:
        return [i for i in indexes if await store.redis.zscore(i, job_id) is not None]

    async def pruned() -> bool:
        return not await indexed()

    assert await indexed() == indexes
    async with running_workers(store):
        await until(lambda: not folder.exists(), what="the workers to remove the files")
        await until(pruned, what="the index entries to go")


async def test_one_pass_per_interval_whoever_offers(store: JobStore) -> None:
    passes = await asyncio.gather(*(janitor.sweep_if_due(store, interval=0.5)
                                    for _ in range(4)))
    assert sorted(passes) == [False, False, False, True]
    assert not await janitor.sweep_if_due(store, interval=0.5)
    # A holder that died leaves the lock to expire: the next offer runs.
    await asyncio.sleep(0.6)
    assert await janitor.sweep_if_due(store, interval=0.5)
