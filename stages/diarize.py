"""The diarize stage: who spoke when, with pyannote.audio."""

from __future__ import annotations

from typing import Any

import numpy as np

import stages  # noqa: F401 - sets PYANNOTE_METRICS_ENABLED before pyannote is imported
from pipeline.settings import Settings
from pipeline.stage import JobContext, Stage
from pipeline.types import SpeakerTurn
from stages import artifacts, audio, models
from stages.decode import SAMPLE_RATE

# Share of the stage's progress spent in each step pyannote's hook reports.
_STEPS: dict[str, tuple[float, float]] = {
    "segmentation": (0.0, 0.3),
    "embeddings": (0.3, 0.65),
}


class DiarizeStage(Stage):
    name = "diarize"

    def setup(self, settings: Settings) -> None:
        models.diarization(settings)

    def process(self, ctx: JobContext) -> None:
        import torch

        samples = audio.load(ctx.files.audio)
        options = ctx.job.options
        loaded = models.diarization(ctx.settings)
        file = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": SAMPLE_RATE}
        ctx.progress(0.0, "finding speakers")
        with loaded.lock, torch.inference_mode(), models.out_of_memory_is_transient():
            output = loaded.model(
                file, num_speakers=options.num_speakers, min_speakers=options.min_speakers,
                max_speakers=options.max_speakers, hook=_Hook(ctx),
            )
        result = to_record(output)
        artifacts.write_atomically(ctx.files.diarization, result)
        ctx.log.info("found %d speakers in %d turns", len(result.speakers), len(result.turns))
        ctx.progress(1.0, f"{len(result.speakers)} speakers")


class _Hook:
    """pyannote's progress hook -> ctx.progress (which raises JobGone on cancellation)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def __call__(self, step: str, artifact: Any, file: Any = None,
                 total: int | None = None, completed: int | None = None) -> None:
        if step not in _STEPS or not total or completed is None:
            return
        start, span = _STEPS[step]
        self.ctx.progress(start + span * completed / total, step)


def to_record(output: Any) -> artifacts.Diarization:
    """pyannote's DiarizeOutput -> the diarization artifact."""
    annotation = output.speaker_diarization
    labels: list[str] = list(annotation.labels())
    centroids = output.speaker_embeddings
    embeddings: dict[str, list[float]] = {}
    if centroids is not None and len(centroids) == len(labels):
        embeddings = {
            label: [float(x) for x in row]
            for label, row in zip(labels, np.asarray(centroids))
            if np.all(np.isfinite(row))
        }
    return artifacts.Diarization(
        turns=_turns(annotation),
        exclusive_turns=_turns(output.exclusive_speaker_diarization),
        speakers=sorted(labels),
        embeddings=embeddings,
    )


def _turns(annotation: Any) -> list[SpeakerTurn]:
    return [
        SpeakerTurn(round(segment.start, 3), round(segment.end, 3), str(label))
        for segment, _, label in annotation.itertracks(yield_label=True)
    ]
