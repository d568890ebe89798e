"""An OpenAI audio request's form: its fields as this service's job options, and the answer
the client asked for."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from gateway.apidocs import AUDIO_FILE, AUDIO_URL, JOB_FORM, unset
from gateway.submit import parse_options
from gateway.uploads import Upload
from pipeline.errors import BadRequest
from stages import catalog
from stages.options import JobOptions
from stages.settings import Settings
from stages.speakers import NamingError, check_name

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = get_args(ResponseFormat)
Task = Literal["transcribe", "translate"]
GRANULARITIES = ("word", "segment")

#: The form fields accepted (besides `file`, or `url` instead: the audio's http(s) URL,
#: downloaded by the decode stage: an extension of OpenAI's form). `keywords[]` (OpenAI's
#: hints for its newer models) become the job's hotwords; `chunking_strategy` is accepted
#: and has no effect: speech detection always chooses the chunks. A `chunking_strategy`
#: object arrives as `chunking_strategy[type]`, `chunking_strategy[threshold]`, ...
FIELDS = ("model", "language", "prompt", "temperature", "response_format",
          "timestamp_granularities[]", "keywords[]", "chunking_strategy", "stream",
          "known_speaker_names[]", "known_speaker_references[]",
          *(f"chunking_strategy[{key}]" for key in (
              "type", "prefix_padding_ms", "silence_duration_ms", "threshold")))

#: The form as the OpenAPI schema shows it (gateway/apidocs.py).
FORM_SCHEMA: dict[str, dict[str, Any]] = {
    "file": AUDIO_FILE, "url": AUDIO_URL,
    "model": {"type": "string", "default": "whisper-1",
              "description": "A model GET /v1/models lists runs that model; any other name "
                             "(whisper-1, ...) runs WHISPER_MODEL."},
    "language": JOB_FORM["language"],
    "prompt": JOB_FORM["prompt"],
    "temperature": unset({"type": "number", "minimum": 0, "maximum": 1,
                          "description": "Accepted as OpenAI's is; decoding always starts "
                                         "at 0."}),
    "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS), "default": "json",
                        "description": "diarized_json only for transcriptions."},
    "timestamp_granularities[]": unset({
        "type": "array", "items": {"type": "string", "enum": list(GRANULARITIES)},
        "description": "With verbose_json: word, segment or both."}),
    "keywords[]": unset({"type": "array", "items": {"type": "string"},
                         "description": "Names and terms to spell right (the job's hotwords)."}),
    "known_speaker_names[]": unset({
        "type": "array", "items": {"type": "string"}, "maxItems": 4,
        "description": "With diarized_json: names of voices to recognise, each with a "
                       "known_speaker_references[] entry, for this request only."}),
    "known_speaker_references[]": unset({
        "type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 4,
        "description": "A data URL of a few seconds of each known speaker's voice "
                       "(data:audio/wav;base64,...)."}),
}


#: As OpenAI: up to 4 known speakers, each a data URL of 2 to 10 s of audio (a little
#: more is accepted: 12 MiB of base64 holds a minute of uncompressed 16-bit stereo audio).
MAX_KNOWN_SPEAKERS = 4
REFERENCE_BYTES = 12 * 1024 * 1024
FIELD_LIMITS = {"known_speaker_references[]": REFERENCE_BYTES}
_DATA_URL = re.compile(r"data:(audio|video)/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*;base64,")


@dataclass(frozen=True)
class KnownSpeaker:
    """A voice the request names (known_speaker_names[], known_speaker_references[]): for
    this request only, never stored as a voiceprint."""

    name: str
    audio: bytes


@dataclass(frozen=True)
class Answer:
    """What the answer is to be: its format and, for verbose_json, its timestamps."""

    format: ResponseFormat = "json"
    granularities: frozenset[str] = frozenset({"segment"})


def job_model(name: str, settings: Settings) -> str | None:
    """The Whisper model a request's `model` runs: one a job's `model` may name (see
    :mod:`stages.catalog`; no hub lookup per request); anything else (whisper-1,
    gpt-4o-transcribe, ...) runs WHISPER_MODEL (None)."""
    name = name.strip()
    if name and name != settings.whisper_model and catalog.find(name, settings, hub=False):
        return name
    return None


def served_models(settings: Settings) -> list[str]:
    """The models GET /v1/models lists: WHISPER_MODEL, the bundled ones, MODELS_DIR's."""
    return list(dict.fromkeys([settings.whisper_model, *catalog.BUNDLED,
                               *catalog.local_models(settings)]))


