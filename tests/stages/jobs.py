"""Building a stage's JobContext by hand: a real Job and JobFiles, no Redis."""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.files import JobFiles
from pipeline.settings import Settings
from pipeline.stage import JobContext
from pipeline.types import Job, JobOptions, JobStatus, StageName, StageRecord


@dataclass
class Progress:
    """Records every progress report a stage makes."""

    reports: list[tuple[float, str | None]] = field(default_factory=list)

    def __call__(self, fraction: float, detail: str | None) -> None:
        self.reports.append((fraction, detail))


def make_context(jobs_dir: Path, source: Path | None, settings: Settings,
                 options: JobOptions | None = None) -> tuple[JobContext, Progress]:
    """A context for a fresh job whose upload is a copy of ``source``."""
    options = options or JobOptions()
    job_id = uuid.uuid4().hex
    plan: tuple[StageName, ...] = options.plan()
    now = "2025-01-01T00:00:00Z"
    job = Job(
        id=job_id, status=JobStatus.QUEUED, progress=0.0, stage_detail=None, error=None,
        created_at=now, updated_at=now, options=options, plan=plan, run=1,
        stages={name: StageRecord() for name in plan},
    )
    files = JobFiles.of(jobs_dir, job_id)
    files.create()
    if source is not None:
        shutil.copyfile(source, files.input)
    progress = Progress()
    log = logging.LoggerAdapter(logging.getLogger("tests.stages"), {"job_id": job_id})
    return JobContext(job=job, files=files, settings=settings, log=log, report=progress), progress
