"""Rendered subtitles read back with the `srt` and `webvtt-py` parsers and held to the limits
of the settings (line length, lines, duration, readable and not overlapping), and to the
text of the result (nothing lost, nothing added)."""

from __future__ import annotations

import html
import io
import unicodedata
from dataclasses import dataclass

import srt
import webvtt

from gateway.formats import to_srt, to_vtt
from stages.settings import Settings
from stages.types import Result

#: Timestamps are written to the millisecond.
TOLERANCE = 0.0015


def width(line: str) -> int:
    """Columns on screen, as subtitle editors count them: full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: list[str]  # as shown: an SRT speaker label included, VTT markup unescaped
    text: str  # the words, without a speaker label
    speaker: str | None  # an SRT cue's label, a VTT cue's voice


@dataclass(frozen=True)
class Subtitles:
    srt: list[Cue]
    vtt: list[Cue]


def rendered(result: Result, settings: Settings) -> Subtitles:
    """The SRT and VTT cues of ``result``, as the parsers read them."""
    srt_cues = []
    for subtitle in srt.parse(to_srt(result, "job", settings)):
        lines = subtitle.content.split("\n")
        speaker = next((s for s in result.speakers if lines[0].startswith(f"{s}: ")), None)
        text = " ".join(lines).removeprefix(f"{speaker}: ")
        srt_cues.append(Cue(subtitle.start.total_seconds(), subtitle.end.total_seconds(),
                            lines, text, speaker))
    vtt_cues = []
    for caption in webvtt.from_buffer(io.StringIO(to_vtt(result, "job", settings))).captions:
        lines = html.unescape(caption.text).split("\n")
        vtt_cues.append(Cue(_seconds(caption.start_time), _seconds(caption.end_time), lines,
                            " ".join(lines),
                            html.unescape(caption.voice) if caption.voice else None))
    return Subtitles(srt_cues, vtt_cues)


def _seconds(time: webvtt.models.Timestamp) -> float:
    return time.hours * 3600 + time.minutes * 60 + time.seconds + time.milliseconds / 1000


def assert_readable(result: Result, settings: Settings) -> Subtitles:
    """The SRT and VTT cues of ``result`` keep every limit and carry its text."""
    subtitles = rendered(result, settings)
    for cues in (subtitles.srt, subtitles.vtt):
        _assert_within_limits(cues, result, settings)
    return subtitles


def _assert_within_limits(cues: list[Cue], result: Result, settings: Settings) -> None:
    for index, cue in enumerate(cues):
        assert 1 <= len(cue.lines) <= settings.subtitle_max_lines, cue
        label = f"{cue.speaker}: "
        # A single word longer than a line can only stand on a line of its own.
        assert all(width(line) <= settings.subtitle_max_line_chars
                   or len(line.removeprefix(label).split()) == 1 for line in cue.lines), cue
        assert cue.start <= cue.end <= cue.start + settings.subtitle_max_cue_seconds + TOLERANCE
        before = cues[index - 1].end if index else 0.0
        after = cues[index + 1].start if index + 1 < len(cues) else max(result.duration, cue.end)
        assert before <= cue.start + TOLERANCE and cue.end <= after + TOLERANCE, "overlap"
        # Shorter than readable only where the neighbours leave no room.
        assert (cue.end - cue.start >= settings.subtitle_min_cue_seconds - TOLERANCE
                or (cue.start - before < TOLERANCE and after - cue.end < TOLERANCE)), cue
    spoken = "".join("".join(s.text.split()) for s in result.segments)
    assert "".join("".join(c.text.split()) for c in cues) == spoken, "text lost or added"
