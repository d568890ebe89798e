"""The job store: one Redis hash per job, changed only by atomic check-and-set scripts.

Every change runs as a Lua script that first checks the job still exists, is not
completed, failed or cancelled, and belongs to the same run. So a late update from a slow
or crashed worker never resurrects a deleted or finished job, progress never moves
backwards, and the transitions that touch streams (hand-over to the next stage, dead
letters) happen together with the job update and the acknowledgement, or not at all.

A script takes its arguments as one JSON object and is given every key it touches, so
that it could run where keys must be declared (a Redis Cluster). The statuses it sets and
tests come from pipeline.types, written into each script as it is loaded.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from types import GenericAlias
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from pipeline.errors import IdempotencyMismatch, QueueFull
from pipeline.files import JobFiles, valid_job_id
from pipeline.keys import LIVE, Keys
from pipeline.settings import Settings
from pipeline.stage import Event, StageTable
from pipeline.types import (
    COMPLETED,
    CORE_STATUSES,
    FAILED,
    TERMINAL,
    EventMessage,
    Job,
    ObserverRecord,
    Options,
    RunRecord,
    StageRecord,
    StageStatus,
    Status,
)

_STAGE_FIELDS = tuple(StageRecord.__struct_fields__)
_OBSERVER_FIELDS = tuple(ObserverRecord.__struct_fields__)
# Lua functions every script may call (pipeline/lua/_*.lua).
_PRELUDES = ("_job", "_queue")
# create.lua's first reply: 1 created, 0 idempotency key already used, 2 queue full,
# 3 idempotency key already used for another request.
_QUEUE_FULL = 2
_OTHER_REQUEST = 3
# The migration that indexed jobs by status and owner (see JobStore.migrate).
_JOB_INDEXES = "job-indexes"


class Outcome(enum.StrEnum):
    """What a job script did, or why it left the job alone."""

    OK = "ok"
    GONE = "gone"  # deleted or expired
    TERMINAL = "terminal"  # completed, failed or cancelled
    STALE = "stale"  # superseded by a newer run, or the stage is no longer running
    DONE = "done"  # this stage of this run was already recorded as done
    LOST = "lost"  # the entry belongs to another consumer now
    RUNNING = "running"  # the job has not finished: it cannot be rerun yet
    EXPIRED = "expired"  # the artifacts a rerun needs are gone


@dataclass(frozen=True)
class Delivery:
    """One stream entry as delivered to one consumer."""

    stage: str
    group: str
    consumer: str
    entry_id: str
    job_id: str
    run: int
    lane: str = LIVE


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """128 random bits: unguessable, so a job id is not a capability anyone can forge."""
    return secrets.token_hex(16)


def _constants() -> str:
    """The statuses the scripts set and test, from their one definition in pipeline.types."""
    status = ", ".join(f"{s} = '{s}'" for s in CORE_STATUSES)
    terminal = ", ".join(f"{s} = true" for s in sorted(TERMINAL))
    stage = ", ".join(f"{s.name.lower()} = '{s.value}'" for s in StageStatus)
    return (f"local STATUS = {{{status}}}\nlocal TERMINAL = {{{terminal}}}\n"
            f"local STAGE = {{{stage}}}")


@cache
def _lua(name: str) -> str:
    folder = resources.files("pipeline") / "lua"
    return "\n".join([_constants(), *((folder / f"{part}.lua").read_text()
                                       for part in (*_PRELUDES, name))])


class JobStore:
    """Reads and changes the jobs of one stage table. Safe to share between tasks of one
    event loop."""

    def __init__(self, redis: Redis, settings: Settings, table: StageTable[Any]) -> None:
        self.redis = redis
        self.settings = settings
        self.table = table
        self.keys = Keys(settings.key_prefix)
        self._scripts: dict[str, AsyncScript] = {}
        # The type a job's earlier runs are read as: list[RunRecord[<the table's options>]].
        self._runs_type = GenericAlias(list, (GenericAlias(RunRecord, (table.options,)),))

    def files(self, job_id: str) -> JobFiles:
        """The job's folder, as the stage table's files type."""
        return self.table.files.of(self.settings.jobs_path, job_id)

    async def _run(self, name: str, keys: list[str], args: Mapping[str, object], *,
                   statuses: bool = False, after: Sequence[str] = (),
                   client: Pipeline | None = None) -> Any:
        """Run script ``name`` with ``args`` as its one JSON argument. With ``statuses``,
        every status's index is appended to ``keys`` and ``args["status_keys"]`` says where
        (a script that changes a job's status must know both indexes, and the one the job
        leaves is only known from its hash); then the keys ``after``."""
        if statuses:
            index = [self.keys.status_index(s) for s in self.table.status]
            args = {**args, "status_keys": {s.value: len(keys) + i + 1
                                            for i, s in enumerate(self.table.status)}}
            keys = [*keys, *index]
        keys = [*keys, *after]
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(_lua(name))
        return await script(keys=keys, args=[msgspec.json.encode(args)], client=client)

    def _stream_ttl(self, lane: str) -> int:
        """Seconds a stream of ``lane`` is kept after its last entry (0: for good)."""
        return 0 if lane == LIVE else self.settings.job_ttl_seconds

    # -- clients' side --------------------------------------------------------------------

    async def create(
        self,
        job_id: str,
        options: Options,
        *,
        input_name: str | None = None,
        owner: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        max_seconds: float | None = None,
    ) -> tuple[str, bool]:
        """Store a new job and queue it for its first stage, in one atomic step.

        Returns ``(job_id, True)``, or ``(existing_id, False)`` when ``idempotency_key``
        was used before by the same owner and that job still exists. ``fingerprint``
        identifies the request (its upload and options): a key used before for a request
        with another fingerprint raises :class:`IdempotencyMismatch`. Raises
        :class:`QueueFull` when ``MAX_QUEUED_JOBS`` jobs already wait for the first stage:
        checked in the same step, so concurrent requests never queue more.
        ``max_seconds`` is the longest input the job accepts (see :attr:`Job.max_seconds`).
        """
        if " " in fingerprint:
            raise ValueError("a fingerprint has no spaces")
        plan = self.table.plan(options)
        now = now_iso()
        fields: dict[str, str] = {
            "id": job_id,
            "progress": "0",
            "stage_detail": f"queued for {plan[0]}",
            "created_at": now,
            "updated_at": now,
            "options": msgspec.json.encode(options).decode(),
            "plan": msgspec.json.encode(plan).decode(),
            "run": "1",
            "run_started_at": now,
            f"{plan[0]}.status": StageStatus.QUEUED,
            **self._skipped(plan),
        }
        if input_name is not None:
            fields["input_name"] = input_name
        if owner is not None:
            fields["owner"] = owner
        if max_seconds is not None:
            fields["max_seconds"] = repr(max_seconds)
        idem_key = self.keys.idempotency(owner or "", idempotency_key or "")
        if idempotency_key:
            fields["idempotency_key"] = idem_key  # so that deleting the job frees it
        limit = self.settings.max_queued_jobs
        args: dict[str, object] = {
            "job_id": job_id, "ttl": self.settings.job_ttl_seconds,
            # Microseconds: fine enough that jobs list in the order they were created.
            "created": str(time.time_ns() // 1000),
            "idempotent": bool(idempotency_key), "fingerprint": fingerprint, "run": 1,
            "group": self.keys.group(plan[0]), "limit": limit, "fields": fields}
        keys = [self.keys.job(job_id), self.keys.stream(plan[0]), self.keys.jobs_index, idem_key,
                self.keys.owners, self.keys.expiry_index]
        if owner is not None:
            args["owner_key"] = len(keys) + 1
            keys.append(self.keys.owner_index(owner))
        for _ in range(2):
            outcome, existing = await self._run("create", keys, args, statuses=True)
            if outcome == _QUEUE_FULL:
                raise QueueFull(int(existing), limit)
            created = outcome == 1
            if created or await self.redis.exists(self.keys.job(existing)):
                if outcome == _OTHER_REQUEST:
                    raise IdempotencyMismatch(
                        f"the Idempotency-Key was already used for job {existing}, made "
                        "from a different upload or options; send a new key for a new "
                        "request, or the same upload and options to get that job back")
                return existing, created
            # The key outlived its job (deleted by a client): the key is free again.
            await self.redis.delete(idem_key)
        raise RuntimeError("idempotency key kept pointing at a deleted job")

    def _skipped(self, plan: tuple[str, ...]) -> dict[str, str]:
        """The stage status fields of the stages a job does not run through."""
        return {f"{stage}.status": StageStatus.SKIPPED
                for stage in self.table.names if stage not in plan}

    async def queue_lag(self, stage: str, cap: int | None = None) -> int:
        """Entries of the stage's stream that no worker has been given yet: the jobs waiting
        for it. ``cap`` bounds the counting when the server cannot tell the lag itself."""
        args = {"group": self.keys.group(stage), "cap": cap or 0}
        return int(await self._run("queue_lag", [self.keys.stream(stage)], args))

    async def get(self, job_id: str) -> Job[Options] | None:
        if not valid_job_id(job_id):
            return None
        raw: dict[str, str] = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return self._parse_job(raw) if raw else None

    async def _get_many(self, entries: list[tuple[str, int]]) -> list[Job[Options] | None]:
        """The jobs of index entries, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id, _ in entries:
                pipe.hgetall(self.keys.job(job_id))
            raws: list[dict[str, str]] = await pipe.execute()
        return [self._parse_job(raw) if raw else None for raw in raws]

    async def list(
        self,
        *,
        status: Status | None = None,
        owner: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Job[Options]], str | None]:
        """Jobs newest first (by creation time), starting after ``cursor``.

        Returns the page and the cursor of the next page (None at the end). A cursor is the
        creation time and id of the last job seen, so jobs created meanwhile never shift
        the pages. Only the index of ``owner``, or else of ``status``, is read.
        """
        jobs: list[Job[Options]] = []
        after = _parse_cursor(cursor)
        if owner is not None:
            index = self.keys.owner_index(owner)
        elif status is not None:
            index = self.keys.status_index(status)
        else:
            index = self.keys.jobs_index
        # An owner's jobs in other statuses are skipped: read more of them per round trip.
        batch = max(limit, 500) if owner is not None and status is not None else limit
        while len(jobs) < limit:
            top = str(after[0]) if after else "+inf"
            page: list[tuple[str, float]] = await self.redis.zrange(  # type: ignore[assignment]
                index, top, "-inf", desc=True, byscore=True, offset=0,
                num=batch + 1, withscores=True)
            # Jobs of the same microsecond come in descending id order: skip those seen.
            fresh = [(job_id, int(score)) for job_id, score in page
                     if after is None or (int(score), job_id) < after]
            if not fresh:
                return jobs, None
            for (job_id, score), job in zip(fresh, await self._get_many(fresh), strict=True):
                after = (score, job_id)
                # None: expired and not pruned yet. The status may have changed since the
                # index was read.
                if job is None or (status is not None and job.status != status):
                    continue
                jobs.append(job)
                if len(jobs) == limit:
                    break
        return jobs, f"{after[0]}-{after[1]}" if after else None

    async def count_by_status(self) -> dict[Status, int]:
        """How many jobs are in each status (expired ones included until :meth:`prune`)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for status in self.table.status:
                pipe.zcard(self.keys.status_index(status))
            counts = await pipe.execute()
        return dict(zip(self.table.status, map(int, counts), strict=True))

    async def cancel(self, job_id: str) -> Outcome:
        keys = [self.keys.job(job_id), self.keys.events(job_id), self.keys.jobs_index]
        return Outcome(await self._run("cancel", keys, {"now": now_iso()}, statuses=True))

    async def delete(self, job_id: str) -> bool:
        """Cancel the job wherever it is, then remove its hash, index entry and files.

        A stage still working on it finds it gone at its next progress report and stops;
        whatever such a stage writes after this is removed by the runtime (see
        :meth:`pipeline.runtime.Worker`), so nothing of the job is left behind.
        """
        if not valid_job_id(job_id):
            return False
        await self.cancel(job_id)
        # Neither changes once the job exists, so reading them first is safe.
        owner: str | None
        idem_key: str | None
        owner, idem_key = await self.redis.hmget(  # type: ignore[assignment]
            self.keys.job(job_id), ["owner", "idempotency_key"])
        keys = [self.keys.job(job_id), self.keys.events(job_id), self.keys.jobs_index,
                self.keys.expiry_index]
        args: dict[str, object] = {}
        for name, key in (("owner_key", owner and self.keys.owner_index(owner)),
                          ("idempotency_key", idem_key)):
            if key:
                args[name] = len(keys) + 1
                keys.append(key)
        removed = await self._run("delete", keys, args, statuses=True)
        self.files(job_id).remove()
        return bool(removed)

    async def prune(self) -> int:
        """Drop the index entries of jobs whose hash expired; returns how many.

        Reads only the jobs the expiry index says are due, and checks that each is gone
        (a job id is never used again, so a hash found missing stays missing, and nothing
        here needs to be atomic).
        """
        # To the microsecond, as the scripts score the index: whole seconds left a job that
        # expired during the current second for the next pass.
        seconds, micros = await self.redis.time()
        ids: list[str] = await self.redis.zrange(  # type: ignore[assignment]
            self.keys.expiry_index, seconds + micros / 1e6, "-inf", desc=True, byscore=True)
        gone: list[str] = []
        for batch in _batches(ids):
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in batch:
                    pipe.exists(self.keys.job(job_id))
                found = await pipe.execute()
            gone += [job_id for job_id, exists in zip(batch, found, strict=True) if not exists]
        owners: set[str] = await self.redis.smembers(self.keys.owners)  # type: ignore[assignment]
        indexes = [self.keys.jobs_index, self.keys.expiry_index,
                   *map(self.keys.status_index, self.table.status),
                   *map(self.keys.owner_index, owners)]
        for batch in _batches(gone):
            async with self.redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.zrem(index, *batch)
                await pipe.execute()
        return len(gone)

    async def migrate(self) -> None:
        """Bring jobs stored by an earlier version up to date, once per key prefix.

        Enters every job in the indexes of its status and owner, and in the expiry index
        (those indexes came later).
        Safe while workers run, and when several gateways start at once: each job is
        entered in one atomic step that reads its current status.
        """
        if await self.redis.sismember(self.keys.migrations, _JOB_INDEXES):
            return
        ids: list[str] = await self.redis.zrange(self.keys.jobs_index, 0, -1)  # type: ignore[assignment]
        for batch in _batches(ids):
            # A job's owner never changes: read first, it names the owner's index.
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in batch:
                    pipe.hget(self.keys.job(job_id), "owner")
                owners: list[str | None] = await pipe.execute()
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id, owner in zip(batch, owners, strict=True):
                    keys = [self.keys.job(job_id), self.keys.jobs_index, self.keys.owners,
                            self.keys.expiry_index]
                    args: dict[str, object] = {}
                    if owner:
                        args["owner_key"] = len(keys) + 1
                        keys.append(self.keys.owner_index(owner))
                    await self._run("index_job", keys, args, statuses=True, client=pipe)
                await pipe.execute()
        await self.redis.sadd(self.keys.migrations, _JOB_INDEXES)

    async def rerun(self, job: Job[Options], from_stage: str,
                    overrides: Mapping[str, Any] | None = None, *,
                    lane: str = LIVE) -> Outcome:
        """Start run ``job.run + 1`` of a finished job from ``from_stage``, reusing the
        artifacts of the stages before it, with ``overrides`` applied to its options.

        The options ``overrides`` change are those of the latest run that completed (or,
        when none did, the job's first): a run that failed or was cancelled passes its
        options on to no later run.

        Raises ValueError (a readable reason) for options that do not fit, or a stage the
        job cannot restart from. Returns OK, or GONE, RUNNING, STALE (someone else changed
        the job first) or EXPIRED.
        """
        if not job.status.terminal:
            return Outcome.RUNNING
        base = job.options
        if job.status != COMPLETED:
            base = next((r.options for r in reversed(job.runs) if r.status == COMPLETED),
                        job.runs[0].options if job.runs else job.options)
        options = msgspec.convert({**msgspec.to_builtins(base), **(overrides or {})},
                                  self.table.options)
        plan = self.table.rerun_plan(from_stage, options, job.options)
        files = self.files(job.id)
        if not all(files.artifact(name).exists() for name in self.table.needs(from_stage, options)):
            gone = not await self.redis.exists(self.keys.job(job.id))
            return Outcome.GONE if gone else Outcome.EXPIRED
        now = now_iso()
        earlier = RunRecord(
            run=job.run, options=job.options, plan=job.plan, status=job.status,
            error=job.error, started_at=job.run_started_at or job.created_at,
            finished_at=job.updated_at,
            result_path=_stored(files, job.result_path))
        fields: dict[str, str] = {
            "run": str(job.run + 1), "run_started_at": now, "updated_at": now,
            "progress": "0", "lane": lane,
            "stage_detail": f"queued for {from_stage}",
            "options": msgspec.json.encode(options).decode(),
            "plan": msgspec.json.encode(plan).decode(),
            "runs": msgspec.json.encode([
                *(msgspec.structs.replace(r, result_path=_stored(files, r.result_path))
                  for r in job.runs), earlier]).decode(),
            f"{from_stage}.status": StageStatus.QUEUED,
            **self._skipped(self.table.plan(options)),
        }
        stale = ["error", "result_path"] + [f"{s}.{f}" for s in plan for f in _STAGE_FIELDS]
        args = {"job_id": job.id, "expected_run": job.run, "run": job.run + 1,
                "ttl": self.settings.job_ttl_seconds, "keep": self._stream_ttl(lane),
                "stale": [f for f in stale if f not in fields], "fields": fields}
        keys = [self.keys.job(job.id), self.keys.events(job.id),
                self.keys.stream(from_stage, lane), self.keys.jobs_index,
                self.keys.expiry_index]
        return Outcome(await self._run("rerun", keys, args, statuses=True))

    # -- workers' side --------------------------------------------------------------------

    async def start_stage(self, d: Delivery, status: Status, detail: str) -> Outcome:
        """Record that this consumer started the stage; the job takes ``status`` (the
        stage's running status)."""
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id), self.keys.jobs_index]
        args = {"stage": d.stage, "run": d.run, "worker": d.consumer, "now": now_iso(),
                "status": status, "detail": detail}
        return Outcome(await self._run("start", keys, args, statuses=True))

    async def progress(self, d: Delivery, plan: tuple[str, ...], fraction: float,
                       detail: str | None, *, error: str | None = None) -> Outcome:
        """Record progress; ``error`` notes why an attempt failed (it will be retried)."""
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id)]
        args: dict[str, object] = {
            "stage": d.stage, "run": d.run, "progress": str(round(100.0 * fraction, 1)),
            "overall": str(self.table.progress(plan, d.stage, fraction)), "now": now_iso()}
        if detail:
            args["detail"] = detail
        if error:
            args["error"] = error
        return Outcome(await self._run("progress", keys, args))

    def _events(self, keys: Sequence[str], args: dict[str, object], options: Options | None,
                stage: str, status: str) -> tuple[str, ...]:
        """Add to a script's ``args`` the events its change of the job queues for
        observers (see _queue.lua); returns their streams, the keys to pass after the
        status indexes."""
        if options is None:
            return ()
        events: tuple[Event, ...] = self.table.events(options, stage, status)
        first = len(keys) + len(self.table.status) + 1
        streams = tuple(dict.fromkeys(self.keys.stream(e.observer) for e in events))
        args["events"] = [{"key": first + streams.index(self.keys.stream(e.observer)),
                           "name": e.observer, "event": e.event, "status": e.status}
                          for e in events]
        return streams

    async def finish(self, d: Delivery, plan: tuple[str, ...],
                     options: Options | None = None) -> Outcome:
        """Record the stage as done, queue the next stage of ``plan`` (or complete the
        job) and acknowledge the entry, atomically; with the job's ``options``, also queue
        the events the table's observers get for it."""
        position = plan.index(d.stage)
        nxt = plan[position + 1] if position + 1 < len(plan) else None
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id),
                self.keys.stream(d.stage, d.lane), self.keys.stream(nxt or d.stage, d.lane),
                self.keys.jobs_index]
        args: dict[str, object] = {
            "group": d.group, "consumer": d.consumer, "entry_id": d.entry_id,
            "stage": d.stage, "run": d.run, "now": now_iso(), "job_id": d.job_id,
            "progress": str(self.table.progress(plan, d.stage, 1.0))}
        if nxt is None:
            files = self.files(d.job_id)
            args["result_path"] = files.stored(files.result(d.run))
        else:
            args |= {"next": nxt, "next_status": self.table.spec(nxt).running,
                     "keep": self._stream_ttl(d.lane)}
        status = self.table.spec(nxt).running if nxt else COMPLETED
        streams = self._events(keys, args, options, d.stage, status)
        return Outcome(await self._run("finish", keys, args, statuses=True, after=streams))

    async def fail(self, d: Delivery, reason: str, *, dead_letter: bool = False,
                   deliveries: int = 0, options: Options | None = None) -> Outcome:
        """Fail the job with ``reason`` and acknowledge the entry; with ``dead_letter``,
        first copy the entry to the stage's dead-letter stream. With the job's ``options``,
        also queue the events the table's observers get for it."""
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id),
                self.keys.stream(d.stage, d.lane), self.keys.dead_letters(d.stage),
                self.keys.jobs_index]
        args: dict[str, object] = {
            "group": d.group, "consumer": d.consumer, "entry_id": d.entry_id,
            "stage": d.stage, "run": d.run, "now": now_iso(), "reason": reason,
            "dead_letter": dead_letter, "deliveries": deliveries, "job_id": d.job_id}
        streams = self._events(keys, args, options, d.stage, FAILED)
        return Outcome(await self._run("fail", keys, args, statuses=True, after=streams))

    async def observed(self, d: Delivery, message: EventMessage, status: StageStatus, *,
                       error: str | None = None, retry_in: float | None = None,
                       ack: bool = True) -> Outcome:
        """Record an observer's attempt at an event in its record of the job: started
        (``status`` running, ``ack`` False), or ended (done or failed), acknowledging the
        entry; with ``retry_in`` (seconds), the event's next attempt is scheduled for
        then in the same step. OK, or GONE / STALE when the record is not changed (the job
        expired, or a later event is the observer's latest), or LOST."""
        record: dict[str, object] = {"status": status}
        drop = ["error", "next_attempt_at"]
        if status is StageStatus.RUNNING:
            record["attempts"] = message.attempt
        else:
            record["finished_at"] = now_iso()
        if error is not None:
            record["error"] = error
            drop.remove("error")
        args: dict[str, object] = {
            "group": d.group, "consumer": d.consumer, "entry_id": d.entry_id,
            "name": d.stage, "event": message.event, "run": message.run, "ack": ack}
        if retry_in is not None:
            due = time.time() + retry_in
            nxt = msgspec.structs.replace(message, attempt=message.attempt + 1)
            args |= {"next": msgspec.json.encode(nxt).decode(), "delay": retry_in}
            record["next_attempt_at"] = datetime.fromtimestamp(due, UTC).isoformat(
                timespec="seconds").replace("+00:00", "Z")
            drop.remove("next_attempt_at")
            record.pop("finished_at")
        args |= {"set": {k: str(v) for k, v in record.items()}, "del": drop}
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id),
                self.keys.stream(d.stage, d.lane), self.keys.retries(d.stage, d.lane)]
        return Outcome(await self._run("observe", keys, args))

    async def retry_later(self, d: Delivery, attempts: int, delay: float, error: str,
                          detail: str) -> Outcome:
        """Acknowledge the entry and queue its job's next attempt ``delay`` seconds from
        now, noting ``error`` (why this attempt failed) on the job, atomically. ``attempts``
        counts this one."""
        keys = [self.keys.job(d.job_id), self.keys.events(d.job_id),
                self.keys.stream(d.stage, d.lane), self.keys.retries(d.stage, d.lane)]
        args = {"group": d.group, "consumer": d.consumer, "entry_id": d.entry_id,
                "stage": d.stage, "run": d.run, "job_id": d.job_id, "attempts": attempts,
                "delay": delay, "keep": self._stream_ttl(d.lane), "now": now_iso(),
                "error": error, "detail": detail}
        return Outcome(await self._run("retry", keys, args))

    async def promote_retries(self, stage: str, lane: str = LIVE,
                              limit: int = 100) -> tuple[int, float | None]:
        """Queue the retries of ``stage`` (a stage's or an observer's) that are due; returns
        how many, and the seconds until the next one is due (None: none waits)."""
        keys = [self.keys.stream(stage, lane), self.keys.retries(stage, lane)]
        moved, next_ms = await self._run("promote", keys,
                                         {"limit": limit, "keep": self._stream_ttl(lane)})
        return int(moved), None if int(next_ms) < 0 else int(next_ms) / 1000

    async def waiting_retries(self, stage: str, lane: str = LIVE) -> int:
        """Jobs whose attempt at ``stage`` failed and that wait for the next one."""
        return int(await self.redis.zcard(self.keys.retries(stage, lane)))

    async def ack(self, d: Delivery) -> None:
        """Acknowledge an entry that needs no work (its job is gone, finished or stale)."""
        await self.redis.xack(self.keys.stream(d.stage, d.lane), d.group, d.entry_id)

    async def forget_consumer(self, stream: str, group: str, consumer: str) -> bool:
        """Remove ``consumer`` from ``group`` if, and only if, it has nothing pending."""
        args = {"group": group, "consumer": consumer}
        return bool(await self._run("forget_consumer", [stream], args))

    async def heartbeat(self, d: Delivery) -> bool:
        """Keep the entry's idle clock fresh; False when another consumer owns it now."""
        args = {"group": d.group, "consumer": d.consumer, "entry_id": d.entry_id}
        return bool(await self._run("heartbeat", [self.keys.stream(d.stage, d.lane)], args))

    # -- reading jobs ---------------------------------------------------------------------

    def _parse_job(self, raw: Mapping[str, str]) -> Job[Options]:
        stages: dict[str, StageRecord] = {}
        for stage in self.table.names:
            record = {f: raw[f"{stage}.{f}"] for f in _STAGE_FIELDS if f"{stage}.{f}" in raw}
            stages[stage] = msgspec.convert(record, StageRecord, strict=False)
        files = self.files(raw["id"])
        runs: list[RunRecord[Options]] = msgspec.json.decode(raw.get("runs", "[]"),
                                                             type=self._runs_type)
        return Job(
            id=raw["id"],
            status=self.table.status(raw["status"]),
            progress=float(raw.get("progress", 0)),
            stage_detail=raw.get("stage_detail"),
            error=raw.get("error"),
            created_at=raw["created_at"],
            updated_at=raw["updated_at"],
            options=msgspec.json.decode(raw["options"], type=self.table.options),
            plan=msgspec.json.decode(raw["plan"], type=tuple[str, ...]),
            run=int(raw["run"]),
            stages=stages,
            input_name=raw.get("input_name"),
            owner=raw.get("owner"),
            result_path=_resolved(files, raw.get("result_path")),
            run_started_at=raw.get("run_started_at"),
            lane=raw.get("lane", LIVE),
            max_seconds=float(raw["max_seconds"]) if "max_seconds" in raw else None,
            runs=[msgspec.structs.replace(r, result_path=_resolved(files, r.result_path))
                  for r in runs],
            observers={spec.name: self._observer_record(raw, spec.name)
                       for spec in self.table.observers if f"{spec.name}.event" in raw},
        )

    @staticmethod
    def _observer_record(raw: Mapping[str, str], name: str) -> ObserverRecord:
        record = {f: raw[f"{name}.{f}"] for f in _OBSERVER_FIELDS if f"{name}.{f}" in raw}
        return msgspec.convert(record, ObserverRecord, strict=False)


def _batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """Pieces of ``items`` small enough for one pipelined round trip."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _parse_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    score, _, job_id = cursor.partition("-")
    if not score.isdigit() or not valid_job_id(job_id):
        raise ValueError(f"not a cursor: {cursor!r}")
    return int(score), job_id


def _resolved(files: JobFiles, stored: str | None) -> str | None:
    """A result path as the store keeps it -> the path in this process's JOBS_DIR."""
    return str(files.resolve(stored)) if stored else None


def _stored(files: JobFiles, path: str | None) -> str | None:
    """The inverse of :func:`_resolved`."""
    return files.stored(Path(path)) if path else None
