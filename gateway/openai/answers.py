"""A job's result as OpenAI's audio API answers it, field for field as the `openai` package
parses it (openai.types.audio: Transcription, TranscriptionVerbose, TranscriptionDiarized,
Translation, TranslationVerbose; openai.types: Model)."""

from __future__ import annotations

import math
import zlib
from typing import Literal

import msgspec
from litestar import Response

from gateway.formats import RENDERERS
from gateway.openai.form import Answer, Task
from gateway.openai.languages import LANGUAGE_NAMES
from stages.settings import Settings
from stages.types import Result, Segment


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["duration"] = "duration"
    seconds: float


class Text(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`json`: Transcription (with usage) or Translation (without)."""

    text: str
    usage: Usage | None = None


class VerboseSegment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class VerboseWord(msgspec.Struct, frozen=True, kw_only=True):
    word: str
    start: float
    end: float


class Verbose(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`verbose_json`: segments and words as timestamp_granularities[] asked."""

    task: Task
    language: str
    duration: float
    text: str
    segments: list[VerboseSegment] | None = None
    words: list[VerboseWord] | None = None
    usage: Usage | None = None


class DiarizedSegment(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class Diarized(msgspec.Struct, frozen=True, kw_only=True):
    """`diarized_json`, as gpt-4o-transcribe-diarize answers it: speakers A, B, ..."""

    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegment]
    usage: Usage


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int = 0  # when the model was made is not known
    owned_by: str = "stt-pipeline"


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model]


def answer(result: Result, job_id: str, task: Task, wanted: Answer,
           settings: Settings) -> Response[object]:
    """The response to a request for ``wanted`` about a job's ``result``. Its
    ``x-request-id`` (the `openai` package's ``_request_id``) is the job's id."""
    headers = {"x-request-id": job_id}
    text = " ".join(s.text for s in result.segments if s.text)
    usage = Usage(seconds=result.duration) if task == "transcribe" else None
    body: object
    if wanted.format in ("srt", "vtt"):
        render, media_type = RENDERERS[wanted.format]
        return Response(render(result, job_id, settings), media_type=media_type,
                        headers=headers)
    if wanted.format == "text":
        return Response(text + "\n", media_type="text/plain; charset=utf-8", headers=headers)
    if wanted.format == "verbose_json":
        body = Verbose(
            task=task, language=_language(result, task), duration=result.duration, text=text,
            segments=([_verbose_segment(i, s) for i, s in enumerate(result.segments)]
                      if "segment" in wanted.granularities else None),
            words=_words(result) if "word" in wanted.granularities else None, usage=usage)
    elif wanted.format == "diarized_json":
        body = Diarized(duration=result.duration, text=text, segments=_diarized(result),
                        usage=Usage(seconds=result.duration))
    else:
        body = Text(text=text, usage=usage)
    return Response(body, media_type="application/json", headers=headers)


def _language(result: Result, task: Task) -> str:
    code = "en" if task == "translate" else result.language or ""
    return LANGUAGE_NAMES.get(code, code)


def _verbose_segment(index: int, segment: Segment) -> VerboseSegment:
    scores = [w.score for w in segment.words if w.score]
    encoded = segment.text.encode()
    return VerboseSegment(
        id=index,
        # Whisper's seek counts 10 ms frames up to the window the segment was decoded in;
        # speech detection chose the windows here, so its start stands for it.
        seek=round(segment.start * 100), start=segment.start, end=segment.end,
        text=segment.text,
        # Neither the tokens nor their log probabilities are kept: the mean log probability
        # of the words (Whisper's alignment scores) stands in for the latter.
        tokens=[], temperature=0.0,
        avg_logprob=round(sum(map(math.log, scores)) / len(scores), 4) if scores else 0.0,
        # As Whisper computes it, to flag repetitive (hallucinated) text.
        compression_ratio=round(len(encoded) / len(zlib.compress(encoded)), 4),
        # Speech detection passed only speech to Whisper.
        no_speech_prob=0.0)


def _words(result: Result) -> list[VerboseWord]:
    words = []
    for segment in result.segments:
        # An untimed word (whisperx aligns no digits) sits where the previous one ended.
        at = segment.start
        for word in segment.words:
            start = word.start if word.start is not None else at
            at = word.end if word.end is not None else start
            words.append(VerboseWord(word=word.word, start=start, end=at))
    return words


def _diarized(result: Result) -> list[DiarizedSegment]:
    # A speaker matched to a known speaker (or voiceprint) shows its name, as OpenAI's
    # model names known speakers; the others get letters.
    known = {n.name for n in result.speaker_names if n.voiceprint is not None}
    labels: dict[str, str] = {}
    segments = []
    label = "A"  # a segment without a speaker keeps the one before it (A for the first)
    for i, segment in enumerate(result.segments):
        if segment.speaker in known:
            label = segment.speaker
        elif segment.speaker is not None:
            # Labelled as OpenAI's model labels them: A, B, ... in order of appearance.
            label = labels.setdefault(segment.speaker, _letters(len(labels)))
        segments.append(DiarizedSegment(id=f"seg_{i}", start=segment.start, end=segment.end,
                                        text=segment.text, speaker=label))
    return segments


def _letters(index: int) -> str:
    """A, B, ..., Z, AA, AB, ... (more than 26 speakers is possible: up to 64)."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
