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
from stages.types import Segment, SpeakerName, SpeakerTurn

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
# The voiceprints a job identifies its speakers against (pipeline.voiceprints.Candidates,
# written by the gateway when it queues a job with `identify`; read by diarize).
VOICEPRINTS = "voiceprints.json"


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

    @property
    def voiceprints(self) -> Path:
        return self.artifact(VOICEPRINTS)


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
    # The pipeline that made them (Settings.diarization_identity); None from versions before
    # voiceprints, whose embeddings cannot be enrolled.
    model: str | None = None
    # The speakers identified by voiceprint (every speaker, named or not), and what
    # identifying could not do; empty when the job did not ask to identify.
    names: list[SpeakerName] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)


class TranscribedWith(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a transcript depends on: a later run asking for the same reuses it."""

    audio_sha256: str
    model: str  # the job's model option, else WHISPER_MODEL
    language: str | None
    task: str
    prompt: str | None
    hotwords: str | None
    aligner: bool  # whether a wav2vec2 aligner could be used (HF_TOKEN set, online)


class Transcript(msgspec.Struct, kw_only=True):
    """The transcript before speaker assignment, as written by the transcribe stage."""

    language: str | None
    duration: float
    segments: list[Segment]
    # What transcribing could not do as asked (no speech, a language the model lacks).
    warnings: list[str] = msgspec.field(default_factory=list)
    # None from versions before transcripts were reused: never reused.
    made_with: TranscribedWith | None = None


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
