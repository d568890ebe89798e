"""What a diarization run computed before clustering, kept so that a rerun with another
speaker count only has to re-cluster.

Segmentation and embeddings are nearly all of pyannote's diarization time, and they do not
depend on the speaker count options: only clustering and reconstruction do. The diarize
stage saves them beside its artifact as one compressed .npz file (arrays ``segmentations``
and ``embeddings``, plus ``meta``: the msgspec JSON of :class:`Meta` as bytes), written
atomically like every artifact.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from pipeline.files import JobFiles
from stages import artifacts

# Bumped whenever the saved arrays change meaning: older files are then ignored.
FORMAT = 1


class Provenance(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the saved arrays depend on: equal provenance means they can be reused."""

    format: int = FORMAT
    audio_sha256: str
    model: str  # the diarization pipeline (see Settings.diarization_identity)
    pyannote: str  # pyannote.audio's version
    segmentation_step: float  # as a fraction of the segmentation window
    segmentation_threshold: float | None  # None for powerset models, which need none
    exclude_overlap: bool  # whether embeddings left overlapped speech out
    # The most frames of a speaker's activity one embedding is computed from (the offline
    # CAM++'s cap); None: all of them. Files saved before the field existed do not match.
    embedding_frames: int | None


class Meta(msgspec.Struct, frozen=True, kw_only=True):
    provenance: Provenance
    # The segmentation chunks' pyannote.core.SlidingWindow.
    window_start: float
    window_duration: float
    window_step: float


@dataclass(frozen=True)
class ClusteringInputs:
    """pyannote's raw segmentations (a SlidingWindowFeature of shape (chunks, frames,
    local speakers)) and the embedding of every (chunk, local speaker): (chunks, local
    speakers, dimension), NaN where a speaker is too short for one."""

    segmentations: Any
    embeddings: npt.NDArray[np.float32]


def path(files: JobFiles) -> Path:
    return files.root / "diarization-embeddings.npz"


def audio_digest(audio: Path) -> str:
    with audio.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save(target: Path, inputs: ClusteringInputs, provenance: Provenance) -> None:
    window = inputs.segmentations.sliding_window
    meta = Meta(provenance=provenance, window_start=float(window.start),
                window_duration=float(window.duration), window_step=float(window.step))
    artifacts.replace_atomically(target, lambda out: np.savez_compressed(
        out, segmentations=inputs.segmentations.data, embeddings=inputs.embeddings,
        meta=np.frombuffer(msgspec.json.encode(meta), dtype=np.uint8)))


def load(source: Path, provenance: Provenance) -> ClusteringInputs | None:
    """The saved inputs if ``source`` holds some with this provenance, else None."""
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    try:
        with np.load(source, allow_pickle=False) as saved:
            meta = msgspec.json.decode(saved["meta"].tobytes(), type=Meta)
            if meta.provenance != provenance:
                return None
            segmentations, embeddings = saved["segmentations"], saved["embeddings"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, msgspec.DecodeError):
        # Missing, or from an older format: the caller simply diarizes from scratch.
        return None
    window = SlidingWindow(start=meta.window_start, duration=meta.window_duration,
                           step=meta.window_step)
    return ClusteringInputs(SlidingWindowFeature(segmentations, window), embeddings)
