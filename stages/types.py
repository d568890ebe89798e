"""The speech service's results, and the formats they are served in."""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

#: The formats a result is served in (GET /jobs/{id}/result?format=, `stt result --format`).
Format = Literal["json", "srt", "vtt", "txt", "rttm"]
FORMATS: tuple[Format, ...] = get_args(Format)


class SpeakerTurn(msgspec.Struct, frozen=True):
    start: float
    end: float
    speaker: str


class Word(msgspec.Struct, kw_only=True):
    word: str
    start: float | None = None
    end: float | None = None
    score: float | None = None
    speaker: str | None = None


class Segment(msgspec.Struct, kw_only=True):
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[Word] = msgspec.field(default_factory=list)


class SpeakerName(msgspec.Struct, kw_only=True):
    """A speaker of a result: the label diarization gave it, the name segments, words and
    every format show for it (the label until it is named), and what named it."""

    label: str  # SPEAKER_nn, as diarization found it
    name: str
    # Cosine similarity of the speaker's centroid with the voiceprint that named it; None
    # when unnamed or named by hand (PATCH /jobs/{id}/speakers).
    similarity: float | None = None
    voiceprint: str | None = None  # the id of that voiceprint


class Result(msgspec.Struct, kw_only=True):
    """The transcript of a completed job."""

    language: str | None
    duration: float
    segments: list[Segment]
    speakers: list[str]  # the names shown, as in speaker_names
    # Every speaker's label and name; empty in results of earlier versions, whose speakers
    # are their labels.
    speaker_names: list[SpeakerName] = msgspec.field(default_factory=list)
    # Where the job was not done as asked or the audio was not what it seemed, one sentence
    # each: fewer voices than num_speakers, text without speech left out, an English-only
    # model given another language, other audio streams left out.
    warnings: list[str] = msgspec.field(default_factory=list)
