"""What the stages hand each other through the job's folder: the decoded audio and the
records (msgspec JSON), and the names of their files.

Every artifact is written to a temporary file beside its target and renamed over it, so a
reader never sees half a file and a redelivered stage can simply write it again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

import msgspec

from pipeline.files import JobFiles
from stages.types import Segment, SpeakerTurn

T = TypeVar("T")

# The decoded audio, written by the decode stage and read by every model stage: a WAV file
# of mono 16-bit signed PCM at 16 kHz.
AUDIO = "audio.wav"
SAMPLE_RATE = 16_000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes per sample
# What decoding found that the result should tell (written by decode).
DECODED = "decoded.json"
# Speaker turns and per-speaker embeddings (written by diarize).
DIARIZATION = "diarization.json"
# The transcript before speaker assignment (written by transcribe).
TRANSCRIPT = "transcript.json"


class Files(JobFiles):
    """A job's folder, with the artifacts of the speech stages."""

    @property
    def audio(self) -> Path:
        return self.artifact(AUDIO)

    @property
    def decoded(self) -> Path:
        return self.artifact(DECODED)

    @property
    def diarization(self) -> Path:
        return self.artifact(DIARIZATION)

    @property
    def transcript(self) -> Path:
        return self.artifact(TRANSCRIPT)


class Decoded(msgspec.Struct, kw_only=True):
    """What the decode stage found, as it wrote it beside the audio."""

    duration: float
    warnings: list[str] = msgspec.field(default_factory=list)


class Diarization(msgspec.Struct, kw_only=True):
    """Who spoke when, as written by the diarize stage."""

    turns: list[SpeakerTurn]  # may overlap where people talk at once
    exclusive_turns: list[SpeakerTurn]  # one speaker at a time: for words
    speakers: list[str]
    # One centroid embedding per speaker (pipeline-specific space, for cross-job matching).
    embeddings: dict[str, list[float]] = msgspec.field(default_factory=dict)


class Transcript(msgspec.Struct, kw_only=True):
    """The transcript before speaker assignment, as written by the transcribe stage."""

    language: str | None
    duration: float
    segments: list[Segment]
    # What transcribing could not do as asked (no speech, a language the model lacks).
    warnings: list[str] = msgspec.field(default_factory=list)


def write_atomically(path: Path, record: msgspec.Struct) -> None:
    replace_atomically(path, lambda out: out.write(msgspec.json.encode(record)))


def replace_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with tmp:
            write(tmp)
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def read(path: Path, kind: type[T]) -> T:
    return msgspec.json.decode(path.read_bytes(), type=kind)
