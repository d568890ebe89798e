"""Every message and record the pipeline stores or sends, as msgspec Structs."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

StageName = Literal["decode", "diarize", "transcribe"]

#: The stages in pipeline order. A job's plan is this order minus the stages it skips.
STAGES: tuple[StageName, ...] = ("decode", "diarize", "transcribe")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    DECODING = "decoding"
    DIARIZING = "diarizing"
    TRANSCRIBING = "transcribing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


#: The job status shown while a stage has the job.
STAGE_JOB_STATUS: dict[StageName, JobStatus] = {
    "decode": JobStatus.DECODING,
    "diarize": JobStatus.DIARIZING,
    "transcribe": JobStatus.TRANSCRIBING,
}


class StageStatus(enum.StrEnum):
    PENDING = "pending"  # not reached yet
    QUEUED = "queued"  # in the stage's stream
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not in this run's plan


Speakers = Annotated[int, msgspec.Meta(ge=1, le=64)]


class JobOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client may choose per job."""

    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$")] | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    num_speakers: Speakers | None = None
    min_speakers: Speakers | None = None
    max_speakers: Speakers | None = None
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    diarize: bool = True

    def __post_init__(self) -> None:
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError("min_speakers must not exceed max_speakers")
        if self.num_speakers and (self.min_speakers or self.max_speakers):
            raise ValueError("give num_speakers, or min_speakers/max_speakers, not both")

    def plan(self) -> tuple[StageName, ...]:
        """The stages a fresh job with these options runs through."""
        return tuple(s for s in STAGES if s != "diarize" or self.diarize)


class StageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One stage's state within a job's current run."""

    status: StageStatus = StageStatus.PENDING
    progress: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = None
    detail: str | None = None
    error: str | None = None  # why the last attempt failed, while it is being retried


class RunRecord(msgspec.Struct, kw_only=True):
    """An earlier run of a job, kept when the job is rerun."""

    run: int
    options: JobOptions
    plan: tuple[StageName, ...]
    status: JobStatus
    error: str | None = None
    result_path: str | None = None
    started_at: str
    finished_at: str


class Job(msgspec.Struct, kw_only=True):
    """A job as read from its hash. Its fields describe the current (latest) run."""

    id: str
    status: JobStatus
    progress: float
    stage_detail: str | None
    error: str | None
    created_at: str
    updated_at: str
    options: JobOptions
    plan: tuple[StageName, ...]
    run: int
    stages: dict[StageName, StageRecord]
    input_name: str | None = None  # the client's file name, for display only
    owner: str | None = None  # fingerprint of the API key that created the job
    result_path: str | None = None
    run_started_at: str | None = None  # when the current run was queued
    lane: str = "live"  # which streams carry it: the live ones, or a replay's
    runs: list[RunRecord] = msgspec.field(default_factory=list)  # earlier runs, oldest first


class StreamMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of an entry in a stage's stream: which job, which run of it."""

    job_id: str
    run: int = 1


class SpeakerTurn(msgspec.Struct, frozen=True):
    start: float
    end: float
    speaker: str


class Word(msgspec.Struct, kw_only=True):
    word: str
    start: float | None = None
    end: float | None = None
    score: float | None = None
    speaker: str | None = None


class Segment(msgspec.Struct, kw_only=True):
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[Word] = msgspec.field(default_factory=list)


class Result(msgspec.Struct, kw_only=True):
    """The transcript of a completed job."""

    language: str | None
    duration: float
    segments: list[Segment]
    speakers: list[str]
