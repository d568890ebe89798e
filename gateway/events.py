"""Waiting for a job to change: Redis pub/sub notifications, never a tight polling loop.

A gateway process holds one pattern subscription to every job's event channel, shared by
all the requests waiting on a job (long polls, POST /transcribe), so waiting clients do not
each hold a Redis connection of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from pipeline.connection import CONNECTION_ERRORS, Backoff
from pipeline.store import JobStore
from pipeline.types import Job, Options

log = logging.getLogger("gateway.events")

#: While the subscription is down (Redis unreachable, or not confirmed yet), waiters
#: re-read their job this often instead, so no change is missed.
POLL_SECONDS = 1.0


class JobEvents:
    """The gateway's subscription to job events, and the requests waiting on them."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.subscribed = False

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set at every change of the job, for as long as the block runs."""
        changed = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(changed)
        try:
            yield changed
        finally:
            waiters = self._waiters[job_id]
            waiters.discard(changed)
            if not waiters:
                del self._waiters[job_id]

    async def run(self) -> None:
        """Keep the subscription up, until cancelled."""
        backoff = Backoff()
        pattern = self.store.keys.events("*")
        while True:
            try:
                async with self.store.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    # Changes are delivered from its confirmation on.
                    while await pubsub.get_message(timeout=POLL_SECONDS) is None:
                        pass
                    self._up()
                    backoff.reset()
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            self._wake(message["channel"].rpartition(":")[2])
                        elif message["type"] == "psubscribe":
                            # redis-py reconnected and subscribed again: events may have
                            # been lost in between.
                            self._up()
            except CONNECTION_ERRORS as exc:
                log.warning("job events unavailable, waiters poll: %s", exc)
            except Exception:
                log.exception("job events failed, waiters poll")
            finally:
                self.subscribed = False
            await backoff.sleep()

    def _up(self) -> None:
        self.subscribed = True
        # Anything may have changed while there was no subscription.
        for waiters in self._waiters.values():
            for changed in waiters:
                changed.set()

    def _wake(self, job_id: str) -> None:
        for changed in self._waiters.get(job_id, ()):
            changed.set()


async def wait_for(events: JobEvents, job_id: str, timeout: float,
                   done: Callable[[Job[Options] | None], bool]) -> Job[Options] | None:
    """The job once ``done(job)`` holds, or as it is when ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    with events.watch(job_id) as changed:
        while True:
            # Cleared before the read: a change after it sets the event again.
            changed.clear()
            job = await events.store.get(job_id)
            remaining = deadline - time.monotonic()
            if done(job) or remaining <= 0:
                return job
            wait = remaining if events.subscribed else min(remaining, POLL_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)


async def next_change(events: JobEvents, job: Job[Options],
                      timeout: float) -> Job[Options] | None:
    """The job after its next change (or at once when it can no longer change)."""
    seen = job.updated_at, job.progress, job.status

    def changed(current: Job[Options] | None) -> bool:
        return (current is None or current.status.terminal
                or (current.updated_at, current.progress, current.status) != seen)

    return await wait_for(events, job.id, timeout, changed)


async def until_finished(events: JobEvents, job_id: str,
                         timeout: float) -> Job[Options] | None:
    """The job once completed, failed or cancelled, or as it is after ``timeout``."""
    return await wait_for(events, job_id, timeout,
                          lambda job: job is None or job.status.terminal)
