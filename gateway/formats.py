"""Renderers of a Result: subtitles (SRT, WebVTT; their cues are laid out by gateway.cues),
plain text and RTTM."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from gateway.cues import cues, join
from stages.settings import Settings
from stages.types import Format, Result, Segment


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def to_srt(result: Result, job_id: str, settings: Settings) -> str:
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n" + "\n".join(c.lines)
        + "\n"
        for i, c in enumerate(cues(result, settings, label_changes=True), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: Result, job_id: str, settings: Settings) -> str:
    blocks = ["WEBVTT\n"]
    for c in cues(result, settings):
        # A voice span runs to the end of the cue, over all its lines.
        voice = f"<v {_vtt_escape(c.speaker)}>" if c.speaker else ""
        text = _vtt_escape("\n".join(c.lines))
        blocks.append(f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n"
                      f"{voice}{text}\n")
    return "\n".join(blocks)


def to_txt(result: Result, job_id: str, settings: Settings) -> str:
    """A paragraph per speaker turn (consecutive segments of one speaker), headed by the
    speaker and the time it starts."""
    paragraphs: list[tuple[Segment, str]] = []
    for s in result.segments:
        text = _one_line(s.text)
        if not text:
            continue
        if paragraphs and paragraphs[-1][0].speaker == s.speaker:
            paragraphs[-1] = (paragraphs[-1][0], join(paragraphs[-1][1], text))
        else:
            paragraphs.append((s, text))
    blocks = []
    for first, text in paragraphs:
        clock = _timestamp(first.start, ".")[:8]  # to the second: hh:mm:ss
        heading = f"{first.speaker} [{clock}]" if first.speaker else f"[{clock}]"
        blocks.append(f"{heading}\n{text}\n")
    return "\n".join(blocks)


def to_rttm(result: Result, job_id: str, settings: Settings) -> str:
    """NIST RTTM: one SPEAKER line per speaker-labelled segment, the job id as file id."""
    lines = []
    for s in result.segments:
        duration = s.end - s.start
        if s.speaker and duration > 0:
            speaker = "_".join(s.speaker.split())  # fields are space-separated
            lines.append(f"SPEAKER {job_id} 1 {s.start:.3f} {duration:.3f} <NA> <NA> "
                         f"{speaker} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(result: Result, job_id: str, settings: Settings) -> str:
    return msgspec.json.encode(result).decode()


#: Each format's renderer (result, job id, settings) and media type. Litestar appends
#: "; charset=utf-8" to a text/ type itself; the others name it here.
RENDERERS: dict[Format, tuple[Callable[[Result, str, Settings], str], str]] = {
    "json": (to_json, "application/json"),
    "srt": (to_srt, "application/x-subrip; charset=utf-8"),
    "vtt": (to_vtt, "text/vtt"),
    "txt": (to_txt, "text/plain"),
    "rttm": (to_rttm, "text/plain"),
}
