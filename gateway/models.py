"""Response bodies of the job endpoints."""

from __future__ import annotations

import msgspec

from pipeline.types import Job, JobOptions, JobStatus, Result, StageStatus


class StageView(msgspec.Struct, frozen=True, kw_only=True):
    status: StageStatus
    progress: float
    started_at: str | None
    finished_at: str | None
    worker: str | None


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """A job as the original service showed it, plus its stages and options."""

    id: str
    status: JobStatus
    progress: float
    stage_detail: str | None
    result: Result | None
    error: str | None
    created_at: str
    updated_at: str
    stages: dict[str, StageView]
    options: JobOptions
    input_name: str | None


class JobSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: JobStatus
    progress: float
    stage_detail: str | None
    error: str | None
    created_at: str
    updated_at: str
    input_name: str | None


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[JobSummary]
    next_cursor: str | None  # pass as ?cursor= for the next page; null on the last page


class JobAccepted(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus


class Deleted(msgspec.Struct, frozen=True, kw_only=True):
    deleted: str


def job_view(job: Job, result: Result | None) -> JobView:
    return JobView(
        id=job.id, status=job.status, progress=job.progress, stage_detail=job.stage_detail,
        result=result, error=job.error, created_at=job.created_at, updated_at=job.updated_at,
        stages={name: StageView(status=r.status, progress=r.progress, started_at=r.started_at,
                                finished_at=r.finished_at, worker=r.worker)
                for name, r in job.stages.items()},
        options=job.options, input_name=job.input_name,
    )


def job_summary(job: Job) -> JobSummary:
    return JobSummary(id=job.id, status=job.status, progress=job.progress,
                      stage_detail=job.stage_detail, error=job.error,
                      created_at=job.created_at, updated_at=job.updated_at,
                      input_name=job.input_name)
