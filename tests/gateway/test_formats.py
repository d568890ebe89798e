"""Subtitles and text from constructed Results: cue limits, where cues and lines break,
speakers, timing without word times, CJK text; and the served media types."""

from __future__ import annotations

import re

import msgspec
import pytest
import srt
from litestar import Litestar

from gateway import create_app
from gateway.formats import to_srt, to_txt, to_vtt
from pipeline.store import JobStore
from stages.settings import Settings
from stages.types import FORMATS, Result, Segment, Word
from tests.support.gateway import completed_job, serve_app
from tests.support.subtitles import Subtitles, assert_readable, rendered, width

DEFAULTS = Settings()


def spoken(text: str, start: float, speaker: str | None = "SPEAKER_00", *,
           seconds_per_word: float = 0.35) -> Segment:
    """A segment with a time for every word, said at an even pace."""
    words = [Word(word=w, start=start + i * seconds_per_word,
                  end=start + (i + 0.8) * seconds_per_word, speaker=speaker)
             for i, w in enumerate(text.split())]
    return Segment(start=start, end=words[-1].end if words else start, text=text,
                   speaker=speaker, words=words)


def result_of(*segments: Segment, duration: float | None = None) -> Result:
    end = max((s.end for s in segments), default=0.0)
    speakers = sorted({s.speaker for s in segments if s.speaker})
    return Result(language="en", duration=duration if duration is not None else end + 1,
                  segments=list(segments), speakers=speakers)


LONG = ("Yesterday afternoon the committee reviewed the proposal for the new regional "
        "transport network in considerable detail and asked for a revised budget, a "
        "clearer timetable and a summary of the environmental assessment before the vote.")


def test_a_long_sentence_keeps_to_the_limits() -> None:
    subtitles = assert_readable(result_of(spoken(LONG, 0.0)), DEFAULTS)
    for cues in (subtitles.srt, subtitles.vtt):
        assert len(cues) >= 3
        assert any(len(c.lines) == 2 for c in cues)
        # Two lines as even as the words allow, or broken at a comma.
        for cue in cues:
            if len(cue.lines) == 2:
                top, bottom = map(width, cue.lines)
                assert abs(top - bottom) <= 16 or cue.lines[0].endswith(","), cue


def test_the_limits_are_settings() -> None:
    narrow = Settings(subtitle_max_line_chars=20, subtitle_max_lines=1,
                      subtitle_max_cue_seconds=3.0, subtitle_min_cue_seconds=0.5)
    cues = assert_readable(result_of(spoken(LONG, 0.0)), narrow).vtt
    assert all(len(c.lines) == 1 for c in cues)
    assert max(width(c.lines[0]) for c in cues) <= 20
    assert all(c.end - c.start <= 3.0 for c in cues)
    assert len(cues) > len(rendered(result_of(spoken(LONG, 0.0)), DEFAULTS).vtt)


@pytest.mark.parametrize("abbreviation", ["Mr.", "Dr.", "Mrs.", "e.g.", "i.e.", "U.S.", "J."])
def test_no_cue_or_line_ends_after_an_abbreviation(abbreviation: str) -> None:
    # Whisper's segments end after "Mr." now and then: the cue flows on into the next one.
    first = spoken(f"This morning I spoke at length with {abbreviation}", 0.0)
    second = spoken("Smith about the plan.", first.end + 0.05)
    subtitles = assert_readable(result_of(first, second), DEFAULTS)
    for cues in (subtitles.srt, subtitles.vtt):
        assert len(cues) == 1 and cues[0].end - cues[0].start >= 1.0
        assert not any(line.endswith(abbreviation) for line in cues[0].lines)
        assert f"{abbreviation} Smith" in " ".join(cues[0].lines)

    # Nor where it falls at a cue's end in a long run of speech.
    text = " ".join([LONG, f"Then {abbreviation} Brown and {abbreviation} Green arrived.", LONG])
    subtitles = assert_readable(result_of(spoken(text, 0.0)), DEFAULTS)
    for cue in subtitles.srt + subtitles.vtt:
        assert not any(line.endswith(abbreviation) for line in cue.lines), cue


def test_cues_break_at_sentence_ends() -> None:
    text = ("The budget looks fine, but travel costs have grown a lot. "
            "I think we should reduce travel and meet online more often this year.")
    subtitles = assert_readable(result_of(spoken(text, 0.0)), DEFAULTS)
    for cues in (subtitles.srt, subtitles.vtt):
        assert [c.text for c in cues] == [
            "The budget looks fine, but travel costs have grown a lot.",
            "I think we should reduce travel and meet online more often this year."]


