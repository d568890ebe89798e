"""Response bodies of the job endpoints."""

from __future__ import annotations

import msgspec

from pipeline.types import Job, ObserverRecord, Options, RunRecord, StageStatus
from stages.options import JobOptions
from stages.table import NOTIFY, JobStatus
from stages.types import Result


class StageView(msgspec.Struct, frozen=True, kw_only=True):
    status: StageStatus
    progress: float
    started_at: str | None
    finished_at: str | None
    worker: str | None
    detail: str | None  # what the stage last reported doing


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    """The delivery of the job's latest webhook event (see callback_url)."""

    event: str  # job.completed, job.failed or job.stage_completed
    run: int
    status: str  # pending, delivering, retrying, delivered or failed
    attempts: int
    last_error: str | None
    next_attempt_at: str | None


_WEBHOOK_STATUS = {StageStatus.RUNNING: "delivering", StageStatus.DONE: "delivered",
                   StageStatus.FAILED: "failed"}


def webhook_view(record: ObserverRecord | None) -> WebhookView | None:
    if record is None:
        return None
    status = _WEBHOOK_STATUS.get(record.status) or ("retrying" if record.attempts
                                                    else "pending")
    ended = record.event in (JobStatus.COMPLETED, JobStatus.FAILED)
    return WebhookView(event=f"job.{record.event}" if ended else "job.stage_completed",
                       run=record.run, status=status, attempts=record.attempts,
                       last_error=record.error, next_attempt_at=record.next_attempt_at)


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    """An earlier run of a job (see POST /jobs/{id}/rerun)."""

    run: int
    status: JobStatus
    options: JobOptions
    stages: tuple[str, ...]  # the stages this run computed
    error: str | None
    started_at: str
    finished_at: str
    result_url: str | None  # where its result stays available


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """A job as the original service showed it, plus its stages, options and runs."""

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
    run: int  # the number of the run shown; earlier ones are listed in runs
    runs: list[RunView]
    webhook: WebhookView | None  # with a callback_url, once an event was queued


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


class RerunAccepted(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    run: int
    status: JobStatus


def job_view(job: Job[Options], result: Result | None) -> JobView:
    return JobView(
        id=job.id, status=JobStatus(job.status), progress=job.progress,
        stage_detail=job.stage_detail,
        result=result, error=job.error, created_at=job.created_at, updated_at=job.updated_at,
        stages={name: StageView(status=r.status, progress=r.progress, started_at=r.started_at,
                                finished_at=r.finished_at, worker=r.worker,
                                detail=r.detail)
                for name, r in job.stages.items()},
        options=JobOptions.of(job.options), input_name=job.input_name, run=job.run,
        runs=[run_view(job.id, r) for r in job.runs],
        webhook=webhook_view(job.observers.get(NOTIFY)),
    )


def run_view(job_id: str, run: RunRecord[Options]) -> RunView:
    return RunView(
        run=run.run, status=JobStatus(run.status), options=JobOptions.of(run.options),
        stages=run.plan,
        error=run.error, started_at=run.started_at, finished_at=run.finished_at,
        result_url=(f"/jobs/{job_id}/runs/{run.run}/result" if run.result_path else None),
    )


def job_summary(job: Job[Options]) -> JobSummary:
    return JobSummary(id=job.id, status=JobStatus(job.status), progress=job.progress,
                      stage_detail=job.stage_detail, error=job.error,
                      created_at=job.created_at, updated_at=job.updated_at,
                      input_name=job.input_name)
