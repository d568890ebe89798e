"""The shared test harness's own helpers (tests/support), which the benchmark uses too."""

from __future__ import annotations

import wave
from pathlib import Path

from tests.support import audio, memory


def test_repeated_audio_has_the_asked_length(tmp_path: Path) -> None:
    source = tmp_path / "one.wav"
    source.write_bytes(audio.silent_wav(1.0))
    longer = audio.repeated(source, 2.5, tmp_path / "long.wav")
    assert audio.duration(longer) == 2.5
    with wave.open(str(longer), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)


def test_memory_readings_are_positive() -> None:
    memory.reset_peak()
    assert 0 < memory.rss_mb() <= memory.peak_rss_mb() + 1
