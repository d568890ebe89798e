"""Reading the decoded audio, and the diarization and transcription models running on 16-bit
samples."""

from __future__ import annotations

import struct
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stages import audio
from stages.settings import Settings
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


def _with_a_chunk_before_the_samples(path: Path) -> Path:
    """``path`` (as _pcm16_wav writes it) with a LIST chunk between its format and samples,
    so that the samples start elsewhere than after the usual 44-byte header."""
    data = path.read_bytes()
    assert data[36:40] == b"data"
    extra = b"LIST" + struct.pack("<I", 6) + b"INFOxx"
    riff_size = struct.unpack("<I", data[4:8])[0] + len(extra)
    path.write_bytes(data[:4] + struct.pack("<I", riff_size) + data[8:36] + extra + data[36:])
    return path


def test_mapped_samples_are_the_loaded_ones(tmp_path: Path) -> None:
    frames = np.random.default_rng(9).integers(-32768, 32768, 9000).astype(np.int16)
    path = _with_a_chunk_before_the_samples(_pcm16_wav(tmp_path / "audio.wav", frames))
    float32 = audio.load(path)
    mapped = audio.Pcm16Samples.map(path)

    np.testing.assert_array_equal(mapped.pcm16, frames)
    np.testing.assert_array_equal(audio.load_pcm16(path), frames)
    assert mapped.pcm16.flags.writeable  # torch takes it without copying or warning
    assert len(mapped) == len(float32) and mapped.shape == float32.shape
    for part in (slice(None), slice(100, 2000), slice(8000, 20000), slice(-50, None)):
        np.testing.assert_array_equal(mapped[part], float32[part])
    mapped.release()
    np.testing.assert_array_equal(mapped.pcm16, frames)  # read again from the file


@pytest.mark.parametrize("read", [audio.load_pcm16, lambda p: audio.Pcm16Samples.map(p).pcm16],
                         ids=["loaded", "mapped"])
def test_a_truncated_file_gives_the_frames_it_holds(
        tmp_path: Path, read: Callable[[Path], np.ndarray]) -> None:
    frames = np.arange(1000, dtype=np.int16)
    path = _pcm16_wav(tmp_path / "audio.wav", frames)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 2 * 400)  # the header still says 1000 frames
    np.testing.assert_array_equal(read(path), frames[:600])


def _resident_kb(path: Path) -> int:
    """How much of this process's mappings of ``path`` is in its memory (RSS), in kB."""
    total, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            current = fields[5] if len(fields) > 5 else None
        elif fields[0] == "Rss:" and current == str(path):
            total += int(fields[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_mapped_samples_read_leave_no_memory_behind(tmp_path: Path) -> None:
    """The model stages map a job's audio so that long audio costs them no memory beyond
    what is being read: reading slices, or all of it and releasing, leaves none resident."""
    frames = np.random.default_rng(10).integers(-32768, 32768, 16_000 * 300).astype(np.int16)
    path = _pcm16_wav(tmp_path / "audio.wav", frames)  # 5 min: 9.6 MB of samples
    mapped = audio.Pcm16Samples.map(path)
    whole_kb = frames.nbytes // 1024

    step = 16_000 * 30
    chunks = [mapped[i:i + step] for i in range(0, len(mapped), step)]
    np.testing.assert_array_equal(np.concatenate(chunks), frames / 32768.0)
    assert _resident_kb(path) == 0

    assert int(mapped.pcm16.astype(np.int64).sum()) == int(frames.astype(np.int64).sum())
    assert _resident_kb(path) >= whole_kb  # read directly: resident until released
    mapped.release()
    assert _resident_kb(path) == 0


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
    """The stage reads a job's audio as mapped 16-bit samples, and releases what it read
    after every batch; the models must see the very same float32 chunks, so segmentation,
    embeddings and speakers must all be identical."""
    import torch

    from stages import models
    from stages.diarize import diarize

    loaded = models.diarization(settings)
    assert models.takes_pcm16(loaded.model)
    path = SAMPLE_DIR / "sample.wav"
    mapped = audio.Pcm16Samples.map(path)
    runs = []
    for samples, release in ((audio.load(path), lambda: None), (mapped.pcm16, mapped.release)):
        file = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": 16_000}
        with loaded.lock, torch.inference_mode():
            output, computed = diarize(loaded.model, file, {}, lambda *_: None, release)
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
    """The transcribe stage reads its job's audio as mapped 16-bit samples that read as
    float32: speech detection and every 30 s chunk must see the very same float32 samples,
    so the text and times match."""
    from stages import models

    loaded = models.whisper(settings.whisper_model, settings)
    detector = models.speech_detector(settings.device)
    path = SAMPLE_DIR / "sample.wav"
    runs = []
    for samples in (audio.load(path), audio.Pcm16Samples.map(path)):
        with loaded.lock, detector.lock:
            runs.append(loaded.model.transcribe(samples, batch_size=2, language="en"))
    float32, pcm16 = runs
    assert float32["segments"] and pcm16 == float32
