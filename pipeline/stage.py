"""What a stage is: a name and the work. The runtime (:mod:`pipeline.runtime`) does the rest.

A stage's :meth:`Stage.process` runs in a worker thread, so it may block on model calls.
It reads its inputs from, and writes its outputs to, the job's files
(:class:`pipeline.files.JobFiles`); the runtime records the stage as done and hands the job
to the next stage of the job's plan in one atomic step once ``process`` returns.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pipeline.files import JobFiles
from pipeline.settings import Settings
from pipeline.types import Job, StageName


@dataclass
class JobContext:
    """Everything a stage gets to work on one job."""

    job: Job
    files: JobFiles
    settings: Settings
    log: logging.LoggerAdapter[logging.Logger]
    # Set by the runtime: records progress and raises JobGone / OwnershipLost when the job
    # was cancelled or claimed by another worker, which stops the stage at that point.
    report: Callable[[float, str | None], None] = field(repr=False)

    @property
    def job_id(self) -> str:
        return self.job.id

    def progress(self, fraction: float, detail: str | None = None) -> None:
        """Report progress in [0, 1] of this stage. Cheap to call often: it is throttled.

        Raises :class:`pipeline.errors.JobGone` when the job was cancelled or deleted, so a
        long-running stage stops at its next progress report.
        """
        # float(): numpy scalars would reach Redis as "np.float64(0.5)".
        self.report(min(max(float(fraction), 0.0), 1.0), detail)


class Stage(abc.ABC):
    """One step of the pipeline. Subclasses set ``name`` and implement :meth:`process`."""

    name: ClassVar[StageName]

    def setup(self, settings: Settings) -> None:  # noqa: B027 - optional hook
        """Load what the stage needs once per worker process (models), before any job."""

    @abc.abstractmethod
    def process(self, ctx: JobContext) -> None:
        """Do the stage's work for ``ctx.job``. Raise PermanentError for bad input."""
