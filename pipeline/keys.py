"""Every Redis key, stream and consumer-group name, derived from ``KEY_PREFIX`` in one place."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pipeline.types import StageName


@dataclass(frozen=True)
class Keys:
    prefix: str = "stt"

    def job(self, job_id: str) -> str:
        """The job's hash."""
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        """Pub/sub channel that announces every change of the job (long polls wait on it)."""
        return f"{self.prefix}:events:{job_id}"

    def stream(self, stage: StageName) -> str:
        """The stage's work stream."""
        return f"{self.prefix}:stream:{stage}"

    def dead_letters(self, stage: StageName) -> str:
        """Entries of the stage's stream that were given up on."""
        return f"{self.prefix}:dead:{stage}"

    def group(self, stage: StageName) -> str:
        """The consumer group of the stage's live workers (a replay may use another)."""
        return f"{self.prefix}:{stage}"

    @property
    def jobs_index(self) -> str:
        """Sorted set of job ids scored by creation time (for listing)."""
        return f"{self.prefix}:jobs"

    def idempotency(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()
        return f"{self.prefix}:idem:{digest}"
