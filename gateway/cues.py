"""Subtitle cues from a Result, laid out as subtitle editors and style guides (Netflix, BBC)
expect: a cue per speaker turn or part of one, broken preferably at sentence ends, never
after an abbreviation, within the line, line-count and duration limits of the settings, on
balanced lines, and on screen long enough to be read.

Cues are timed by the words' times; a segment whose words do not spell its text, or carry
no times, is split by its text, each piece timed in proportion to its characters.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence

import msgspec

from stages.settings import Settings
from stages.types import Result, Segment

#: Scripts written without spaces (Chinese, Japanese): a line may break between any two of
#: their characters. Korean uses spaces and breaks at them.
_NO_SPACE = ("\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
             "\uff00-\uffef")
# Punctuation is written as escapes: fullwidth forms look like ASCII ones in an editor.
_FULL_STOPS = "\u3002\uff0e\uff01\uff1f"  # ideographic and fullwidth . ! ?
_FULL_PAUSES = "\u3001\uff0c\uff1b\uff1a"  # ideographic comma, fullwidth , ; :
_DASHES = "\u2013\u2014"  # en and em dash
#: Closing quotes and brackets, which belong to the word before.
_QUOTES = "'\"\u201d\u2019)\\]\u300d\u300f\uff09\u3009\u300b\u3011"
#: What may not start a line: it stays with the character before.
_CLOSING = f"{_FULL_STOPS}{_FULL_PAUSES}{_QUOTES},.!?;:}}\u2026"
_PIECE = re.compile(f"[^{_NO_SPACE}]+|[{_NO_SPACE}][{_CLOSING}]*")
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_SENTENCE_END = re.compile(f"[.!?\u2026{_FULL_STOPS}][{_QUOTES}]*$")
_CLAUSE_END = re.compile(f"([,;:{_FULL_PAUSES}]|^[-{_DASHES}]+|[{_DASHES}])[{_QUOTES}]*$")
_OPENING = "(\"'\u201c\u2018["
#: Short forms whose full stop ends no sentence. Single letters (initials) and dotted forms
#: (U.S.) are recognised by their shape; "etc." and "Inc." often end one, so they are absent.
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "prof", "st", "jr", "sr", "vs", "mt", "fig", "approx",
    "dept", "gen", "col", "capt", "lt", "sgt", "rev", "hon", "gov", "sen", "rep", "cf",
    "ca", "ft", "vol", "ch", "pp", "nr", "tel", "ave", "blvd", "est", "min", "max"})
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]", re.UNICODE)
#: English words that lean on the next one: a line or cue ending in one reads poorly
#: (style guides: keep an article, preposition or conjunction with what follows).
_LEANING = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "into",
    "and", "or", "but", "nor", "if", "my", "your", "his", "her", "its", "our", "their"})
#: A silence this long ends a cue whatever else: text is not shown over it.
_PAUSE_SECONDS = 1.5
#: A silence this long makes a cheap place to end a cue, like a comma.
_BREATH_SECONDS = 0.4
#: What a cue said in no time costs, against one said in the shortest readable time: a
#: lone "Sure," weighs more than ending a cue at a plain word, "Before we start," less.
_SHORT_WEIGHT = 6.0
#: How unbalanced lines weigh against a line break at a poorer place.
_BALANCE_WEIGHT = 10.0


class Cue(msgspec.Struct, frozen=True):
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None


class _Token(msgspec.Struct):
    """A piece a cue or line may break after: a word, or a character of CJK text."""

    text: str
    start: float
    end: float
    speaker: str | None
    space: bool = False  # a space separates it from the token before
    width: int = 0

    def __post_init__(self) -> None:
        self.width = _width(self.text)


def cues(result: Result, settings: Settings, *, label_changes: bool = False) -> list[Cue]:
    """The cues of ``result``. ``label_changes``: the first line of each cue where the
    speaker changes begins with ``srt_label(speaker)`` (SRT has no speaker markup)."""
    built: list[Cue] = []
    previous: str | None = None
    for run in _runs(_tokens(result.segments)):
        speaker = run[0].speaker
        label = srt_label(speaker) if label_changes and speaker and speaker != previous else ""
        previous = speaker
        for first, end in _cue_spans(run, _width(label), settings):
            lines = _lines(run[first:end], _width(label) if first == 0 else 0,
                           settings.subtitle_max_line_chars)
            if first == 0 and label:
                lines[0] = label + lines[0]
            built.append(Cue(run[first].start, run[end - 1].end, tuple(lines), speaker))
    audio_end = max([result.duration] + [c.end for c in built])
    return _readable(built, settings.subtitle_min_cue_seconds, audio_end)


def srt_label(speaker: str) -> str:
    return f"{speaker}: "


def join(left: str, right: str) -> str:
    """Two pieces of text as one: with a space between, unless either side is CJK."""
    return f"{left} {right}" if _spaced(left, right) else left + right


def _spaced(left: str, right: str) -> bool:
    return bool(left and right and not _NO_SPACE_CHAR.match(left[-1])
                and not _NO_SPACE_CHAR.match(right[0]))


def _width(text: str) -> int:
    """Columns on screen: full-width characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# -- tokens ------------------------------------------------------------------------------

