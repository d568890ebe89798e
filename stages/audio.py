"""The decoded audio (see stages.artifacts, written by the decode stage) and its samples."""

from __future__ import annotations

import mmap
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from stages.artifacts import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH

if TYPE_CHECKING:
    import torch

#: 16-bit samples -> float32 in [-1, 1): a power of two, so the scaling is exact.
PCM16_SCALE = 1 / 32768.0
# Frames copied per read: the bytes of one block are all that exists beside the samples.
_BLOCK_FRAMES = 1 << 20


def load_pcm16(path: Path) -> npt.NDArray[np.int16]:
    """The samples of ``path`` as 16-bit integers, in one writable array."""
    with wave.open(str(path), "rb") as wav:
        _check_format(wav, path)
        samples = np.empty(wav.getnframes(), dtype=np.int16)
        done = 0
        while done < len(samples):
            block = np.frombuffer(wav.readframes(_BLOCK_FRAMES), dtype="<i2")
            if not len(block):  # the header promised more frames than the file holds
                return samples[:done]
            samples[done:done + len(block)] = block
            done += len(block)
    return samples


def _check_format(wav: wave.Wave_read, path: Path) -> None:
    expected = (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH)
    if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != expected:
        raise ValueError(f"{path} is not {SAMPLE_RATE / 1000:g} kHz mono "
                         f"{8 * SAMPLE_WIDTH}-bit PCM")


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
    """Audio as 16-bit samples that reads as float32: a slice is exactly the float32 samples
    :func:`load` would give for that range, converted when asked for.

    whisperx reads a job's audio only through ``len``, ``shape`` and slices (the voice
    activity detection aside, see stages/compat/vad.py), so the transcribe stage never needs the
    whole audio as float32, and converts one 30 s chunk at a time.

    From :meth:`map`, the samples are the job's WAV file mapped into memory rather than
    loaded: the pages read stay in the kernel's page cache, which it can drop when memory
    runs short, and :meth:`release` drops them from this process (a slice releases them
    itself). A job's audio then costs the process only what is being read, not
    2 MB per minute for as long as the job runs.
    """

    def __init__(self, pcm16: npt.NDArray[np.int16]) -> None:
        self.pcm16 = pcm16
        self._mapping: mmap.mmap | None = None

    @classmethod
    def map(cls, path: Path) -> Pcm16Samples:
        """The samples of ``path`` (as :func:`load_pcm16` reads them), mapped, not loaded.

        The file must not be truncated while mapped (reading a page beyond its end would
        kill the process); the decode stage replaces a job's audio by renaming a new file
        over it, which leaves the mapped one whole.
        """
        with path.open("rb") as file:
            with wave.open(file) as wav:
                _check_format(wav, path)
                frames = wav.getnframes()
            # wave reads the header up to the first sample and no further.
            offset = file.tell()
            # A private mapping: the array is writable as torch wants it, and a write would
            # stay in this process's copy instead of changing the job's file.
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
        frames = min(frames, (len(mapping) - offset) // 2)  # as load_pcm16 for a cut file
        samples = cls(np.frombuffer(mapping, dtype="<i2", count=frames, offset=offset))
        samples._mapping = mapping
        return samples

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pcm16.shape

    def __len__(self) -> int:
        return len(self.pcm16)

    def __getitem__(self, index: slice) -> npt.NDArray[np.float32]:
        samples = to_float32(self.pcm16[index])
        self.release()
        return samples

    def release(self) -> None:
        """Drop the pages of mapped samples that reading brought into this process's memory
        (they stay in the page cache, and come back from there when read again).

        All of them: the kernel maps pages beyond those read (it maps the neighbours of a
        page it faults in), so releasing only the range read would leave some behind.
        """
        if self._mapping is not None:
            self._mapping.madvise(mmap.MADV_DONTNEED)


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
