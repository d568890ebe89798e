"""Naming a result's speakers: by hand (PATCH /jobs/{id}/speakers) or by voiceprint.

A result's speakers keep the label diarization gave them (SPEAKER_nn) in
``Result.speaker_names``; what segments, words and every format show is each one's name.
Renaming rewrites those fields only, so it needs neither the audio nor a model.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from stages.types import Result, SpeakerName

#: The longest name a speaker may be given.
MAX_NAME_CHARS = 100


class NamingError(ValueError):
    """A rename the result does not allow: ``field`` is the label or name at fault."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def speaker_names(result: Result) -> list[SpeakerName]:
    """The result's speakers; a result from before speakers had names has only labels."""
    return result.speaker_names or [SpeakerName(label=s, name=s) for s in result.speakers]


def check_name(name: object, what: str) -> str:
    """``name`` as a speaker's name (trimmed), or NamingError naming ``what``."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise NamingError(what, f"the name for {what} must be text of 1 to {MAX_NAME_CHARS} "
                                f"printable characters, not {str(name)[:60]!r}")
    return text


def named(result: Result, names: list[SpeakerName]) -> Result:
    """``result`` with its speakers named as ``names`` say (one entry per speaker, matched
    by label, or by name for the current one): segments, words and the speaker list."""
    before = {entry.label: entry.name for entry in speaker_names(result)}
    shown = {old: next((n.name for n in names if n.label == label), old)
             for label, old in before.items()}

    def rename(speaker: str | None) -> str | None:
        return None if speaker is None else shown.get(speaker, speaker)

    segments = [msgspec.structs.replace(
        s, speaker=rename(s.speaker),
        words=[msgspec.structs.replace(w, speaker=rename(w.speaker)) for w in s.words])
        for s in result.segments]
    return msgspec.structs.replace(result, segments=segments,
                                   speakers=sorted(rename(s) or s for s in result.speakers),
                                   speaker_names=names)


def renamed(result: Result, renames: Mapping[str, object]) -> Result:
    """``result`` with the speakers that ``renames`` names (by label, SPEAKER_01, or by
    the name it shows now) given the new names. Raises NamingError for a speaker the
    result lacks, a malformed name, or two speakers that would share one name."""
    entries = speaker_names(result)
    by_key = {e.label: e for e in entries} | {e.name: e for e in entries}
    if not renames:
        raise NamingError(None, "give at least one speaker to rename, as "
                                '{"SPEAKER_00": "Alice"}')
    changed: dict[str, str] = {}
    for key, name in renames.items():
        entry = by_key.get(key)
        if entry is None:
            raise NamingError(key, f"{key!r} is not a speaker of this result; its speakers "
                                   f"are {_listed(entries)}")
        if entry.label in changed:
            raise NamingError(key, f"{key!r} names speaker {entry.label} a second time")
        changed[entry.label] = check_name(name, key)
    names = [msgspec.structs.replace(e, name=changed[e.label], similarity=None, voiceprint=None)
             if e.label in changed else e for e in entries]
    taken: dict[str, str] = {}
    for e in names:
        if e.name in taken:
            other = taken[e.name]
            # The fault is the speaker this request renames (the other may keep its name).
            at_fault = e.label if e.label in changed else other
            raise NamingError(at_fault, f"{other} and {e.label} would both be named "
                                        f"{e.name!r}; give each speaker a name of its own")
        taken[e.name] = e.label
    return named(result, names)


def _listed(entries: list[SpeakerName]) -> str:
    if not entries:
        return "none (nobody speaks, or the job was not diarized)"
    return ", ".join(e.label if e.name == e.label else f"{e.label} ({e.name})" for e in entries)
