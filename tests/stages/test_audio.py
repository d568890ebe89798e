"""Reading the decoded audio, and the diarization and transcription models running on 16-bit
samples."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline.settings import Settings
from stages import audio
from tests.stages.conftest import SAMPLE_DIR


def _pcm16_wav(path: Path, frames: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(frames.astype("<i2").tobytes())
    return path


def test_pcm16_and_float32_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks smaller than the file, so that the copy goes through several reads.
    monkeypatch.setattr(audio, "_BLOCK_FRAMES", 1000)
    frames = np.random.default_rng(7).integers(-32768, 32768, 4321).astype(np.int16)
    frames[:2] = (-32768, 32767)
    path = _pcm16_wav(tmp_path / "audio.wav", frames)

    pcm16 = audio.load_pcm16(path)
    assert pcm16.dtype == np.int16 and pcm16.flags.writeable
    np.testing.assert_array_equal(pcm16, frames)
    samples = audio.load(path)
    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, frames / 32768.0)
    assert samples.min() == -1.0 and samples.max() < 1.0


def test_pcm16_samples_read_as_the_float32_samples(tmp_path: Path) -> None:
    frames = np.random.default_rng(8).integers(-32768, 32768, 9000).astype(np.int16)
    path = _pcm16_wav(tmp_path / "audio.wav", frames)
    float32 = audio.load(path)
    held = audio.Pcm16Samples(audio.load_pcm16(path))

    assert len(held) == len(float32) and held.shape == float32.shape
    for part in (slice(None), slice(100, 2000), slice(8000, 20000), slice(-50, None)):
        chunk = held[part]
        assert chunk.dtype == np.float32
        np.testing.assert_array_equal(chunk, float32[part])


def test_a_truncated_file_gives_the_frames_it_holds(tmp_path: Path) -> None:
    frames = np.arange(1000, dtype=np.int16)
    path = _pcm16_wav(tmp_path / "audio.wav", frames)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 2 * 400)  # the header still says 1000 frames
    np.testing.assert_array_equal(audio.load_pcm16(path), frames[:600])


def test_other_formats_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\0" * 400)
    with pytest.raises(ValueError, match="not 16 kHz mono 16-bit PCM"):
        audio.load_pcm16(path)


@pytest.mark.models
def test_diarizing_pcm16_computes_what_float32_does(settings: Settings) -> None:
    """The stage holds a job's audio as 16-bit samples; the models must see the very same
    float32 chunks, so segmentation, embeddings and speakers must all be identical."""
    import torch

    from stages import models
    from stages.diarize import diarize

    loaded = models.diarization(settings)
    assert models.takes_pcm16(loaded.model)
    path = SAMPLE_DIR / "sample.wav"
    runs = []
    for samples in (audio.load(path), audio.load_pcm16(path)):
        file = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": 16_000}
        with loaded.lock, torch.inference_mode():
            output, computed = diarize(loaded.model, file, {}, lambda *_: None)
        assert computed is not None
        runs.append((output, computed))
    (float32, float32_inputs), (pcm16, pcm16_inputs) = runs

    np.testing.assert_array_equal(pcm16_inputs.segmentations.data,
                                  float32_inputs.segmentations.data)
    np.testing.assert_array_equal(pcm16_inputs.embeddings, float32_inputs.embeddings)
    assert (list(pcm16.speaker_diarization.itertracks(yield_label=True))
            == list(float32.speaker_diarization.itertracks(yield_label=True)))
    assert len(pcm16.speaker_diarization.labels()) >= 2


@pytest.mark.models
def test_transcribing_pcm16_gives_what_float32_does(settings: Settings) -> None:
    """The transcribe stage holds 16-bit samples that read as float32: speech detection and
    every 30 s chunk must see the very same float32 samples, so the text and times match."""
    from stages import models

    loaded = models.whisper(settings.whisper_model, settings.device)
    detector = models.speech_detector(settings.device)
    path = SAMPLE_DIR / "sample.wav"
    runs = []
    for samples in (audio.load(path), audio.Pcm16Samples(audio.load_pcm16(path))):
        with loaded.lock, detector.lock:
            runs.append(loaded.model.transcribe(samples, batch_size=2, language="en"))
    float32, pcm16 = runs
    assert float32["segments"] and pcm16 == float32
