"""Speech detection (stages/compat/vad.py) with whisperx's real VAD model on real speech."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

from stages import audio
from stages.artifacts import SAMPLE_RATE
from stages.decode import DecodeStage
from stages.options import JobOptions
from tests.stages.conftest import SAMPLE_DIR, MakeContext

if TYPE_CHECKING:
    from stages.compat.vad import SpeechDetector
    from stages.transcribe import TranscribeStage


def _file(samples: npt.NDArray[np.float32]) -> dict[str, Any]:
    import torch

    return {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": SAMPLE_RATE}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.float32]:
    """pyannote's sample (30 s, two speakers) as the decode stage leaves it, twice over."""
    from tests.support.audio import repeated

    target = tmp_path_factory.mktemp("vad") / "sample-60s.wav"
    return audio.load(repeated(SAMPLE_DIR / "sample.wav", 60.0, target))


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    """The detector the transcribe stage uses (loaded once, shared per device)."""
    from stages import models

    loaded: SpeechDetector = models.speech_detector("cpu").model
    return loaded


def test_same_speech_as_whisperx_own_vad(speech: npt.NDArray[np.float32],
                                         detector: SpeechDetector) -> None:
    import torch
    from whisperx.vads import Pyannote

    from stages.compat.vad import BATCH_SIZE

    theirs = Pyannote(torch.device("cpu"), token=None, vad_onset=0.500, vad_offset=0.363)
    assert theirs.vad_pipeline._segmentation.batch_size != BATCH_SIZE

    scores, expected = detector(_file(speech)), theirs(_file(speech))

    np.testing.assert_allclose(scores.data, expected.data, atol=1e-5)
    frames, expected_frames = scores.sliding_window, expected.sliding_window
    assert ((frames.start, frames.step, frames.duration)
            == (expected_frames.start, expected_frames.step, expected_frames.duration))
    regions = [(s["start"], s["end"]) for s in Pyannote.merge_chunks(scores, 30)]
    assert regions == [(s["start"], s["end"]) for s in Pyannote.merge_chunks(expected, 30)]
    assert regions and regions[-1][1] > 55.0


def test_16_bit_samples_give_the_same_scores(speech: npt.NDArray[np.float32],
                                             detector: SpeechDetector) -> None:
    import torch

    pcm16 = (speech * 32768).astype(np.int16)  # exact: the samples came from 16-bit ones
    waveform = detector.preprocess_audio(audio.Pcm16Samples(pcm16))
    assert waveform.dtype == torch.int16

    scores = detector({"waveform": waveform, "sample_rate": SAMPLE_RATE})
    np.testing.assert_array_equal(scores.data, detector(_file(speech)).data)


def test_progress_after_each_batch_until_done(speech: npt.NDArray[np.float32],
                                              detector: SpeechDetector) -> None:
    import torch

    reports: list[float] = []
    threads = torch.get_num_threads()
    with detector.reporting(reports.append):
        detector(_file(speech))
    assert torch.get_num_threads() == threads  # one thread while it ran, then as before
    detector(_file(speech[:SAMPLE_RATE * 10]))  # outside the block: reported nowhere

    # 60 s in 5 s windows every 0.5 s: 111 windows, 14 batches of 8.
    assert len(reports) == 1 + 14
    assert reports == sorted(reports) and reports[0] == 0.0 and reports[-1] == 1.0


def test_a_raising_callback_stops_detection(speech: npt.NDArray[np.float32],
                                            detector: SpeechDetector) -> None:
    class Cancelled(Exception):
        pass

    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled), detector.reporting(cancel):
        detector(_file(speech))


def test_transcribe_reports_detection_then_decoding(
        make_ctx: MakeContext, decode: DecodeStage, transcribe: TranscribeStage) -> None:
    ctx, progress = make_ctx(SAMPLE_DIR / "sample.wav", JobOptions(diarize=False))
    decode.process(ctx)
    progress.reports.clear()
    transcribe.process(ctx)

    details = [detail for _, detail in progress.reports]
    first_decoding = details.index("transcribing")
    assert set(details[:first_decoding]) == {"detecting speech"}
    assert "detecting speech" not in details[first_decoding:]
    fractions = [fraction for fraction, _ in progress.reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert 0.0 < fractions[first_decoding - 1] <= fractions[first_decoding] < 1.0

