"""The speech service's stage table: the one home of what each stage is.

Everything the core (pipeline/) knows of the stages comes from here: their names and order,
the job status each shows, their share of a job's progress, the artifacts they read and
write (and so what a rerun from each needs), which are model stages, which a job's options
skip, and the Stage class each runs; and the observers that follow the jobs (notify: the
webhooks). A stage's class is named, not imported: this module
stays light for the gateway and the command line, and a worker imports only its own stage.
"""

from __future__ import annotations

from pipeline import types as core
from pipeline.files import INPUT
from pipeline.stage import JobContext, ObserverSpec, Stage, StageSpec, StageTable
from pipeline.types import Status
from stages.artifacts import AUDIO, DIARIZATION, TRANSCRIPT, Files
from stages.options import JobOptions
from stages.settings import Settings


class JobStatus(Status):
    QUEUED = core.QUEUED
    DECODING = "decoding"
    DIARIZING = "diarizing"
    TRANSCRIBING = "transcribing"
    COMPLETED = core.COMPLETED
    FAILED = core.FAILED
    CANCELLED = core.CANCELLED


#: The observer that delivers webhooks (its state is the job view's ``webhook``).
NOTIFY = "notify"

TABLE = StageTable(
    options=JobOptions, status=JobStatus, settings=Settings, files=Files,
    stages=(
        StageSpec(name="decode", stage="stages.decode:DecodeStage",
                  running=JobStatus.DECODING, weight=5.0, reads=(INPUT,), writes=(AUDIO,)),
        StageSpec(name="diarize", stage="stages.diarize:DiarizeStage",
                  running=JobStatus.DIARIZING, weight=35.0, reads=(AUDIO,),
                  writes=(DIARIZATION,), gives_back_memory=True,
                  runs=lambda options: options.diarize),
        StageSpec(name="transcribe", stage="stages.transcribe:TranscribeStage",
                  running=JobStatus.TRANSCRIBING, weight=60.0, reads=(AUDIO, DIARIZATION),
                  writes=(TRANSCRIPT,), gives_back_memory=True),
    ),
    observers=(
        ObserverSpec(name=NOTIFY, stage="stages.notify:NotifyStage",
                     observes=lambda options: options.callback_url is not None,
                     each_stage=lambda options: options.callback_events == "stage",
                     concurrency=lambda settings: settings.webhook_concurrency),
    ),
)

#: The stages in pipeline order.
STAGES = TABLE.names
#: Every stage a worker consumes: the pipeline's and the observers.
WORKERS = TABLE.workers

#: What a speech stage is, and what it works with: the table's types.
SpeechStage = Stage[Settings, JobOptions, Files]
Context = JobContext[Settings, JobOptions, Files]
