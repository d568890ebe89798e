"""What the stages rely on in pyannote.audio beyond its public API.

pyannote is imported here only inside functions: the declarations are read when a worker
starts, before any model library is loaded.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from pipeline.compat import Patch

DISTRIBUTION = "pyannote.audio"
SUPPORTED = ">=4.0.7,<4.1"

PATCHES = (
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="the private _segmentation and _embedding of its pipelines (the models, to "
          "feed them 16-bit samples; the segmentation's per-batch hook)"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="the name linkage in pyannote.audio.pipelines.clustering, replaced "
          "(stages/compat/linkage.py)"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="SpeakerDiarization.reconstruct, copied in float32 "
          "(stages/compat/reconstruct.py)"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="SpeakerDiarization loading a PLDA from the hub unless handed one, "
          "handed an empty one offline"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="SpeakerDiarization's training cache (training_cache/segmentation, "
          "training_cache/embeddings), through which a rerun only re-clusters"),
)

# pyannote.audio.core.io warns at import, 22 lines, when torchcodec cannot load FFmpeg's
# libraries. The stages never let pyannote decode (they hand it waveforms), so the warning
# says nothing an operator can act on.
_TORCHCODEC_WARNING = r"\s*torchcodec is not installed correctly"
# Lightning logs this on every load of a checkpoint saved by an older Lightning (whisperx's
# VAD model is from 1.5.4): the upgrade happens in memory, every time, and is harmless.
_UPGRADE_LOGGER = "lightning.pytorch.utilities.migration.utils"
_UPGRADE_LINE = "Lightning automatically upgraded your loaded checkpoint"


def _not_an_upgrade_line(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_UPGRADE_LINE)


def quiet() -> None:
    """Filter pyannote's start-up noise at its source (before pyannote is imported)."""
    warnings.filterwarnings("ignore", message=_TORCHCODEC_WARNING, category=UserWarning,
                            module=r"pyannote\.audio\.core\.io")
    upgrades = logging.getLogger(_UPGRADE_LOGGER)
    if _not_an_upgrade_line not in upgrades.filters:
        upgrades.addFilter(_not_an_upgrade_line)


def segmentation_inference(pipeline: Any) -> Any:
    """The sliding-window ``Inference`` a pyannote pipeline runs its segmentation model
    with: only it takes a per-batch hook, and its ``model`` is the torch model."""
    return pipeline._segmentation


def pyannote_embedding_model(pipeline: Any) -> Any | None:
    """The torch model of a diarization pipeline's speaker embedding when it is one of
    pyannote's own (the offline CAM++, the hub's WeSpeaker); None for SpeechBrain, NeMo and
    ONNX embeddings, which are not torch models pyannote runs."""
    from pyannote.audio.pipelines.speaker_verification import (
        PyannoteAudioPretrainedSpeakerEmbedding,
    )

    embedding = pipeline._embedding
    if isinstance(embedding, PyannoteAudioPretrainedSpeakerEmbedding):
        return embedding.model_
    return None


def install_memory_patches(pipeline: Any) -> None:
    """Cluster in linear memory (process-wide) and reconstruct ``pipeline``'s output in
    float32 (see the two modules)."""
    from stages.compat import linkage, reconstruct

    linkage.install()
    reconstruct.install(pipeline)


def no_plda() -> Any:
    """A PLDA for a ``SpeakerDiarization`` built with agglomerative clustering, which never
    reads one: its constructor loads one from the hub unless handed an instance."""
    from pyannote.audio.core.plda import PLDA

    class _NoPLDA(PLDA):
        def __init__(self) -> None:
            pass

    return _NoPLDA()


def from_clustering(pipeline: Any, file: dict[str, Any], segmentations: Any,
                    embeddings: Any, speakers: dict[str, int | None]) -> Any:
    """``pipeline``'s run from clustering on, with saved ``segmentations`` and
    ``embeddings`` standing in for its models.

    pyannote's hyper-parameter tuning reuses them the same way: in training mode the
    pipeline takes them from these keys of the file instead of running its models, and the
    rest is pyannote's own code. The caller holds the pipeline's lock.
    """
    cached = {
        **file,
        "training_cache/segmentation": segmentations,
        # The threshold is only checked for non-powerset models; the caller guarantees it
        # is the one the embeddings were computed with.
        "training_cache/embeddings": {
            "embeddings": embeddings,
            "segmentation.threshold": getattr(pipeline.segmentation, "threshold", None),
        },
    }
    pipeline.training = True
    try:
        return pipeline(cached, **speakers)
    finally:
        pipeline.training = False
