"""A stage's JobContext for a fresh job, with its progress reports recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmark.jobs import context, new_job
from stages.settings import Settings
from pipeline.stage import JobContext
from stages.options import JobOptions


@dataclass
class Progress:
    """Records every progress report a stage makes."""

    reports: list[tuple[float, str | None]] = field(default_factory=list)

    def __call__(self, fraction: float, detail: str | None) -> None:
        self.reports.append((fraction, detail))


def make_context(jobs_dir: Path, source: Path | None, settings: Settings,
                 options: JobOptions | None = None) -> tuple[JobContext, Progress]:
    """A context for a fresh job whose upload is a copy of ``source``."""
    progress = Progress()
    ctx = context(jobs_dir, new_job(jobs_dir, source), settings, options, progress)
    return ctx, progress
