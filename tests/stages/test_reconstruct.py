"""Diarization's reconstruction in float32 gives exactly what pyannote's own (float64) does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stages import models
from stages.compat import reconstruct as _reconstruct
from stages.settings import Settings
from tests.stages.conftest import Reclustering

pytestmark = pytest.mark.models


def _pyannotes(pipeline: Any) -> Any:
    from pyannote.audio.pipelines import SpeakerDiarization

    return SpeakerDiarization.reconstruct.__get__(pipeline)


def _frames(feature: Any) -> tuple[float, float, float]:
    window = feature.sliding_window
    return window.start, window.duration, window.step


def test_the_loaded_pipeline_reconstructs_in_float32(settings: Settings) -> None:
    pipeline = models.diarization(settings).model
    assert pipeline.reconstruct.func is _reconstruct.reconstruct


def test_same_discrete_diarization_as_pyannote(settings: Settings) -> None:
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    pipeline = models.diarization(settings).model
    rng = np.random.default_rng(0)
    chunks, frames, local_speakers = 40, 589, 3
    segmentations = SlidingWindowFeature(
        rng.random((chunks, frames, local_speakers), dtype=np.float32),
        SlidingWindow(start=0.0, duration=10.0, step=1.0))
    # Several local speakers in one cluster (their maximum is taken) and inactive ones (-2).
    hard_clusters = rng.integers(-2, 4, size=(chunks, local_speakers))
    hard_clusters[hard_clusters == -1] = 1
    count = SlidingWindowFeature(rng.integers(0, 3, size=(3000, 1), dtype=np.int8),
                                 SlidingWindow(start=0.0, duration=0.0619, step=0.0169))
    for max_count in (2, 1):  # as pyannote reconstructs: all speakers, then exclusive
        count.data = np.minimum(count.data, max_count)
        ours = pipeline.reconstruct(segmentations, hard_clusters.copy(), count)
        pyannotes = _pyannotes(pipeline)(segmentations, hard_clusters.copy(), count)
        assert _frames(ours) == _frames(pyannotes)
        assert np.array_equal(ours.data, pyannotes.data)


def test_same_diarization_of_a_conversation(conversation_reclustering: Reclustering,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from stages.diarize import recluster

    pipeline, file, inputs = (conversation_reclustering.pipeline, conversation_reclustering.file,
                              conversation_reclustering.inputs)
    ours = recluster(pipeline, file, inputs, {})
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "reconstruct", _pyannotes(pipeline))
        pyannotes = recluster(pipeline, file, inputs, {})
    assert ours.speaker_diarization == pyannotes.speaker_diarization
    assert ours.exclusive_speaker_diarization == pyannotes.exclusive_speaker_diarization