def test_lines_break_at_punctuation_before_balance() -> None:
    cues = rendered(result_of(spoken(
        "After the meeting, we will send everybody a short summary", 0.0, None)), DEFAULTS)
    assert [c.lines for c in cues.srt] == [c.lines for c in cues.vtt] == [
        ["After the meeting,", "we will send everybody a short summary"]]
    [cue] = rendered(result_of(spoken(
        "we will send everybody a very short summary of the meeting tomorrow", 0.0, None)),
        DEFAULTS).vtt
    top, bottom = map(width, cue.lines)
    assert abs(top - bottom) <= 8, cue.lines


def test_a_cue_lasts_at_most_the_maximum() -> None:
    slow = spoken("so we will see what happens when every word takes a long time", 0.0,
                  seconds_per_word=1.2)
    subtitles = assert_readable(result_of(slow), DEFAULTS)
    for cues in (subtitles.srt, subtitles.vtt):
        assert len(cues) >= 3 and all(c.end - c.start <= 7.0 for c in cues)


def test_a_short_cue_is_stretched_without_overlapping_the_next() -> None:
    yes = spoken("Yes.", 2.0, "SPEAKER_00", seconds_per_word=0.3)
    alone = assert_readable(result_of(yes, spoken("Fine.", 6.0, "SPEAKER_01")), DEFAULTS).vtt
    assert alone[0].start == pytest.approx(2.0) and alone[0].end == pytest.approx(3.0)
    # The next speaker starts 0.5 s later: the cue takes the silence before it as well.
    close = assert_readable(result_of(spoken("Hello.", 0.0, "SPEAKER_01", seconds_per_word=1),
                                      yes, spoken("Fine.", 2.74, "SPEAKER_01")), DEFAULTS).vtt
    assert close[1].end == pytest.approx(2.74) and close[1].start == pytest.approx(1.74)
    assert close[0].end <= close[1].start


def test_every_speaker_change_starts_a_cue() -> None:
    text = "Are you coming? Yes I am"
    words = [Word(word=w, start=i * 0.4, end=i * 0.4 + 0.3,
                  speaker="SPEAKER_00" if i < 3 else "SPEAKER_01")
             for i, w in enumerate(text.split(" "))]
    mixed = Segment(start=0.0, end=words[-1].end, text=text,
                    speaker="SPEAKER_00", words=words)
    result = result_of(mixed, spoken("Good, see you then.", 3.0, "SPEAKER_01"),
                       spoken("Bye.", 6.0, "SPEAKER_00"))
    subtitles = assert_readable(result, DEFAULTS)
    expected = [("SPEAKER_00", "Are you coming?"), ("SPEAKER_01", "Yes I am Good, see you then."),
                ("SPEAKER_00", "Bye.")]
    assert [(c.speaker, c.text) for c in subtitles.vtt] == expected
    assert [(c.speaker, c.text) for c in subtitles.srt] == expected
    # SRT names the speaker where it changes, VTT in a voice tag on every cue.
    assert [c.lines[0] for c in subtitles.srt] == [
        "SPEAKER_00: Are you coming?", "SPEAKER_01: Yes I am Good, see you then.",
        "SPEAKER_00: Bye."]
    vtt = to_vtt(result, "job", DEFAULTS)
    assert "<v SPEAKER_01>Yes I am Good, see you then." in vtt and "SPEAKER_01:" not in vtt


def test_srt_names_a_speaker_only_where_the_speaker_changes() -> None:
    first = spoken(LONG, 0.0, "SPEAKER_00")
    second = spoken(LONG, first.end + 3.0, "SPEAKER_00")  # a pause: new cues, same speaker
    subtitles = assert_readable(result_of(first, second), DEFAULTS)
    labelled = [c for c in subtitles.srt if c.lines[0].startswith("SPEAKER_00: ")]
    assert labelled == subtitles.srt[:1] and len(subtitles.srt) > 4
    assert all(c.speaker == "SPEAKER_00" for c in subtitles.vtt)


def test_vtt_escapes_its_markup() -> None:
    result = result_of(spoken("Use <b> & </b> for bold -->", 0.0, "A & <B>"))
    text = to_vtt(result, "job", DEFAULTS)
    assert "<v A &amp; &lt;B&gt;>Use &lt;b&gt; &amp; &lt;/b&gt; for bold --&gt;" in text
    [cue] = assert_readable(result, DEFAULTS).vtt
    assert cue.text == "Use <b> & </b> for bold -->" and cue.speaker == "A & <B>"


