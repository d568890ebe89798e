"""The stream runtime: one consumer of one stage's consumer group.

A :class:`Worker` reads entries of its stage's stream, runs the stage on each job and hands
the job on. What it guarantees, and how:

* Nothing is lost: an entry is acknowledged only in the same atomic script that records
  the stage's outcome and queues the next stage (:meth:`JobStore.finish`,
  :meth:`JobStore.fail`). A crash before that leaves the entry pending.
* Crashed consumers' entries are reclaimed with XAUTOCLAIM once idle for
  ``CLAIM_IDLE_SECONDS``; a running job heartbeats its entry (XCLAIM JUSTID) from the event
  loop while the stage works in a thread, so a long job is never stolen. A consumer is
  removed from the group only when it has nothing pending.
* A failed attempt costs only its own job. A failure a retry cannot fix (see
  :func:`is_permanent`) fails the job at once with the reason. Any other failure sets the
  job aside in the stage's retry set, acknowledging the entry in the same atomic script
  (:meth:`JobStore.retry_later`); its delay grows with the job's own attempts (1 s, 2 s,
  4 s ... up to a minute), and meanwhile the worker serves other entries. Every worker of
  the stage moves due retries back into the stream (:meth:`JobStore.promote_retries`), each
  exactly once, as new entries that carry the count of earlier attempts.
* An entry delivered more than ``MAX_DELIVERIES`` times (counting the attempts of the
  entries it was retried from) goes to the dead-letter stream and its job fails with the
  reason; the worker moves on.
* Lost connections, a restarted server and a missing stream or group (a wiped server) are
  survived with backoff; the worker then re-reads its own pending entries first.
* SIGTERM stops reading and lets the current job finish; a second one exits at once, the
  entry stays pending and another consumer reclaims it.

An :class:`ObserverWorker` consumes an observer's stream the same way (see
:class:`pipeline.stage.ObserverSpec`), but never changes a job: it records each attempt
in the observer's record of the job, and an attempt that asks to be repeated later
(:class:`RetryLater`), or that crashed, is acknowledged and put in the stream's retry set
in one step, like a stage's retry, from which every worker of the observer queues it again
once due. So a waiting retry holds up
no other event, and survives any restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from redis.exceptions import ResponseError

from pipeline import allocator, janitor, metrics
from pipeline.connection import CONNECTION_ERRORS, MAYBE_OUTAGE, Backoff, is_outage
from pipeline.errors import JobGone, OwnershipLost, PermanentError, RetryLater, TransientError
from pipeline.keys import LIVE
from pipeline.logs import adopt_stray_loggers, job_context, job_log
from pipeline.settings import Settings
from pipeline.stage import EventContext, JobContext, Observer, Stage
from pipeline.store import Delivery, JobStore, Outcome
from pipeline.types import COMPLETED, EventMessage, Job, Options, StageStatus, StreamMessage

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str] | None]
T = TypeVar("T")
M = TypeVar("M", bound=StreamMessage)

#: Seconds between progress writes: a stage may report as often as it likes.
PROGRESS_INTERVAL = 0.5
#: A job's first retry waits this long; each further one twice as long, up to the cap (a
#: device out of memory, a lost connection need time to recover).
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0

#: What a stage raises that no retry can fix: a deterministic computation on the same input
#: fails the same way again. These are bugs or bad input (a malformed value, a missing key,
#: a wrong type), so the job fails at once with the error as its reason instead of holding
#: retries. Errors of the outside world (OSError: connections, files, timeouts; MemoryError;
#: anything unknown, e.g. a RuntimeError from a device) are retried. A class that is both
#: (io.UnsupportedOperation is an OSError and a ValueError) counts as transient: a wrong
#: guess there costs a few bounded retries, the other way a job that could have succeeded.
PERMANENT_BUILTINS: tuple[type[Exception], ...] = (
    ValueError, TypeError, LookupError, AttributeError, ArithmeticError, NotImplementedError,
    AssertionError)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


def is_permanent(exc: Exception) -> bool:
    """Whether a retry cannot fix ``exc``, raised by a stage (see PERMANENT_BUILTINS)."""
    if isinstance(exc, TransientError | OSError | MemoryError):
        return False
    return isinstance(exc, (PermanentError, *PERMANENT_BUILTINS))


def retry_delay(attempts: int) -> float:
    """Seconds a job waits after its ``attempts``-th failed attempt at a stage."""
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** max(attempts - 1, 0))


def consumer_is_dead(idle_ms: float, settings: Settings) -> bool:
    """Whether a consumer that has not touched its group for ``idle_ms`` is taken for dead
    (by the health check, and by the workers that remove such consumers).

    Workers block on reads for at most BLOCK_SECONDS and heartbeat running jobs every
    quarter of CLAIM_IDLE_SECONDS, so a live one is never idle much longer than either.
    """
    limit = max(3 * settings.claim_idle_seconds, 10 * settings.block_seconds, 30.0)
    return idle_ms > limit * 1000


class Consumer:
    """Consumes one stream of a stage's consumer group until asked to stop: what every
    worker does but handling an entry."""

    def __init__(self, stage: Stage[Any, Any, Any] | Observer[Any], store: JobStore, *,
                 lane: str = LIVE, consumer: str | None = None) -> None:
        self.stage = stage
        self.store = store
        self.settings = store.settings
        self.lane = lane
        self.stream = store.keys.stream(stage.name, lane)
        self.group = store.keys.group(stage.name, lane)
        self.consumer = consumer or self.settings.consumer_name or default_consumer_name()
        self._stopping = False
        self._backoff = Backoff()  # for Redis outages
        self._group_ready = False
        self._read_history = True
        self._last_maintenance = 0.0
        self.jobs_done = 0

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: finish the current job, then stop. Second call: exit at once."""
        if self._stopping:
            log.warning("second stop signal: exiting now; the current entry stays pending")
            os._exit(143)
        log.info("stop requested: finishing the current job, then exiting")
        self._stopping = True

    async def run(self) -> None:
        await asyncio.to_thread(self.stage.setup, self.settings)
        # The libraries the setup loaded may have given their loggers handlers of their own.
        adopt_stray_loggers()
        log.info("%s worker %s ready (group %s)", self.stage.name, self.consumer, self.group)
        while not self._stopping:
            try:
                await self._step()
                self._backoff.reset()
            except ResponseError as exc:
                if _stream_gone(exc):
                    log.warning("consumer group %s is missing; creating it again", self.group)
                    self._group_ready = False
                    continue
                if not is_outage(exc):
                    raise
                # MISCONF (it cannot persist, e.g. a full disk) and the like: an outage too.
                log.warning("Redis cannot serve (%s); retrying", exc)
                self._read_history = True
                await self._backoff.sleep()
            except CONNECTION_ERRORS as exc:
                log.warning("Redis unreachable (%s); retrying", exc)
                self._group_ready = False
                self._read_history = True
                await self._backoff.sleep()
        log.info("%s worker %s stopped after %d jobs", self.stage.name, self.consumer,
                 self.jobs_done)

    async def _step(self) -> None:
        if not self._group_ready:
            await self._ensure_group()
        _, next_retry = await self.store.promote_retries(self.stage.name, self.lane)
        entry = await self._next_entry(next_retry)
        if entry is not None:
            # Every line logged while the job is handled names it, the libraries' too.
            with job_context((entry[1] or {}).get("job_id"), self.stage.name):
                await self._handle(*entry)
        if time.monotonic() - self._last_maintenance > self._maintenance_interval:
            await self._maintain()

    async def _ensure_group(self) -> None:
        try:
            # From id 0: entries queued before any worker of this stage existed count too.
            await self.store.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- reading --------------------------------------------------------------------------

    async def _next_entry(self, next_retry: float | None = None) -> Entry | None:
        """The next entry to work on; a blocking read waits no longer than until
        ``next_retry`` (seconds), when a retry is due to be queued."""
        redis = self.store.redis
        if self._read_history:
            # Our own pending entries first (a restart under the same consumer name).
            entry = _first_entry(await redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=1))
            if entry is not None:
                return entry
            self._read_history = False
        claimed = await self._reclaim()
        if claimed is not None:
            return claimed
        if self._stopping:
            return None
        block = self.settings.block_seconds
        if next_retry is not None:
            block = min(block, next_retry)
        return _first_entry(await redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=1,
            block=max(int(block * 1000), 1)))  # 0 would block for ever

    async def _reclaim(self) -> Entry | None:
        """One entry of a dead consumer, if any has been idle long enough."""
        cursor = "0-0"
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        while True:
            cursor, entries, *_ = await self.store.redis.xautoclaim(
                self.stream, self.group, self.consumer, idle_ms, start_id=cursor, count=1)
            if entries:
                entry_id, fields = entries[0]
                log.info("job=%s stage=%s reclaimed entry %s of a dead consumer",
                         (fields or {}).get("job_id"), self.stage.name, entry_id)
                return entry_id, fields
            # XAUTOCLAIM scans a bounded part of the pending list per call: follow the cursor.
            if cursor in ("0-0", b"0-0"):
                return None

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self.store.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 0

    async def _handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        raise NotImplementedError

    async def _read(self, entry_id: str, fields: dict[str, str] | None,
                    kind: type[M]) -> tuple[M, Delivery] | None:
        """The entry's message and delivery; None once an entry without them is dealt with
        (acknowledged when empty, dead-lettered when malformed)."""
        if not fields:  # trimmed or deleted while pending: nothing left to do
            await self.store.redis.xack(self.stream, self.group, entry_id)
            return None
        try:
            message = msgspec.convert(fields, kind, strict=False)
        except msgspec.ValidationError as exc:
            await self._dead_letter_malformed(entry_id, fields, str(exc))
            return None
        return message, Delivery(self.stage.name, self.group, self.consumer, entry_id,
                                 message.job_id, message.run, self.lane)

    async def _dead_letter_malformed(self, entry_id: str, fields: dict[str, str],
                                     error: str) -> None:
        log.error("malformed entry %s dead-lettered: %s", entry_id, error)
        async with self.store.redis.pipeline(transaction=True) as tx:
            record: dict[Any, Any] = {**fields, "entry_id": entry_id,
                                      "reason": f"malformed entry: {error}"}
            tx.xadd(self.store.keys.dead_letters(self.stage.name), record)
            tx.xack(self.stream, self.group, entry_id)
            await tx.execute()

    async def _commit(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a job's final step, riding out connection loss: the steps are safe to repeat
        (after a success the entry is acknowledged, so a repeat changes nothing)."""
        while True:
            try:
                return await op()
            except MAYBE_OUTAGE as exc:
                if not is_outage(exc):
                    raise
                log.warning("Redis unreachable while committing (%s); retrying", exc)
                await self._backoff.sleep()

    async def _heartbeat(self, d: Delivery, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.settings.claim_idle_seconds / 4)
            try:
                if not await self.store.heartbeat(d):
                    job_log(log, d.job_id, d.stage).warning(
                        "entry %s was claimed by another consumer", d.entry_id)
                    lost.set()
                    return
            except MAYBE_OUTAGE as exc:
                if not is_outage(exc):
                    raise
                continue

    # -- housekeeping ---------------------------------------------------------------------

    @property
    def _maintenance_interval(self) -> float:
        return max(self.settings.claim_idle_seconds / 2, 1.0)

    async def _maintain(self) -> None:
        self._last_maintenance = time.monotonic()
        await self._trim()
        await self._forget_dead_consumers()
        # Here too, not only in the gateway: a deployment of only workers cleans its disk.
        await janitor.sweep_if_due(self.store)

    async def _trim(self) -> None:
        """Drop entries every group has acknowledged and that are older than the retention,
        and dead letters older than the jobs they belong to."""
        redis = self.store.redis
        given_up_before = stream_id_for(time.time() - self.settings.job_ttl_seconds)
        await redis.xtrim(self.store.keys.dead_letters(self.stage.name),
                          minid=format_id(given_up_before), approximate=False)
        keep_from = stream_id_for(time.time() - self.settings.stream_retention_seconds)
        for group in await redis.xinfo_groups(self.stream):
            keep_from = min(keep_from, parse_id(group["last-delivered-id"]))
            if group["pending"]:
                summary = await redis.xpending(self.stream, group["name"])
                # None when the last pending entry was acknowledged meanwhile.
                if summary["min"] is not None:
                    keep_from = min(keep_from, parse_id(summary["min"]))
        await redis.xtrim(self.stream, minid=format_id(keep_from), approximate=False)

    async def _forget_dead_consumers(self) -> None:
        for consumer in await self.store.redis.xinfo_consumers(self.stream, self.group):
            name = consumer["name"]
            if (name != self.consumer and consumer_is_dead(consumer["idle"], self.settings)
                    and await self.store.forget_consumer(self.stream, self.group, name)):
                log.info("removed idle consumer %s (nothing pending)", name)


class Worker(Consumer):
    """Consumes one stage's stream until asked to stop."""

    stage: Stage[Any, Any, Any]

    def __init__(self, stage: Stage[Any, Any, Any], store: JobStore, *, lane: str = LIVE,
                 consumer: str | None = None) -> None:
        super().__init__(stage, store, lane=lane, consumer=consumer)
        self.spec = store.table.spec(stage.name)

    # -- one entry ------------------------------------------------------------------------

    async def _handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        read = await self._read(entry_id, fields, StreamMessage)
        if read is None:
            return
        message, d = read
        jlog = job_log(log, d.job_id, d.stage)
        deliveries = message.attempts + await self._deliveries(entry_id)
        if deliveries > self.settings.max_deliveries:
            await self._give_up(d, deliveries)
            return
        job = await self.store.get(d.job_id)
        if job is None or job.status.terminal or job.run != d.run:
            jlog.info("skipped: job is %s", "gone" if job is None else job.status)
            await self.store.ack(d)
            return
        outcome = await self.store.start_stage(d, self.spec.running, f"{d.stage} started")
        if outcome is not Outcome.OK:
            jlog.info("skipped: %s", outcome)
            await self.store.ack(d)
            return
        jlog.info("started (entry %s, delivery %d)", entry_id, deliveries)
        await self._process(d, job, jlog, deliveries)

    async def _process(self, d: Delivery, job: Job[Options],
                       jlog: logging.LoggerAdapter[Any], deliveries: int = 1) -> None:
        """Run the stage on the job; ``deliveries`` counts this attempt and the earlier."""
        files = self.store.files(d.job_id)
        lost = asyncio.Event()
        ctx = JobContext(job=job, files=files, settings=self.settings, log=jlog,
                         report=self._reporter(d, job, lost))
        heartbeat = asyncio.create_task(self._heartbeat(d, lost))
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.stage.process, ctx)
        except (JobGone, OwnershipLost) as exc:
            jlog.info("stopped: %s", exc)
            if isinstance(exc, JobGone):
                await self._commit(lambda: self.store.ack(d))
                await self._cleanup_if_gone(d)
            return
        except PermanentError as exc:
            jlog.info("failed: %s", exc)
            await self._fail(d, job, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - sorted by is_permanent, none escapes
            if is_permanent(exc):
                # Likely a bug, or input the stage did not check: the traceback is for us.
                jlog.exception("failed; a retry cannot fix %s", type(exc).__name__)
                await self._fail(d, job, f"{d.stage} failed: {type(exc).__name__}: {exc}")
            else:
                await self._retry_later(d, exc, deliveries, jlog)
            return
        finally:
            heartbeat.cancel()
            if self.spec.gives_back_memory:
                # At once rather than in a thread: it takes milliseconds, and an await here
                # could be cancelled on shutdown.
                allocator.give_back()
        seconds = time.monotonic() - started
        outcome = await self._commit(lambda: self.store.finish(d, job.plan, job.options))
        if outcome is Outcome.OK:
            completed = d.stage == job.plan[-1]
            await metrics.record(
                self.store, metrics.STAGE_RUNS.inc(d.stage, metrics.DONE),
                metrics.STAGE_SECONDS.observe(seconds, d.stage),
                metrics.JOBS_FINISHED.inc(COMPLETED) if completed else [])
        self.jobs_done += 1
        jlog.info("finished in %.2fs: %s", seconds, outcome)
        if outcome is Outcome.GONE:
            await self._cleanup_if_gone(d)

    async def _fail(self, d: Delivery, job: Job[Options], reason: str) -> None:
        if await self._commit(lambda: self.store.fail(d, reason, options=job.options)
                              ) is Outcome.OK:
            await metrics.record(self.store, metrics.job_failed(d.stage, metrics.FAILED))

    async def _retry_later(self, d: Delivery, exc: Exception, attempts: int,
                           jlog: logging.LoggerAdapter[Any]) -> None:
        """Set the job aside for another attempt after its own backoff; this worker goes
        on with the next entry at once."""
        delay = retry_delay(attempts)
        if isinstance(exc, TransientError):
            reason = str(exc)
            jlog.warning("attempt %d failed, retrying in %g s: %s", attempts, delay, reason)
        else:
            reason = f"{type(exc).__name__}: {exc}"
            jlog.exception("attempt %d failed, retrying in %g s", attempts, delay)
        detail = f"{d.stage} attempt {attempts} failed; retrying in {delay:g} s"
        outcome = await self._commit(
            lambda: self.store.retry_later(d, attempts, delay, reason, detail))
        if outcome is Outcome.OK:
            await metrics.record(self.store, metrics.STAGE_RETRIES.inc(d.stage))

    async def _give_up(self, d: Delivery, deliveries: int) -> None:
        job = await self.store.get(d.job_id)
        last = job.stages[d.stage].error if job else None
        reason = (f"{d.stage} gave up after {deliveries - 1} attempts: "
                  + (last or "the worker died or stalled each time"))
        job_log(log, d.job_id, d.stage).error("dead-lettered: %s", reason)
        outcome = await self._commit(
            lambda: self.store.fail(d, reason, dead_letter=True, deliveries=deliveries,
                                    options=job.options if job else None))
        if outcome is Outcome.OK:
            await metrics.record(self.store, metrics.job_failed(d.stage, metrics.DEAD_LETTERED))

    async def _cleanup_if_gone(self, d: Delivery) -> None:
        # The job was deleted while this stage ran: remove what the stage wrote since.
        if await self.store.get(d.job_id) is None:
            self.store.files(d.job_id).remove()

    # -- while a job runs -----------------------------------------------------------------

    def _reporter(self, d: Delivery, job: Job[Options],
                  lost: asyncio.Event) -> Callable[[float, str | None], None]:
        loop = asyncio.get_running_loop()
        last = 0.0

        def report(fraction: float, detail: str | None) -> None:
            nonlocal last
            if lost.is_set():
                raise OwnershipLost(f"entry {d.entry_id} was claimed by another consumer")
            now = time.monotonic()
            if now - last < PROGRESS_INTERVAL and fraction < 1.0:
                return
            last = now
            future = asyncio.run_coroutine_threadsafe(
                self.store.progress(d, job.plan, fraction, detail), loop)
            try:
                outcome = future.result(timeout=30)
            except MAYBE_OUTAGE as exc:
                if not is_outage(exc):
                    raise
                return  # progress is best effort; the outcome is committed with retries
            if outcome is not Outcome.OK:
                raise JobGone(f"job {d.job_id} is {outcome}")

        return report


class ObserverWorker(Consumer):
    """Consumes one observer's stream until asked to stop (see the module's docstring)."""

    stage: Observer[Any]

    async def _handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        read = await self._read(entry_id, fields, EventMessage)
        if read is None:
            return
        message, d = read
        jlog = job_log(log, d.job_id, d.stage)
        deliveries = await self._deliveries(entry_id)
        if deliveries > self.settings.max_deliveries:
            reason = (f"gave up on attempt {message.attempt} after {deliveries - 1} "
                      "deliveries: the worker died or stalled each time")
            jlog.error("dead-lettered: %s", reason)
            record: dict[Any, Any] = {**(fields or {}), "entry_id": entry_id, "reason": reason}
            await self.store.redis.xadd(self.store.keys.dead_letters(d.stage), record)
            await self._commit(lambda: self.store.observed(d, message, StageStatus.FAILED,
                                                           error=reason))
            return
        await self._commit(lambda: self.store.observed(d, message, StageStatus.RUNNING,
                                                       ack=False))
        jlog.info("%s of run %d: attempt %d (entry %s, delivery %d)", message.event,
                  message.run, message.attempt, entry_id, deliveries)
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(d, lost))
        ctx = EventContext(event=message, settings=self.settings, log=jlog)
        try:
            await asyncio.to_thread(self.stage.handle, ctx)
        except RetryLater as exc:
            reason, wait = str(exc), exc.after_seconds
            jlog.info("attempt %d failed (%s); the next in %.0f s", message.attempt, reason,
                      wait)
            outcome = await self._commit(lambda: self.store.observed(
                d, message, StageStatus.QUEUED, error=reason, retry_in=wait))
        except PermanentError as exc:
            reason = str(exc)
            jlog.warning("given up at attempt %d: %s", message.attempt, reason)
            outcome = await self._commit(lambda: self.store.observed(
                d, message, StageStatus.FAILED, error=reason))
        except Exception as exc:  # noqa: BLE001 - a crash waits like a stage's retry
            reason, wait = f"{type(exc).__name__}: {exc}", retry_delay(message.attempt)
            jlog.exception("attempt %d crashed; the next in %g s", message.attempt, wait)
            outcome = await self._commit(lambda: self.store.observed(
                d, message, StageStatus.QUEUED, error=reason, retry_in=wait))
        else:
            outcome = await self._commit(lambda: self.store.observed(d, message,
                                                                     StageStatus.DONE))
        finally:
            heartbeat.cancel()
        self.jobs_done += 1
        if outcome is Outcome.LOST:
            jlog.warning("entry %s was claimed by another consumer meanwhile", entry_id)


def _stream_gone(exc: ResponseError) -> bool:
    """Whether ``exc`` says the stream or its group no longer exists (a wiped or restarted
    server): a read answers NOGROUP, XINFO on the stream "no such key"."""
    message = str(exc)
    return message.startswith("NOGROUP") or "no such key" in message


def _first_entry(reply: Any) -> Entry | None:
    """The one entry of an XREADGROUP reply (a list in RESP2, a dict in RESP3), if any."""
    streams = list(reply.values()) if isinstance(reply, dict) else [e for _, e in reply or []]
    for entries in streams:
        if entries:
            entry_id, fields = entries[0]
            return entry_id, fields
    return None


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def stream_id_for(timestamp: float) -> tuple[int, int]:
    return max(int(timestamp * 1000), 0), 0
