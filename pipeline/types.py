"""Every message and record the pipeline stores or sends, as msgspec Structs.

The core knows no application. A job's options are an instance of the application's
:class:`Options` subclass and its status a member of the application's :class:`Status`
enum; the application's stage table (:class:`pipeline.stage.StageTable`) names both.
"""

from __future__ import annotations

import enum
from typing import Final, Generic, TypeVar

import msgspec

# The statuses every job may have, whatever its stages: the application's status enum
# adds the one each stage shows while it runs. The job scripts get them (and TERMINAL)
# from here too (see pipeline.store).
QUEUED: Final = "queued"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
CORE_STATUSES: Final = (QUEUED, COMPLETED, FAILED, CANCELLED)

#: A job in one of these statuses never changes again (but for a rerun).
TERMINAL: Final = frozenset({COMPLETED, FAILED, CANCELLED})


class Status(enum.StrEnum):
    """Base of an application's job status enum: the core statuses and the running status
    of each stage (checked by :class:`pipeline.stage.StageTable`)."""

    @property
    def terminal(self) -> bool:
        return self.value in TERMINAL


class StageStatus(enum.StrEnum):
    PENDING = "pending"  # not reached yet
    QUEUED = "queued"  # in the stage's stream
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not in this run's plan


class Options(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of what a client may choose per job. The core stores a job's options as JSON
    and reads none of them: the stage table's specs do."""


OptionsT = TypeVar("OptionsT", bound=Options)


class StageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One stage's state within a job's current run."""

    status: StageStatus = StageStatus.PENDING
    progress: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = None
    detail: str | None = None
    error: str | None = None  # why the last attempt failed, while it is being retried


class ObserverRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An observer's state within a job: of the latest event queued for it (see
    :class:`pipeline.stage.ObserverSpec`)."""

    status: StageStatus  # queued (first attempt or a retry), running, done or failed
    event: str  # the terminal status the job reached, or the stage that finished
    run: int  # the run the event is of
    attempts: int = 0  # attempts started
    error: str | None = None  # why the last attempt failed
    next_attempt_at: str | None = None  # when a failed attempt is repeated
    finished_at: str | None = None


class RunRecord(msgspec.Struct, Generic[OptionsT], kw_only=True):
    """An earlier run of a job, kept when the job is rerun."""

    run: int
    options: OptionsT
    plan: tuple[str, ...]
    status: str  # the terminal status it ended in
    error: str | None = None
    # Its result file. Stored relative to the job's folder, so that processes may mount
    # JOBS_DIR at different paths; the store reads it back as a path under its own
    # JOBS_DIR (see pipeline.files.JobFiles.resolve).
    result_path: str | None = None
    started_at: str
    finished_at: str


class Job(msgspec.Struct, Generic[OptionsT], kw_only=True):
    """A job as read from its hash. Its fields describe the current (latest) run."""

    id: str
    status: Status
    progress: float
    stage_detail: str | None
    error: str | None
    created_at: str
    updated_at: str
    options: OptionsT
    plan: tuple[str, ...]
    run: int
    stages: dict[str, StageRecord]
    input_name: str | None = None  # the client's file name, for display only
    owner: str | None = None  # fingerprint of the API key that created the job
    result_path: str | None = None  # as RunRecord.result_path
    run_started_at: str | None = None  # when the current run was queued
    lane: str = "live"  # which streams carry it: the live ones, or a replay's
    # The longest input, in seconds, its creator accepts (a synchronous request's limit,
    # narrower than the service's); the first stage enforces it on what it reads.
    max_seconds: float | None = None
    # earlier runs, oldest first
    runs: list[RunRecord[OptionsT]] = msgspec.field(default_factory=list)
    # by name, the observers an event of this job was queued for
    observers: dict[str, ObserverRecord] = msgspec.field(default_factory=dict)


class StreamMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of an entry in a stage's stream: which job, which run of it."""

    job_id: str
    run: int = 1
    #: Earlier deliveries of this stage for this run, in entries it was retried from.
    attempts: int = 0


class EventMessage(StreamMessage, frozen=True, kw_only=True):
    """The payload of an entry in an observer's stream: what happened to the job. The
    entry carries every fact its observer reports, so that an attempt long after the job
    expired reports the same as the first."""

    event: str  # the terminal status the job reached, or the stage that finished
    status: str  # the job's status then
    at: str  # when it happened (ISO 8601)
    options: str  # the job's options then, as JSON
    error: str | None = None  # why the job failed
    attempt: int = 1  # the attempt this entry is for (a retry queues the next one)
