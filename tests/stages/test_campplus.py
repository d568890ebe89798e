"""The offline CAM++ embedding model: its front end run over time slices computes what it
computes over the whole row, and a batch's embeddings are its rows' own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stages import audio
from tests.support.audio import sample_wav

if TYPE_CHECKING:
    import torch

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    """Fbank features of the first 10 s of pyannote's sample (two speakers): (1000, 80)."""
    import torch

    from stages.compat import campplus as _campplus

    samples = torch.from_numpy(audio.load(sample_wav())[:160_000])
    return _campplus._fbank(samples.unsqueeze(0))


def test_the_front_end_is_sliced(features: torch.Tensor) -> None:
    from stages.compat.campplus import CamPlusPlus, _TimeSliced

    head = CamPlusPlus().campplus.head
    assert isinstance(head, _TimeSliced)
    # Slicing only pays off where a row is several slices long; a 10 s row is 1,000 frames.
    assert head.reach * 2 < head.frames < features.shape[0] // 4


@pytest.mark.parametrize("frames", [1000, 987, 260, 57])
def test_sliced_front_end_equals_the_whole(features: torch.Tensor, frames: int) -> None:
    """Rows of several slices, a ragged last slice, a row just past one slice with its
    context, and a row shorter than a slice."""
    import torch

    from stages.compat.campplus import CamPlusPlus

    model = CamPlusPlus()
    sliced = model.campplus.head
    x = (features[:frames] - features[:frames].mean(dim=0)).T.unsqueeze(0)  # (1, 80, frames)
    with torch.inference_mode():
        whole_out = sliced.module(x)
        sliced_out = sliced(x)
        assert sliced_out.shape == whole_out.shape
        # Not bit for bit: a matrix product over a slice may sum in another order.
        torch.testing.assert_close(sliced_out, whole_out, rtol=1e-5, atol=1e-5)
        embedding = model.campplus(x.transpose(1, 2))
        model.campplus.head = sliced.module
        whole_embedding = model.campplus(x.transpose(1, 2))
    torch.testing.assert_close(embedding, whole_embedding, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_a_batch_embeds_each_row_as_alone(runtime: str, tmp_path: Path) -> None:
    """So the stage's embedding batch size (which sets how often it hands memory back)
    changes no result: rows of two windows of two speakers, masks of different lengths
    (three of them capped to MAX_FRAMES, so embedded in one call), one too short to
    embed. On ONNX Runtime rows of one length go through together; torch takes them one
    at a time."""
    import numpy as np
    import torch

    from stages.compat.campplus import CamPlusPlus

    model = CamPlusPlus()
    assert runtime == "torch" or model.use_onnx(tmp_path, threads=1)
    samples = torch.from_numpy(audio.load(sample_wav()))
    # Two windows, each handed over twice in a row, as pyannote does for its local speakers.
    waveforms = torch.stack([samples[i * 80_000:i * 80_000 + 160_000] for i in (0, 0, 1, 1)])
    masks = torch.zeros(4, 589)
    for row, (start, stop) in enumerate([(0, 589), (100, 400), (250, 260), (0, 300)]):
        masks[row, start:stop] = 1.0
    with torch.inference_mode():
        batch = model(waveforms.unsqueeze(1), weights=masks)
        alone = torch.cat([model(waveforms[i:i + 1].unsqueeze(1), weights=masks[i:i + 1])
                           for i in range(4)])
    assert torch.isnan(batch[2]).all()  # 10 frames: too short
    assert np.array_equal(batch.numpy(), alone.numpy(), equal_nan=True)


def test_a_long_activity_is_embedded_from_its_middle_frames() -> None:
    """A speaker active in more of a window than MAX_FRAMES is embedded from the middle
    MAX_FRAMES of its active frames; a shorter activity from all of them."""
    import torch

    from stages.compat import campplus as _campplus
    from stages.compat.campplus import MAX_FRAMES, CamPlusPlus

    model = CamPlusPlus()
    waveform = torch.from_numpy(audio.load(sample_wav())[:160_000]).view(1, 1, -1)
    features = _campplus._fbank(waveform[0])
    start = (features.shape[0] - MAX_FRAMES) // 2
    middle = features[start:start + MAX_FRAMES]
    short = torch.zeros(1, 589)
    short[0, :100] = 1.0  # about 170 fbank frames
    with torch.inference_mode():
        got = model(waveform, weights=torch.ones(1, 589))
        want = model.campplus((middle - middle.mean(dim=0)).unsqueeze(0))
        assert torch.equal(model(waveform, weights=short),
                           CamPlusPlus(max_frames=None)(waveform, weights=short))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_reach_of_a_stack_of_convolutions() -> None:
    import torch

    from stages.compat.campplus import time_reach

    stack = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.Conv2d(4, 4, (3, 5), stride=(2, 1), padding=(1, 2)),
        torch.nn.Conv2d(4, 4, 3, padding="same", dilation=(1, 3)),
        torch.nn.Conv2d(4, 4, 1),
    )
    assert time_reach(stack) == 1 + 2 + 3
    assert time_reach(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1)) is None
    assert time_reach(torch.nn.Conv2d(1, 4, 3)) is None  # no padding: shortens the axis
    assert time_reach(torch.nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")) is None


def test_onnx_runtime_gives_torch_embeddings(features: torch.Tensor, tmp_path: Path) -> None:
    """The exported CAM++ embeds real speech as torch does, at a window's length, between,
    and at the shortest row embedded; and a second load reuses the exported file."""
    import torch

    from stages.compat.campplus import CamPlusPlus

    model = CamPlusPlus()
    assert model.use_onnx(tmp_path, threads=1)
    (exported,) = tmp_path.iterdir()
    written = exported.stat().st_mtime_ns
    for frames in (1000, 613, 50):
        x = (features[:frames] - features[:frames].mean(dim=0)).unsqueeze(0)
        with torch.inference_mode():
            want, got = model.campplus(x), model._campplus(x)
        assert torch.nn.functional.cosine_similarity(want, got).item() > 0.9999
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)
    assert CamPlusPlus().use_onnx(tmp_path, threads=1)
    assert exported.stat().st_mtime_ns == written


def test_onnx_runtime_that_disagrees_keeps_torch(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cached export that is not CAM++ (a damaged or stale file under its name) fails
    the check at load: torch stays in use, and the log says why."""
    import torch

    from stages.compat import onnx
    from stages.compat.campplus import CamPlusPlus

    assert CamPlusPlus().use_onnx(tmp_path, threads=1)
    (exported,) = tmp_path.iterdir()
    exported.unlink()
    onnx.exported(torch.nn.Flatten(), torch.zeros(1, 998, 80), exported,
                  {0: "batch", 1: "frames"})
    model = CamPlusPlus()
    with caplog.at_level("WARNING", logger="stages.compat.onnx"):
        assert not model.use_onnx(tmp_path, threads=1)
    assert "differ from torch's" in caplog.text
    assert model._onnx is None
