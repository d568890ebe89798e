"""Renderers of a Result: subtitles (SRT, WebVTT), plain text and RTTM."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from stages.types import Format, Result, Segment


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue in SRT and WebVTT: keep each segment's text on one line.
    return " ".join(text.split())


def _labelled(segment: Segment) -> str:
    text = _one_line(segment.text)
    return f"{segment.speaker}: {text}" if segment.speaker else text


def _cues(result: Result) -> list[Segment]:
    return [s for s in result.segments if _one_line(s.text)]


def to_srt(result: Result, job_id: str) -> str:
    blocks = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(max(s.end, s.start), ',')}\n"
        f"{_labelled(s)}\n"
        for i, s in enumerate(_cues(result), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: Result, job_id: str) -> str:
    blocks = ["WEBVTT\n"]
    for s in _cues(result):
        blocks.append(f"{_timestamp(s.start, '.')} --> {_timestamp(max(s.end, s.start), '.')}\n"
                      f"{_vtt_escape(_labelled(s))}\n")
    return "\n".join(blocks)


def to_txt(result: Result, job_id: str) -> str:
    lines = []
    for s in _cues(result):
        text = _one_line(s.text)
        lines.append(f"[{s.speaker}] {text}" if s.speaker else text)
    return "\n".join(lines) + ("\n" if lines else "")


def to_rttm(result: Result, job_id: str) -> str:
    """NIST RTTM: one SPEAKER line per speaker-labelled segment, the job id as file id."""
    lines = []
    for s in result.segments:
        duration = s.end - s.start
        if s.speaker and duration > 0:
            speaker = "_".join(s.speaker.split())  # fields are space-separated
            lines.append(f"SPEAKER {job_id} 1 {s.start:.3f} {duration:.3f} <NA> <NA> "
                         f"{speaker} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(result: Result, job_id: str) -> str:
    return msgspec.json.encode(result).decode()


RENDERERS: dict[Format, tuple[Callable[[Result, str], str], str]] = {
    "json": (to_json, "application/json"),
    "srt": (to_srt, "application/x-subrip; charset=utf-8"),
    "vtt": (to_vtt, "text/vtt; charset=utf-8"),
    "txt": (to_txt, "text/plain; charset=utf-8"),
    "rttm": (to_rttm, "text/plain; charset=utf-8"),
}
