"""Every Redis key, stream and consumer-group name, derived from ``KEY_PREFIX`` in one place."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: The lane of ordinary traffic. A replay may run in a lane of its own: its own streams and
#: consumer groups, served by workers started for that lane, so live jobs never wait for it.
LIVE = "live"
_LANE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def lane_name(text: str) -> str:
    """Validate a lane name (it becomes part of stream and group names)."""
    if not _LANE.match(text):
        raise ValueError(f"a lane name is 1-32 lower-case letters, digits or dashes: {text!r}")
    return text


@dataclass(frozen=True)
class Keys:
    prefix: str = "stt"

    def job(self, job_id: str) -> str:
        """The job's hash."""
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        """Pub/sub channel that announces every change of the job (long polls wait on it)."""
        return f"{self.prefix}:events:{job_id}"

    def stream(self, stage: str, lane: str = LIVE) -> str:
        """The stage's work stream in ``lane``."""
        return f"{self.prefix}:stream:{stage}" + ("" if lane == LIVE else f":{lane}")

    def retries(self, stage: str, lane: str = LIVE) -> str:
        """Entries of the stage's (or observer's) stream in ``lane`` that wait for a later
        attempt: a sorted set of their fields as JSON, scored by when they are due (seconds
        since the epoch, on the server's clock)."""
        return self.stream(stage, lane) + ":retry"

    def dead_letters(self, stage: str) -> str:
        """Entries of the stage's streams that were given up on."""
        return f"{self.prefix}:dead:{stage}"

    def group(self, stage: str, lane: str = LIVE) -> str:
        """The consumer group of the stage's workers in ``lane``."""
        return f"{self.prefix}:{stage}" + ("" if lane == LIVE else f":{lane}")

    def replay(self, digest: str) -> str:
        """Set of the jobs a replay already re-enqueued (makes a replay idempotent)."""
        return f"{self.prefix}:replay:{digest}"

    @property
    def jobs_index(self) -> str:
        """Sorted set of job ids scored by creation time (for listing)."""
        return f"{self.prefix}:jobs"

    def status_index(self, status: str) -> str:
        """The jobs index's entries of the jobs in ``status``."""
        return f"{self.jobs_index}:{status}"

    def owner_index(self, owner: str) -> str:
        """The jobs index's entries of the jobs created with one API key (its
        fingerprint)."""
        return f"{self.jobs_index}:owner:{owner}"

    @property
    def expiry_index(self) -> str:
        """Sorted set of job ids scored by when their hash expires (the server's clock, in
        seconds): pruning the other indexes reads only the jobs that are gone."""
        return f"{self.prefix}:expiry"

    @property
    def owners(self) -> str:
        """Set of the owners that have an index (so that expired jobs can be pruned from
        every one)."""
        return f"{self.prefix}:owners"

    @property
    def migrations(self) -> str:
        """Set of the one-off data migrations already applied to this prefix's keys."""
        return f"{self.prefix}:migrations"

    @property
    def metrics(self) -> str:
        """Hash of the counters and histograms that only grow (see pipeline/metrics.py)."""
        return f"{self.prefix}:metrics"

    def metrics_once(self, token: str) -> str:
        """Marks one recording of metrics as applied, so that a resent one is not."""
        return f"{self.metrics}:once:{token}"

    @property
    def janitor(self) -> str:
        """Held by the process running the housekeeping pass, until the next one is due."""
        return f"{self.prefix}:janitor"

    def voiceprints(self, owner: str | None) -> str:
        """Hash of an owner's voiceprints by id (an API key's fingerprint; None: the one
        library shared when the service has no API keys). Kept until deleted."""
        return f"{self.prefix}:voiceprints" + ("" if owner is None else f":{owner}")

    def idempotency(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()
        return f"{self.prefix}:idem:{digest}"
