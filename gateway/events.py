"""Waiting for a job to change: a Redis pub/sub notification, never a polling loop."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.store import JobStore
from pipeline.types import Job


async def wait_for(store: JobStore, job_id: str, timeout: float,
                   done: Callable[[Job | None], bool]) -> Job | None:
    """The job once ``done(job)`` holds, or as it is when ``timeout`` seconds have passed.

    Subscribes to the job's event channel before reading the hash, so a change made between
    the read and the wait is not missed.
    """
    deadline = time.monotonic() + timeout
    async with store.redis.pubsub() as pubsub:
        await pubsub.subscribe(store.keys.events(job_id))
        # The subscription must be in force before the read: wait for its confirmation.
        await pubsub.get_message(timeout=max(timeout, 1.0))
        while True:
            job = await store.get(job_id)
            remaining = deadline - time.monotonic()
            if done(job) or remaining <= 0:
                return job
            if await pubsub.get_message(ignore_subscribe_messages=True,
                                        timeout=remaining) is None:
                return await store.get(job_id)


async def next_change(store: JobStore, job: Job, timeout: float) -> Job | None:
    """The job after its next change (or at once when it can no longer change)."""
    seen = job.updated_at, job.progress, job.status

    def changed(current: Job | None) -> bool:
        return (current is None or current.status.terminal
                or (current.updated_at, current.progress, current.status) != seen)

    return await wait_for(store, job.id, timeout, changed)


async def until_finished(store: JobStore, job_id: str, timeout: float) -> Job | None:
    """The job once completed, failed or cancelled, or as it is after ``timeout``."""
    return await wait_for(store, job_id, timeout,
                          lambda job: job is None or job.status.terminal)
