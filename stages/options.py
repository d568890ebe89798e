"""What a client may choose per job. The API, the job view and the `stt submit` flags are
all derived from :class:`JobOptions`: its fields and their descriptions, and so are the
messages that refuse a value (:func:`allowed`, :func:`parse_options`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
import msgspec.inspect as mi

from pipeline.addresses import parse_url
from pipeline.errors import AddressRefused
from pipeline.settings import doc
from pipeline.types import Options

Speakers = Annotated[int, msgspec.Meta(ge=1, le=64)]
VoiceName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# A text option's constraint in plain words: a pattern does not explain itself.
_ALLOWED = "allowed"


class OptionError(ValueError):
    """A value an option does not take: the message names the field (``field``, None when
    the fault is a combination), the value and what is allowed."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
# Whisper reads at most the last 223 tokens of a prompt (half its 448-token context), some
# 900 characters of English; a form field carries at most 1024 bytes.
MAX_PROMPT_CHARS = 1000
#: The most voiceprints `identify` may list.
MAX_LISTED = 100


class JobOptions(Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client may choose per job."""

    language: Annotated[Annotated[str, msgspec.Meta(
        pattern=r"^[a-z]{2,3}$",
        extra={_ALLOWED: "a language code of 2 or 3 lowercase letters (ISO 639, e.g. en)"},
    )] | None, doc("The language spoken, as an ISO 639 code (e.g. en). Unset: detected.")] = None
    task: Annotated[Literal["transcribe", "translate"], doc(
        "transcribe, or translate into English.")] = "transcribe"
    num_speakers: Annotated[Speakers | None, doc(
        "How many speakers there are, when known.")] = None
    min_speakers: Annotated[Speakers | None, doc("At least this many speakers.")] = None
    max_speakers: Annotated[Speakers | None, doc("At most this many speakers.")] = None
    model: Annotated[Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None, doc(
        "The Whisper model for this job: a bundled one, a folder's name under MODELS_DIR, "
        "or a hub size the server can download. Unset: WHISPER_MODEL.")] = None
    audio_stream: Annotated[Annotated[int, msgspec.Meta(ge=0, le=99, extra={
        _ALLOWED: "an audio stream's number, counted from 0 among the file's audio streams"},
    )] | None, doc(
        "Which audio stream of a file with several (a video with one track per language, "
        "a recording with one per person) to transcribe, counted from 0. Unset: the first, "
        "and the result's warnings name the others.")] = None
    diarize: Annotated[bool, doc(
        "Whether to find who speaks when (false: no speakers, and faster).")] = True
    prompt: Annotated[Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)] | None, doc(
        "Whisper's initial prompt: text that precedes the audio (a glossary, the previous "
        "part's transcript), guiding spelling of names and terms and style. Whisper reads "
        "its last 223 tokens.")] = None
    hotwords: Annotated[Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)] | None, doc(
        "Words and names likely in the audio (e.g. Katrin Osterhaus, pgvector), given to "
        "Whisper as hints that steer its spelling.")] = None
    identify: Annotated[bool | list[VoiceName], doc(
        "Name the speakers whose voice matches a voiceprint (POST /speakers): true for "
        "every voiceprint of the caller's, or a list of voiceprint names or ids to choose "
        "among (comma-separated in a form).")] = False
    callback_url: Annotated[Annotated[str, msgspec.Meta(max_length=2000)] | None, doc(
        "An http(s) URL the service POSTs a signed event to when the job completes or "
        "fails (a webhook; see the README). Private and loopback addresses are refused "
        "unless ALLOW_PRIVATE_URLS is set.")] = None
    callback_events: Annotated[Literal["job", "stage"], doc(
        "job: an event when the job completes or fails; stage: also one when each stage "
        "finishes.")] = "job"

    def __post_init__(self) -> None:
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise OptionError("min_speakers", (
                f"min_speakers ({self.min_speakers}) must not be more than max_speakers "
                f"({self.max_speakers})"))
        if self.num_speakers and (self.min_speakers or self.max_speakers):
            raise OptionError("num_speakers", (
                "give num_speakers, or min_speakers and max_speakers, not both (got "
                f"num_speakers={self.num_speakers} with "
                + " and ".join(f"{name}={value}" for name, value in (
                    ("min_speakers", self.min_speakers), ("max_speakers", self.max_speakers))
                    if value) + ")"))
        if self.identify is not False and not self.diarize:
            raise OptionError("identify", "identify names the speakers diarization finds: "
                                          "it needs diarize=true")
        if self.callback_url is not None:
            try:
                parts = parse_url(self.callback_url)
            except AddressRefused as exc:
                raise OptionError("callback_url", f"callback_url: {exc}") from None
            if parts.username is not None or parts.password is not None:
                raise OptionError("callback_url", (
                    "callback_url must carry no user name or password: the events are "
                    "signed (webhook-signature) instead"))
        elif self.callback_events != "job":
            raise OptionError("callback_events", "callback_events needs a callback_url")

    @classmethod
    def of(cls, options: Options) -> JobOptions:
        """A stored job's options as this type (the store decodes them with the stage
        table's options type, which is this one)."""
        if not isinstance(options, cls):
            raise TypeError(f"not the speech service's job options: {options!r}")
        return options

    def plan(self) -> tuple[str, ...]:
        """The stages a fresh job with these options runs through."""
        from stages.table import TABLE  # the table's module imports this one

        return TABLE.plan(self)


def _field_types() -> dict[str, tuple[mi.Type, dict[str, str]]]:
    """Each option's type without None, and the ``extra`` of its constraint."""
    info = mi.type_info(JobOptions)
    assert isinstance(info, mi.StructType)
    fields = {}
    for f in info.fields:
        kind = f.type.type if isinstance(f.type, mi.Metadata) else f.type
        if isinstance(kind, mi.UnionType):
            others = [t for t in kind.types if not isinstance(t, mi.NoneType)]
            # identify, true or a list, stays a union: _parse and allowed() know it.
            kind = others[0] if len(others) == 1 else kind
        extra = dict(kind.extra or {}) if isinstance(kind, mi.Metadata) else {}
        fields[f.name] = (kind.type if isinstance(kind, mi.Metadata) else kind, extra)
    return fields


_FIELDS = _field_types()
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _either(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def allowed(name: str) -> str:
    """What option ``name`` takes, in plain words, from its type and constraints."""
    kind, extra = _FIELDS[name]
    if _ALLOWED in extra:
        return extra[_ALLOWED]
    if isinstance(kind, mi.BoolType):
        return "true or false"
    if isinstance(kind, mi.UnionType):
        return ("true, false, or voiceprint names or ids (a list, or comma-separated text) "
                f"of at most {MAX_LISTED} names")
    if isinstance(kind, mi.LiteralType):
        values = [str(v) for v in kind.values]
        return _either(values) if len(values) <= 2 else "one of " + _either(values)
    if isinstance(kind, mi.IntType):
        low, high = kind.ge, kind.le
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return "a whole number" + (f" of at least {low}" if low is not None else "") + (
            f" of at most {high}" if high is not None else "")
    if isinstance(kind, mi.StrType):
        if not kind.min_length:
            return f"text of at most {kind.max_length} characters"
        return f"text of {kind.min_length} to {kind.max_length} characters"
    raise TypeError(f"no plain words for option {name}'s type {kind!r}")


def shown(value: object) -> str:
    """A received value as a message quotes it: short, and without control characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(name: str, raw: object) -> object:
    kind, _ = _FIELDS[name]
    refused = OptionError(name, f"{name} must be {allowed(name)}, not {shown(raw)}")
    text = raw.strip() if isinstance(raw, str) else None
    if isinstance(kind, mi.BoolType):
        if isinstance(raw, bool):
            return raw
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise refused
    if isinstance(kind, mi.UnionType):
        return _true_or_names(name, raw, refused)
    if isinstance(kind, mi.IntType):
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif text is not None and re.fullmatch(r"[0-9]{1,6}", text):  # never 1e1, nor 2.0
            value = int(text)
        else:
            raise refused
        if (kind.ge is not None and value < kind.ge) or (kind.le is not None and value > kind.le):
            raise refused
        return value
    if text is None:
        raise refused
    if isinstance(kind, mi.LiteralType):
        if text not in kind.values:
            raise refused
    elif isinstance(kind, mi.StrType):
        if ((kind.min_length is not None and len(text) < kind.min_length)
                or (kind.max_length is not None and len(text) > kind.max_length)
                or (kind.pattern is not None and not re.search(kind.pattern, text))):
            raise refused
    else:
        raise TypeError(f"no parser for option {name}'s type {kind!r}")
    return text


def _true_or_names(name: str, raw: object, refused: OptionError) -> bool | list[str]:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not 0 < len(items) <= MAX_LISTED:
        raise refused
    names = [item.strip() for item in items if isinstance(item, str)]
    if len(names) != len(items) or not all(0 < len(n) <= 100 for n in names):
        raise refused
    return list(dict.fromkeys(names))


def parse_options(values: Mapping[str, object]) -> JobOptions:
    """Options from a form's text fields or a JSON object's values, checked one field at a
    time, so that the :class:`OptionError` for a bad one names it, its value and what it
    takes. Blank text and null leave an option at its default."""
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise OptionError(unknown[0], (
            f"unknown option {shown(unknown[0])}; the options are "
            + ", ".join(_FIELDS)))
    given = {name: _parse(name, raw) for name, raw in values.items()
             if raw is not None and not (isinstance(raw, str) and not raw.strip())}
    # Every field is checked above; the constructor checks their combinations.
    return JobOptions(**given)  # type: ignore[arg-type]
