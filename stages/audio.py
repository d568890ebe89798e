"""Reading the decoded audio (16 kHz mono s16 WAV written by the decode stage)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stages.decode import SAMPLE_RATE


def load(path: Path) -> npt.NDArray[np.float32]:
    """The samples of ``path`` as float32 in [-1, 1].

    At most the 16-bit bytes and the float32 samples exist at once: long audio must not
    cost more memory than that while loading.
    """
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path} is not 16 kHz mono 16-bit PCM")
        data = wav.readframes(wav.getnframes())
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
    samples *= 1 / 32768.0  # in place: no second float32 copy
    return samples
