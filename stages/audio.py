"""The decoded audio (16 kHz mono 16-bit WAV, written by the decode stage) and its samples."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from stages.decode import SAMPLE_RATE

if TYPE_CHECKING:
    import torch

#: 16-bit samples -> float32 in [-1, 1): a power of two, so the scaling is exact.
PCM16_SCALE = 1 / 32768.0
# Frames copied per read: the bytes of one block are all that exists beside the samples.
_BLOCK_FRAMES = 1 << 20


def load_pcm16(path: Path) -> npt.NDArray[np.int16]:
    """The samples of ``path`` as 16-bit integers, in one writable array."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path} is not 16 kHz mono 16-bit PCM")
        samples = np.empty(wav.getnframes(), dtype=np.int16)
        done = 0
        while done < len(samples):
            block = np.frombuffer(wav.readframes(_BLOCK_FRAMES), dtype="<i2")
            if not len(block):  # the header promised more frames than the file holds
                return samples[:done]
            samples[done:done + len(block)] = block
            done += len(block)
    return samples


def load(path: Path) -> npt.NDArray[np.float32]:
    """The samples of ``path`` as float32 in [-1, 1).

    At most the 16-bit and the float32 samples exist at once: long audio must not cost more
    memory than that while loading.
    """
    return to_float32(load_pcm16(path))


def to_float32(pcm16: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """16-bit samples as float32 in [-1, 1), with one float32 copy."""
    samples = pcm16.astype(np.float32)
    samples *= PCM16_SCALE  # in place: no second float32 copy
    return samples


class Pcm16Samples:
    """Audio held as 16-bit samples that reads as float32: a slice is exactly the float32
    samples :func:`load` would give for that range, converted when asked for.

    whisperx reads a job's audio only through ``len``, ``shape`` and slices (the voice
    activity detection aside, see stages/_vad.py), so the transcribe stage holds long audio
    at half the memory of float32 and converts one 30 s chunk at a time.
    """

    def __init__(self, pcm16: npt.NDArray[np.int16]) -> None:
        self.pcm16 = pcm16

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pcm16.shape

    def __len__(self) -> int:
        return len(self.pcm16)

    def __getitem__(self, index: slice) -> npt.NDArray[np.float32]:
        return to_float32(self.pcm16[index])


def accept_pcm16(model: torch.nn.Module) -> None:
    """Let ``model`` take 16-bit samples as its first input: each call scales them to the
    float32 that :func:`load` gives, so the model computes exactly what it would on those.

    A caller can then hold long audio as 16-bit samples, half the memory of float32, and
    the model converts only the chunk it is given.
    """
    import torch

    def to_float(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if args and isinstance(args[0], torch.Tensor) and args[0].dtype == torch.int16:
            return (args[0].to(torch.float32).mul_(PCM16_SCALE), *args[1:])
        return None

    model.register_forward_pre_hook(to_float)