def _tokens(segments: Sequence[Segment]) -> list[_Token]:
    tokens: list[_Token] = []
    for segment in segments:
        own = _word_tokens(segment) or _text_tokens(segment)
        if own and tokens:
            own[0].space = _spaced(tokens[-1].text, own[0].text)
        tokens += own
    return tokens


def _word_tokens(segment: Segment) -> list[_Token] | None:
    """The segment's words as tokens, if they spell its text and any carries times; words
    without times get times shared out, by characters, between their timed neighbours."""
    text, at = segment.text, 0
    tokens: list[_Token] = []
    timed: list[tuple[float, float] | None] = []
    for word in segment.words:
        spelled = word.word.strip()
        if not spelled:
            continue
        found = text.find(spelled, at)
        if found < 0 or text[at:found].strip():
            return None
        tokens.append(_Token(spelled, 0.0, 0.0, word.speaker or segment.speaker,
                             space=found > at))
        if word.start is not None and word.end is not None and word.end >= word.start:
            timed.append((word.start, word.end))
        else:
            timed.append(None)
        at = found + len(spelled)
    if not tokens or text[at:].strip() or not any(timed):
        return None
    index = 0
    while index < len(tokens):
        times = timed[index]
        if times is not None:
            tokens[index].start, tokens[index].end = times
            index += 1
            continue
        gap_end = next((k for k in range(index, len(tokens)) if timed[k]), len(tokens))
        low = tokens[index - 1].end if index else segment.start
        high_times = timed[gap_end] if gap_end < len(tokens) else None
        high = high_times[0] if high_times else max(segment.end, low)
        _share_out(tokens[index:gap_end], low, max(high, low))
        index = gap_end
    return tokens


def _text_tokens(segment: Segment) -> list[_Token]:
    tokens = [_Token(piece, 0.0, 0.0, segment.speaker, space=space)
              for space, piece in _pieces(segment.text)]
    _share_out(tokens, segment.start, max(segment.end, segment.start))
    return tokens


def _pieces(text: str) -> Iterator[tuple[bool, str]]:
    """The text's words, and each character of text without spaces; with whether a space
    comes before."""
    for number, word in enumerate(text.split()):
        for index, piece in enumerate(_PIECE.findall(word)):
            yield number > 0 and index == 0, piece


def _share_out(tokens: Sequence[_Token], start: float, end: float) -> None:
    total = sum(len(t.text) for t in tokens) or 1
    done = 0
    for token in tokens:
        token.start = start + (end - start) * done / total
        done += len(token.text)
        token.end = start + (end - start) * done / total


def _runs(tokens: Sequence[_Token]) -> Iterator[list[_Token]]:
    """Stretches of one speaker without a long silence: no cue crosses from one to the next."""
    run: list[_Token] = []
    for token in tokens:
        if run and (token.speaker != run[-1].speaker
                    or token.start - run[-1].end > _PAUSE_SECONDS):
            yield run
            run = []
        run.append(token)
    if run:
        yield run


# -- where to break ----------------------------------------------------------------------

def _is_abbreviation(text: str) -> bool:
    if not text.endswith("."):
        return False
    word = text.rstrip(".").lstrip(_OPENING).lower()
    return (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())
            or _DOTTED.fullmatch(word) is not None)


def _break_cost(tokens: Sequence[_Token], index: int, *, line: bool) -> float:
    """How poor a place the end of ``tokens[index]`` is to end a cue (or, ``line``, a line)."""
    token = tokens[index]
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if _is_abbreviation(token.text):
        return 30.0 if line else 50.0
    # "approx. five", "No. 5": a full stop before a small letter or a digit ends no sentence.
    continues = after is not None and (after.text[:1].islower() or after.text[:1].isdigit())
    if _SENTENCE_END.search(token.text) and not continues:
        return 0.0
    if _CLAUSE_END.search(token.text):
        return 1.0 if line else 2.0
    if not line and after is not None and after.start - token.end >= _BREATH_SECONDS:
        return 2.0
    leaning = 2.0 if token.text.lower() in _LEANING else 0.0
    return leaning + (3.0 if line else 6.0)


