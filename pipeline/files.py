"""Where a job's files live under ``JOBS_DIR``: the job's folder, its upload and its results.

Every path is derived from a server-generated job id, never from anything a client sent.
What the stages write in between is named by the stage table (the artifacts each stage
reads and writes, as names in the job's folder).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Self

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")

#: The upload as received: the artifact no stage writes.
INPUT = "input"


def valid_job_id(job_id: str) -> bool:
    """Job ids are 128 random bits in hex; anything else is refused before touching disk."""
    return bool(_JOB_ID.match(job_id))


def uploads_dir(jobs_path: Path) -> Path:
    """Where the gateway keeps uploads while they stream in, before they become a job's."""
    return jobs_path / ".uploads"


@dataclass(frozen=True)
class JobFiles:
    """The folder of one job. Each stage writes its own artifacts in it, so that a later
    stage can be rerun without the earlier ones."""

    root: Path

    @classmethod
    def of(cls, jobs_dir: Path, job_id: str) -> Self:
        if not valid_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return cls(jobs_dir / job_id)

    @property
    def input(self) -> Path:
        return self.root / INPUT

    def artifact(self, name: str) -> Path:
        """The artifact ``name`` of the stage table (a path relative to the folder)."""
        return self.root / name

    def result(self, run: int) -> Path:
        """The final result of one run of the job."""
        return self.root / "runs" / str(run) / "result.json"

    def stored(self, path: Path) -> str:
        """``path`` as the job store keeps it: relative to the folder, so that processes
        that mount JOBS_DIR at different paths all find it (see :meth:`resolve`)."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def resolve(self, stored: str) -> Path:
        """A path kept by the job store, under this process's JOBS_DIR. Earlier versions
        kept absolute paths: those stay as they are."""
        return self.root / stored

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
