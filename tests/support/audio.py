"""Audio for the tests and the benchmark: pyannote's 30 s sample, longer files made by
repeating it, and small silent WAVs to upload."""

from __future__ import annotations

import importlib.util
import io
import wave
from pathlib import Path


def sample_dir() -> Path:
    # Found without importing pyannote (and torch), so that a test or a benchmark process that
    # only needs the files stays small and fast.
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyannote.audio is not installed")
    return Path(spec.origin).parent / "sample"


def sample_wav() -> Path:
    return sample_dir() / "sample.wav"


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def repeated(source: Path, seconds: float, target: Path) -> Path:
    """``target``: ``source`` repeated (and cut) to ``seconds`` long, same format."""
    with wave.open(str(source), "rb") as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    bytes_per_frame = params.sampwidth * params.nchannels
    wanted = int(seconds * params.framerate) * bytes_per_frame
    data = (frames * (wanted // len(frames) + 1))[:wanted]
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(data)
    return target


def silent_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """A small valid 16-bit mono WAV, to upload."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()
