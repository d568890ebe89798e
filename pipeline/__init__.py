"""A job pipeline on Redis Streams: settings, types, the job store and the stream runtime
that an application's stages (declared in its stage table) and front ends build on."""

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
from pipeline.stage import JobContext, Stage, StageSpec, StageTable
from pipeline.store import JobStore
from pipeline.types import (
    Job,
    Options,
    StageRecord,
    StageStatus,
    Status,
    StreamMessage,
)

__all__ = [
    "ConfigError",
    "Job",
    "JobContext",
    "JobFiles",
    "JobGone",
    "JobStore",
    "Options",
    "OwnershipLost",
    "PermanentError",
    "PipelineError",
    "Settings",
    "Stage",
    "StageRecord",
    "StageSpec",
    "StageStatus",
    "StageTable",
    "Status",
    "StreamMessage",
    "TransientError",
]