def test_words_without_times_share_their_neighbours_time() -> None:
    words = [Word(word="The", start=0.0, end=0.2), Word(word="year"),
             Word(word="1999", start=None, end=None), Word(word="was", start=2.0, end=2.2),
             Word(word="long.", start=2.3, end=2.8)]
    first = Segment(start=0.0, end=2.8, text="The year 1999 was long.", words=words)
    untimed = Segment(start=10.0, end=30.0, text=LONG)  # no words at all: split by its text
    result = result_of(first, untimed, duration=31.0)
    cues = assert_readable(result, DEFAULTS).vtt
    assert cues[0].text == "The year 1999 was long." and cues[0].start == 0.0
    assert cues[0].end == pytest.approx(2.8)
    rest = cues[1:]
    assert len(rest) >= 3 and rest[0].start == pytest.approx(10.0)
    assert rest[-1].end == pytest.approx(30.0)
    # Time in proportion to the characters before each cue.
    before = 0
    letters = len("".join(LONG.split()))
    for cue in rest:
        assert cue.start == pytest.approx(10.0 + 20.0 * before / letters, abs=0.01)
        before += len("".join(cue.text.split()))


def test_words_that_do_not_spell_the_text_give_way_to_it() -> None:
    odd = Segment(start=0.0, end=2.0, text="Hello there.",
                  words=[Word(word="Hello", start=0.0, end=0.5)])
    [cue] = assert_readable(result_of(odd), DEFAULTS).vtt
    assert cue.text == "Hello there." and (cue.start, cue.end) == (0.0, 2.0)


CHINESE = ("今天天气很好，我们一起去公园散步吧。公园里有很多花，还有一个很大的湖。"
           "散步以后我们可以在湖边的小饭馆吃午饭，然后再回家休息。")


def test_cjk_text_without_spaces_breaks_between_characters() -> None:
    untimed = Segment(start=0.0, end=12.0, text=CHINESE, speaker="SPEAKER_00")
    cues = assert_readable(result_of(untimed), DEFAULTS).vtt
    assert len(cues) >= 2
    assert all(" " not in line for c in cues for line in c.lines)
    assert all(width(line) <= 42 for c in cues for line in c.lines)
    # No line starts with punctuation that closes what came before.
    assert not any(re.match("[\uff0c\u3002\u3001\uff01\uff1f]", line)
                   for c in cues for line in c.lines)
    # Whisper's words of CJK text carry no spaces either.
    timed = Segment(start=0.0, end=12.0, text=CHINESE, speaker="SPEAKER_00", words=[
        Word(word=pair, start=i * 0.4, end=i * 0.4 + 0.35)
        for i, pair in enumerate(re.findall("..?", CHINESE))])
    cues = assert_readable(result_of(timed), DEFAULTS).srt
    assert all(" " not in line.removeprefix("SPEAKER_00: ") for c in cues for line in c.lines)


def test_a_word_longer_than_a_line_stands_alone() -> None:
    url = "https://example.org/" + "very-long-path/" * 4
    cues = assert_readable(result_of(spoken(f"Please visit {url} today.", 0.0, None)),
                           DEFAULTS).vtt
    assert any(url in c.lines for c in cues)


def test_an_empty_result_gives_empty_subtitles() -> None:
    empty = result_of()
    assert to_srt(empty, "job", DEFAULTS) == "" and to_txt(empty, "job", DEFAULTS) == ""
    assert rendered(empty, DEFAULTS) == Subtitles([], [])


def test_txt_has_a_paragraph_per_speaker_turn() -> None:
    result = result_of(spoken("Hello everybody.", 0.0, "SPEAKER_00"),
                       spoken("Let us begin.", 1.5, "SPEAKER_00"),
                       spoken("Good morning.", 65.0, "SPEAKER_01"),
                       spoken("今天很好。", 70.0, "SPEAKER_01"),
                       spoken("Thanks.", 3725.0, None))
    assert to_txt(result, "job", DEFAULTS).split("\n\n") == [
        "SPEAKER_00 [00:00:00]\nHello everybody. Let us begin.",
        "SPEAKER_01 [00:01:05]\nGood morning.今天很好。",
        "[01:02:05]\nThanks.\n"]


async def test_served_subtitles_follow_the_settings_and_say_their_charset_once(
        settings: Settings, store: JobStore) -> None:
    narrow = msgspec.structs.replace(settings, subtitle_max_line_chars=20)
    app: Litestar = create_app(narrow)
    async with serve_app(app) as client:
        job_id = await completed_job(client, store)
        url = f"/jobs/{job_id}/result"
        types = {}
        for name in FORMATS:
            response = await client.get(url, params={"format": name})
            assert response.status_code == 200
            types[name] = response.headers["content-type"]
        srt_text = (await client.get(url, params={"format": "srt"})).text
    assert types == {"json": "application/json", "srt": "application/x-subrip; charset=utf-8",
                     "vtt": "text/vtt; charset=utf-8", "txt": "text/plain; charset=utf-8",
                     "rttm": "text/plain; charset=utf-8"}
    # "SPEAKER_01: Hi <you> & me" is one line of 25 characters at the default limit.
    lines = [s.content.split("\n") for s in srt.parse(srt_text)]
    assert ["SPEAKER_01: Hi <you> & me"] not in lines and len(lines[1]) == 2
    assert all(len(line) <= 20 for cue in lines for line in cue)