@dataclass
class OpenAIForm:
    """Reads one request's form for :func:`gateway.submit.submit` (its ``parse``), and
    keeps what the answer needs."""

    settings: Settings
    task: Task
    answer: Answer = field(default_factory=Answer)
    known: list[KnownSpeaker] = field(default_factory=list)

    def parse(self, upload: Upload) -> JobOptions:
        # Only FIELDS arrive here: receive_upload refuses the others.
        fields = {name: value.strip() for name, value in upload.fields.items()}
        formats = [f for f in RESPONSE_FORMATS
                   if self.task == "transcribe" or f != "diarized_json"]
        asked = fields.get("response_format") or "json"
        answer_format = next((f for f in formats if f == asked), None)
        if answer_format is None:
            raise BadRequest(f"invalid response_format '{asked}': use one of "
                             f"{', '.join(formats)}")
        granularities = {g.strip() for g in upload.values.get("timestamp_granularities[]", [])}
        if granularities - set(GRANULARITIES):
            raise BadRequest(f"invalid timestamp_granularities[] "
                             f"'{sorted(granularities - set(GRANULARITIES))[0]}': use "
                             "word, segment or both")
        _check_temperature(fields.get("temperature") or "0")
        if (fields.get("stream") or "false").lower() != "false":
            raise BadRequest("stream=true is not supported: leave stream unset, and the "
                             "answer comes when the transcript is complete")
        self.answer = Answer(answer_format, frozenset(granularities) or Answer.granularities)
        self.known = known_speakers(upload)
        if self.known and answer_format != "diarized_json":
            raise BadRequest("known_speaker_names[] name speakers, which only "
                             "response_format=diarized_json shows", field="response_format")
        keywords = [k.strip() for k in upload.values.get("keywords[]", []) if k.strip()]
        options = {"language": fields.get("language"), "prompt": fields.get("prompt"),
                   "hotwords": " ".join(keywords), "task": self.task,
                   "model": job_model(fields.get("model") or "", self.settings),
                   # Only a diarized answer shows speakers: the others skip diarizing.
                   "diarize": str(answer_format == "diarized_json").lower(),
                   "identify": "true" if self.known else None}
        return parse_options({name: value for name, value in options.items() if value})


def known_speakers(upload: Upload) -> list[KnownSpeaker]:
    """The request's known speakers: a name for each reference, a data URL of audio."""
    names = [n.strip() for n in upload.values.get("known_speaker_names[]", [])]
    references = upload.values.get("known_speaker_references[]", [])
    if len(names) != len(references) or len(names) > MAX_KNOWN_SPEAKERS:
        raise BadRequest(f"give as many known_speaker_names[] ({len(names)}) as "
                         f"known_speaker_references[] ({len(references)}), at most "
                         f"{MAX_KNOWN_SPEAKERS}", field="known_speaker_names[]")
    known = []
    for name, reference in zip(names, references, strict=True):
        try:
            check_name(name, "known_speaker_names[]")
        except NamingError as exc:
            raise BadRequest(exc.message, field="known_speaker_names[]") from None
        match = _DATA_URL.match(reference.strip())
        try:
            audio = base64.b64decode(reference.strip()[match.end():], validate=True) if (
                match) else b""
        except binascii.Error:
            audio = b""
        if not audio:
            raise BadRequest(f"known_speaker_references[]: the reference of {name!r} must be "
                             "a data URL of base64 audio, as data:audio/wav;base64,UklGR...",
                             field="known_speaker_references[]")
        known.append(KnownSpeaker(name, audio))
    if len({k.name.casefold() for k in known}) < len(known):
        raise BadRequest("known_speaker_names[]: two known speakers share a name",
                         field="known_speaker_names[]")
    return known


def _check_temperature(text: str) -> None:
    # Accepted for compatibility: the batched decoding is a beam search at temperature 0.
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise BadRequest(f"invalid temperature '{text}': give a number from 0 to 1")
