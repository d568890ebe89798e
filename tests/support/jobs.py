"""Job contexts built by hand (no Redis), to run stages directly: the stage tests and the
benchmark's stage processes."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.store import new_job_id
from pipeline.types import Job, StageRecord
from stages.artifacts import Files
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import TABLE, Context, JobStatus

_log = logging.getLogger("jobs")


def new_job(jobs_dir: Path, source: Path | None) -> str:
    """A job folder holding a copy of ``source`` as its upload; returns the job id."""
    job_id = new_job_id()
    files = Files.of(jobs_dir, job_id)
    files.create()
    if source is not None:
        shutil.copyfile(source, files.input)
    return job_id


def _nowhere(fraction: float, detail: str | None) -> None:
    pass


def context(jobs_dir: Path, job_id: str, settings: Settings, options: JobOptions | None = None,
            report: Callable[[float, str | None], None] = _nowhere) -> Context:
    """The context the runtime would give a stage for run 1 of ``job_id``, with progress
    reports going to ``report``."""
    options = options or JobOptions()
    plan = TABLE.plan(options)
    now = "2025-01-01T00:00:00Z"
    job = Job(id=job_id, status=JobStatus.QUEUED, progress=0.0, stage_detail=None,
              error=None, created_at=now, updated_at=now, options=options, plan=plan,
              run=1, stages={name: StageRecord() for name in plan})
    return Context(job=job, files=Files.of(jobs_dir, job_id), settings=settings,
                      log=logging.LoggerAdapter(_log, {"job_id": job_id}), report=report)


@dataclass
class Progress:
    """Records every progress report a stage makes."""

    reports: list[tuple[float, str | None]] = field(default_factory=list)

    def __call__(self, fraction: float, detail: str | None) -> None:
        self.reports.append((fraction, detail))


def make_context(jobs_dir: Path, source: Path | None, settings: Settings,
                 options: JobOptions | None = None) -> tuple[Context, Progress]:
    """A context for a fresh job whose upload is a copy of ``source``."""
    progress = Progress()
    ctx = context(jobs_dir, new_job(jobs_dir, source), settings, options, progress)
    return ctx, progress
