"""A diarize rerun with another speaker count re-clusters the saved embeddings instead of
running the segmentation and embedding models again."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pytest

from pipeline.stage import JobContext
from stages import artifacts, clustering_inputs
from stages.options import JobOptions
from tests.stages.conftest import SAMPLE_DIR, ConversationJob, MakeContext

if TYPE_CHECKING:
    from stages.diarize import DiarizeStage


def _rerun(job: JobContext, make_ctx: MakeContext, options: JobOptions) -> JobContext:
    """A job holding a copy of ``job``'s artifacts, to run diarize again with ``options``."""
    ctx, _ = make_ctx(None, options)
    for name in ("audio.wav", "diarization.json", clustering_inputs.path(job.files).name,
                 "transcript.json"):
        shutil.copyfile(job.files.root / name, ctx.files.root / name)
    return ctx


@contextlib.contextmanager
def _model_calls(ctx: JobContext) -> Iterator[Counter[str]]:
    """Counts the forward passes of the diarization pipeline's two models (torch forward
    hooks on the real modules, so nothing about the pipeline is replaced)."""
    from stages import models

    pipeline = models.diarization(ctx.settings).model
    calls: Counter[str] = Counter()
    modules = {"segmentation": pipeline._segmentation.model,
               "embedding": pipeline._embedding.model_}
    handles = [module.register_forward_pre_hook(
        lambda *_, name=name: calls.update([name])) for name, module in modules.items()]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _recluster_logged(caplog: pytest.LogCaptureFixture, ctx: JobContext) -> bool:
    return any(r.getMessage().startswith("re-clustered from saved embeddings")
               and getattr(r, "job_id", None) == ctx.job_id for r in caplog.records)


def _diarization(ctx: JobContext) -> artifacts.Diarization:
    return artifacts.read(ctx.files.diarization, artifacts.Diarization)


@pytest.mark.models
def test_rerun_with_other_speaker_counts_reclusters(
        conversation_job: ConversationJob, make_ctx: MakeContext, diarize: DiarizeStage,
        caplog: pytest.LogCaptureFixture) -> None:
    from stages.transcribe import assign_speakers

    caplog.set_level(logging.INFO)
    full = _diarization(conversation_job.ctx)
    assert len(full.speakers) == 3

    results: dict[int | None, artifacts.Diarization] = {}
    for count in (2, 3, None):
        ctx = _rerun(conversation_job.ctx, make_ctx, JobOptions(num_speakers=count))
        with _model_calls(ctx) as calls:
            diarize.process(ctx)
        assert not calls, f"models ran on a re-cluster: {calls}"
        assert _recluster_logged(caplog, ctx)
        results[count] = _diarization(ctx)

    assert len(results[2].speakers) == 2
    # Same options as the full run: exactly its output, centroids included.
    assert results[None] == full
    assert results[3].speakers == full.speakers
    # Every transcribed word gets the speaker the full three-speaker run gave it.
    segments = msgspec.to_builtins(artifacts.read(conversation_job.ctx.files.transcript,
                                                  artifacts.Transcript).segments)
    words = [w.get("speaker") for s in assign_speakers(segments, results[3])
             for w in s.get("words") or []]
    expected = [w.speaker for s in conversation_job.result.segments for w in s.words]
    assert len(words) == len(expected) >= 80
    assert sum(a == b for a, b in zip(words, expected, strict=True)) / len(words) >= 0.98


@pytest.mark.models
def test_changed_audio_is_diarized_again(
        conversation_job: ConversationJob, make_ctx: MakeContext, diarize: DiarizeStage,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ctx = _rerun(conversation_job.ctx, make_ctx, JobOptions(num_speakers=2))
    # As a rerun from decode leaves it: other audio (sample.wav is already 16 kHz mono s16).
    shutil.copyfile(SAMPLE_DIR / "sample.wav", ctx.files.audio)
    saved = clustering_inputs.path(ctx.files)
    before = saved.read_bytes()

    with _model_calls(ctx) as calls:
        diarize.process(ctx)
    assert calls["segmentation"] > 0 and calls["embedding"] > 0
    assert not _recluster_logged(caplog, ctx)
    assert saved.read_bytes() != before  # saved again, for this audio
    full = _diarization(ctx)
    assert len(full.speakers) == 2

    # Rerun with the same speaker count: re-clustered, and exactly the full run's output.
    with _model_calls(ctx) as calls:
        diarize.process(ctx)
    assert not calls and _recluster_logged(caplog, ctx)
    assert _diarization(ctx) == full


def _provenance(**changes: Any) -> clustering_inputs.Provenance:
    fields: dict[str, Any] = {
        "audio_sha256": "0" * 64, "model": "offline", "pyannote": "4.0.7",
        "segmentation_step": 0.1, "segmentation_threshold": None, "exclude_overlap": False,
        "embedding_frames": 300}
    return clustering_inputs.Provenance(**{**fields, **changes})


def test_saved_inputs_round_trip_only_for_the_same_provenance(tmp_path: Path) -> None:
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    rng = np.random.default_rng(0)
    segmentations = SlidingWindowFeature(rng.random((4, 589, 3), dtype=np.float32),
                                         SlidingWindow(start=0.0, duration=10.0, step=1.0))
    embeddings = rng.random((4, 3, 192), dtype=np.float32)
    embeddings[1, 2] = np.nan  # pyannote's "no embedding" for a (chunk, speaker)
    target = tmp_path / "saved.npz"
    clustering_inputs.save(target, clustering_inputs.ClusteringInputs(segmentations, embeddings),
                           _provenance())

    loaded = clustering_inputs.load(target, _provenance())
    assert loaded is not None
    assert np.array_equal(loaded.segmentations.data, segmentations.data)
    window = loaded.segmentations.sliding_window
    assert (window.start, window.duration, window.step) == (0.0, 10.0, 1.0)
    assert np.array_equal(loaded.embeddings, embeddings, equal_nan=True)
    assert loaded.embeddings.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["saved.npz"]  # no temporary left behind

    assert clustering_inputs.load(target, _provenance(audio_sha256="1" * 64)) is None
    assert clustering_inputs.load(target, _provenance(segmentation_step=0.2)) is None
    assert clustering_inputs.load(target, _provenance(embedding_frames=None)) is None
    # Saved by a version before the cap on embedded frames: computed without it.
    with np.load(target) as saved:
        arrays = dict(saved)
    meta = json.loads(arrays["meta"].tobytes())
    del meta["provenance"]["embedding_frames"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with target.open("wb") as out:
        np.savez(out, **arrays)
    assert clustering_inputs.load(target, _provenance()) is None
    assert clustering_inputs.load(tmp_path / "missing.npz", _provenance()) is None
    target.write_bytes(b"not a zip file")
    assert clustering_inputs.load(target, _provenance()) is None
