"""Fixtures of the stage tests: settings, stages with their models loaded once per session,
and job contexts built by hand (no Redis)."""

from __future__ import annotations

import os

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from pipeline.stage import JobContext
from stages.decode import DecodeStage
from stages.options import JobOptions
from stages.settings import Settings
from stages.types import Result
from tests.support.audio import sample_dir
from tests.support.jobs import Progress, make_context
from tests.support.media_gen import Turn, conversation

if TYPE_CHECKING:
    # Imported for real inside the fixtures, so tests without models never load torch.
    from stages.clustering_inputs import ClusteringInputs
    from stages.diarize import DiarizeStage
    from stages.transcribe import TranscribeStage


SAMPLE_DIR = sample_dir()

MakeContext = Callable[..., tuple[JobContext, Progress]]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(device="cpu", whisper_model="tiny.en")


@pytest.fixture
def make_ctx(tmp_path: Path, settings: Settings) -> MakeContext:
    """make_ctx(source, options=None, **setting_overrides) -> (context, progress)."""

    def make(source: Path | None, options: JobOptions | None = None,
             **overrides: object) -> tuple[JobContext, Progress]:
        job_settings = Settings.from_env({}, **{
            "device": settings.device, "whisper_model": settings.whisper_model, **overrides})
        return make_context(tmp_path / "jobs", source, job_settings, options)

    return make


@pytest.fixture(scope="session")
def decode() -> DecodeStage:
    return DecodeStage()


@pytest.fixture(scope="session")
def diarize(settings: Settings) -> DiarizeStage:
    from stages.diarize import DiarizeStage

    stage = DiarizeStage()
    stage.setup(settings)
    return stage


@pytest.fixture(scope="session")
def transcribe(settings: Settings) -> TranscribeStage:
    from stages.transcribe import TranscribeStage

    stage = TranscribeStage()
    stage.setup(settings)
    return stage


@dataclass(frozen=True)
class ConversationJob:
    """The synthetic three-speaker conversation, through decode, diarize and transcribe."""

    ctx: JobContext
    turns: list[Turn]  # the reference
    result: Result


@pytest.fixture(scope="session")
def speech_tools() -> None:
    """Skips a test that makes speech when espeak-ng or sox is missing."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox (apt-get install espeak-ng sox)")


@pytest.fixture(scope="session")
def conversation_job(tmp_path_factory: pytest.TempPathFactory, settings: Settings,
                     decode: DecodeStage, diarize: DiarizeStage,
                     transcribe: TranscribeStage, speech_tools: None) -> ConversationJob:
    """Run once per session: the full diarization is the slow part of the tests using it.
    Tests must not change its files (copy them into a job of their own instead)."""
    audio, turns = conversation(tmp_path_factory.mktemp("conversation"))
    ctx, _ = make_context(tmp_path_factory.mktemp("jobs"), audio, settings)
    for stage in (decode, diarize, transcribe):
        stage.process(ctx)
    result = msgspec.json.decode(ctx.files.result(ctx.job.run).read_bytes(), type=Result)
    return ConversationJob(ctx, turns, result)


@dataclass(frozen=True)
class Reclustering:
    """What stages.diarize.recluster needs to re-cluster the conversation job."""

    pipeline: Any  # the loaded diarization pipeline (its lock is not taken: tests run alone)
    file: dict[str, Any]  # the job's audio, as pyannote takes it
    inputs: ClusteringInputs  # what the job's full run saved


@pytest.fixture(scope="session")
def conversation_reclustering(conversation_job: ConversationJob,
                              settings: Settings) -> Reclustering:
    import torch

    from stages import audio, clustering_inputs, models
    from stages.artifacts import SAMPLE_RATE
    from stages.diarize import provenance

    pipeline = models.diarization(settings).model
    files = conversation_job.ctx.files
    inputs = clustering_inputs.load(clustering_inputs.path(files),
                                    provenance(settings, pipeline, files.audio))
    assert inputs is not None
    file = {"waveform": torch.from_numpy(audio.load(files.audio)).unsqueeze(0),
            "sample_rate": SAMPLE_RATE}
    return Reclustering(pipeline, file, inputs)
