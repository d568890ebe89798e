"""Subtitles and text of a real transcript: the three-speaker conversation through the
stages, rendered as the gateway serves it."""

from __future__ import annotations

import re

import pytest

from gateway.formats import to_txt
from stages.settings import Settings
from tests.stages.conftest import ConversationJob
from tests.support.subtitles import assert_readable

pytestmark = pytest.mark.models


def test_the_conversation_makes_readable_subtitles(conversation_job: ConversationJob) -> None:
    result = conversation_job.result
    turns = [s.speaker for i, s in enumerate(result.segments)
             if i == 0 or s.speaker != result.segments[i - 1].speaker]
    assert len(turns) >= 5  # the script has eight turns, of three speakers

    subtitles = assert_readable(result, Settings())
    # VTT: every cue in the voice of a speaker of the result, a new cue at each change.
    voices = [c.speaker for c in subtitles.vtt]
    assert set(voices) == set(result.speakers)
    assert [v for i, v in enumerate(voices) if i == 0 or v != voices[i - 1]] == turns
    # SRT: the name where the speaker changes, and only there.
    labelled = [c.speaker for c in subtitles.srt if c.speaker]
    assert labelled == turns
    for cues in (subtitles.srt, subtitles.vtt):
        assert all(c.lines for c in cues)

    # Narrower limits hold on the same transcript too.
    narrow = Settings(subtitle_max_line_chars=24, subtitle_max_lines=1,
                      subtitle_max_cue_seconds=3.0)
    assert len(assert_readable(result, narrow).vtt) > len(subtitles.vtt)

    paragraphs = to_txt(result, "job", Settings()).split("\n\n")
    headings = [p.split("\n", 1)[0] for p in paragraphs]
    assert [h.split(" [")[0] for h in headings] == turns
    assert all(re.fullmatch(r"SPEAKER_\d\d \[\d\d:\d\d:\d\d\]", h) for h in headings)
    print("conversation subtitles:", len(subtitles.srt), "SRT cues,", len(subtitles.vtt),
          "VTT cues,", len(paragraphs), "paragraphs")
