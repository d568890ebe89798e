"""Where a job's files live under ``JOBS_DIR``: the one place that names them.

Every path is derived from a server-generated job id, never from anything a client sent.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def valid_job_id(job_id: str) -> bool:
    """Job ids are 128 random bits in hex; anything else is refused before touching disk."""
    return bool(_JOB_ID.match(job_id))


def uploads_dir(jobs_path: Path) -> Path:
    """Where the gateway keeps uploads while they stream in, before they become a job's."""
    return jobs_path / ".uploads"


@dataclass(frozen=True)
class JobFiles:
    """The artifacts of one job.

    ``input`` is the upload as received; each stage writes its own output so that a later
    stage can be rerun without the earlier ones.
    """

    root: Path

    @classmethod
    def of(cls, jobs_dir: Path, job_id: str) -> JobFiles:
        if not valid_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return cls(jobs_dir / job_id)

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def audio(self) -> Path:
        """Decoded audio: 16 kHz mono 16-bit PCM WAV (written by decode)."""
        return self.root / "audio.wav"

    @property
    def diarization(self) -> Path:
        """Speaker turns and per-speaker embeddings (written by diarize)."""
        return self.root / "diarization.json"

    @property
    def transcript(self) -> Path:
        """The transcript before speaker assignment (written by transcribe)."""
        return self.root / "transcript.json"

    def result(self, run: int) -> Path:
        """The final result of one run of the job."""
        return self.root / "runs" / str(run) / "result.json"

    def has_inputs_for(self, plan: tuple[str, ...], diarize: bool) -> bool:
        """Whether the artifacts that a run of ``plan`` starts from are still here."""
        needed = {"decode": [self.input], "diarize": [self.audio],
                  "transcribe": [self.audio] + ([self.diarization] if diarize else [])}
        return all(p.exists() for p in needed[plan[0]])

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
