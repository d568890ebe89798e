"""The pipeline's exceptions: a small explicit hierarchy.

Stages raise :class:`PermanentError` for bad input (the job fails with the message as its
readable reason) and :class:`TransientError` for conditions worth retrying (a device out of
memory, a lost connection). Anything else a stage raises counts as a failed delivery and is
retried until ``MAX_DELIVERIES``, then dead-lettered.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(PipelineError):
    """A setting read from the environment is missing or malformed."""


class PermanentError(PipelineError):
    """The job cannot succeed, however often it is retried: the message is shown to users."""


class TransientError(PipelineError):
    """The job may succeed later: the entry stays pending and is retried after a backoff."""


class QueueFull(PipelineError):
    """As many jobs as ``MAX_QUEUED_JOBS`` allows already wait for the first stage."""

    def __init__(self, waiting: int, limit: int) -> None:
        super().__init__(f"{waiting} jobs are waiting to be processed (limit {limit})")
        self.waiting = waiting
        self.limit = limit


class JobGone(PipelineError):
    """The job was cancelled, deleted or expired while a stage was working on it."""


class OwnershipLost(PipelineError):
    """Another consumer claimed this entry (this worker stalled past the claim idle time)."""


class EmbeddedServerError(PipelineError):
    """The embedded Valkey server could not be started or reached."""