def _cue_spans(run: Sequence[_Token], lead: int, settings: Settings) -> list[tuple[int, int]]:
    """The cheapest division of a run into cues that keep to the limits (a single token too
    long for them gets a cue of its own): each cue costs a little, more the shorter it is
    said than readable and the fuller it is (which balances the cues of a long sentence),
    plus the cost of where it ends."""
    width_limit = settings.subtitle_max_line_chars
    capacity = width_limit * settings.subtitle_max_lines
    best = [math.inf] * (len(run) + 1)
    back = [0] * (len(run) + 1)
    best[0] = 0.0
    ending = [_break_cost(run, k, line=False) for k in range(len(run) - 1)] + [0.0]
    shortest = max(settings.subtitle_min_cue_seconds, 1e-3)
    for first in range(len(run)):
        lines, line, width = 1, 0, 0
        for last in range(first, len(run)):
            token = run[last]
            size = token.width + (lead if last == 0 else 0)
            gap = int(token.space) if last > first else 0
            if last == first:
                line = size
            elif line + gap + size <= width_limit:
                line += gap + size
            else:
                lines, line = lines + 1, size
            width += gap + size
            duration = token.end - run[first].start
            if last > first and (lines > settings.subtitle_max_lines
                                 or duration > settings.subtitle_max_cue_seconds):
                break
            cost = (best[first] + 0.5 + 2.0 * min(width / capacity, 1.0) ** 2
                    + _SHORT_WEIGHT * max(0.0, 1.0 - duration / shortest)
                    + ending[last])
            if cost < best[last + 1]:
                best[last + 1], back[last + 1] = cost, first
    spans = []
    end = len(run)
    while end > 0:
        spans.append((back[end], end))
        end = back[end]
    return spans[::-1]


def _lines(tokens: Sequence[_Token], lead: int, width_limit: int) -> list[str]:
    """The cue's text on as few lines as fit, broken where the lines come out most even
    and at the best places (punctuation before plain words, never after an abbreviation)."""
    sizes = [t.width + (lead if i == 0 else 0) for i, t in enumerate(tokens)]
    breaks = [_break_cost(tokens, k, line=True) for k in range(len(tokens))]
    # through[i]: the width of tokens[:i] with the spaces before each.
    through = [0]
    for size, token in zip(sizes, tokens, strict=True):
        through.append(through[-1] + size + token.space)

    def width(first: int, end: int) -> int:
        return through[end] - through[first] - tokens[first].space

    count, line = 1, sizes[0]
    for index in range(1, len(tokens)):
        if line + tokens[index].space + sizes[index] <= width_limit:
            line += tokens[index].space + sizes[index]
        else:
            count, line = count + 1, sizes[index]
    mean = width(0, len(tokens)) / count
    # best[k][end]: the cost of tokens[:end] on k lines, and where the last of them starts.
    best = [[(math.inf, 0)] * (len(tokens) + 1) for _ in range(count + 1)]
    best[0][0] = (0.0, 0)
    for k in range(1, count + 1):
        for end in range(1, len(tokens) + 1):
            for first in range(end - 1, -1, -1):
                size = width(first, end)
                if size > width_limit and end - first > 1:
                    break
                before = best[k - 1][first][0]
                if before == math.inf:
                    continue
                cost = (before + _BALANCE_WEIGHT * ((size - mean) / width_limit) ** 2
                        + (breaks[first - 1] if first else 0.0))
                if cost < best[k][end][0]:
                    best[k][end] = (cost, first)
    bounds, end = [], len(tokens)
    for k in range(count, 0, -1):
        first = best[k][end][1]
        bounds.append((first, end))
        end = first
    return ["".join((" " if t.space and i else "") + t.text
                    for i, t in enumerate(tokens[first:end])) for first, end in bounds[::-1]]


# -- timing ------------------------------------------------------------------------------

def _readable(built: Sequence[Cue], min_seconds: float, audio_end: float) -> list[Cue]:
    """Cues in order without overlaps, each stretched into the silence after it (then
    before it) to ``min_seconds`` where there is room."""
    timed: list[Cue] = []
    for index, cue in enumerate(built):
        floor = timed[-1].end if timed else 0.0
        ceiling = built[index + 1].start if index + 1 < len(built) else audio_end
        start = max(cue.start, floor)
        ceiling = max(ceiling, start)
        end = min(max(cue.end, start), ceiling)
        if end - start < min_seconds:
            end = min(start + min_seconds, ceiling)
            start = max(floor, min(start, end - min_seconds))
        timed.append(Cue(start, end, cue.lines, cue.speaker))
    return timed
