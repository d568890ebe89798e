"""A job pipeline on Redis Streams: settings, types, the job store and the stream runtime
that an application's stages (declared in its stage table) and front ends build on."""

from pipeline.errors import (
    ConfigError,
    JobGone,
    OwnershipLost,
    PermanentError,
    PipelineError,
    RetryLater,
    TransientError,
)
from pipeline.files import JobFiles
from pipeline.settings import Settings
from pipeline.stage import (
    EventContext,
    JobContext,
    Observer,
    ObserverSpec,
    Stage,
    StageSpec,
    StageTable,
)
from pipeline.store import JobStore
from pipeline.types import (
    EventMessage,
    Job,
    ObserverRecord,
    Options,
    StageRecord,
    StageStatus,
    Status,
    StreamMessage,
)

__all__ = [
    "ConfigError",
    "EventContext",
    "EventMessage",
    "Job",
    "JobContext",
    "JobFiles",
    "JobGone",
    "JobStore",
    "Observer",
    "ObserverRecord",
    "ObserverSpec",
    "Options",
    "OwnershipLost",
    "PermanentError",
    "PipelineError",
    "RetryLater",
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
