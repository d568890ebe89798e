"""The shared core of the speech pipeline: settings, types, the job store and the stream
runtime that every stage service and the gateway build on."""

from pipeline.errors import (
    ConfigError,
    JobGone,
    OwnershipLost,
    PermanentError,
    PipelineError,
    TransientError,
)
from pipeline.files import JobFiles
from pipeline.settings import Settings
from pipeline.stage import JobContext, Stage
from pipeline.store import JobStore
from pipeline.types import (
    STAGES,
    Job,
    JobOptions,
    JobStatus,
    Result,
    Segment,
    SpeakerTurn,
    StageName,
    StageRecord,
    StageStatus,
    StreamMessage,
    Word,
)

__all__ = [
    "STAGES",
    "ConfigError",
    "Job",
    "JobContext",
    "JobFiles",
    "JobGone",
    "JobOptions",
    "JobStatus",
    "JobStore",
    "OwnershipLost",
    "PermanentError",
    "PipelineError",
    "Result",
    "Segment",
    "Settings",
    "SpeakerTurn",
    "Stage",
    "StageName",
    "StageRecord",
    "StageStatus",
    "StreamMessage",
    "TransientError",
    "Word",
]
