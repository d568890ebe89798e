"""The diarization evaluation set: synthetic conversations of 2 to 6 voices, made here.

pyannote's sample is what the offline clustering was tuned on and what the stage test
asserts on, so it says little about voices the service has never heard. These files are
spoken by espeak-ng and shifted by sox, with what makes diarization hard: voices of one
espeak family a few pitch steps apart, a recording and its pitch-shifted copy as two
people, overlapping turns and one-word answers.

Two halves with disjoint voices: settings are chosen on ``tune`` and reported on
``report``, whose voices the choice never heard. The same seed gives the same files (the
text, the voices, the timeline; espeak-ng's and sox's output is deterministic for one
version of each).
"""

from __future__ import annotations

import random
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.support.media_gen import SAMPLE_RATE, Turn, altered, speak, write_wav

HALVES = ("tune", "report")
#: Speaker counts of each half's files.
COUNTS = (2, 2, 3, 3, 4, 4, 5, 5, 6, 6)


@dataclass(frozen=True)
class Voice:
    name: str
    espeak: tuple[str, ...]  # espeak-ng options
    cents: int = 0  # a sox pitch shift of what espeak said


def _v(name: str, voice: str, pitch: int, speed: int, cents: int = 0) -> Voice:
    return Voice(name, ("-v", voice, "-p", str(pitch), "-s", str(speed)), cents)


# Each half: two close pairs first (two variants of one espeak-ng voice; a recording and
# its copy shifted by three semitones), then voices far apart. None is a test's voice
# (tests/support/media_gen.py VOICES). One variant at two pitches is no pair: its CAM++
# embeddings are 0.99 alike, as one person's are, so such files would have no right answer.
# CAM++ similarity of whole sentences, pairs: 0.75 and 0.59 (tune), 0.69 and 0.56
# (report); other voices 0.3-0.65; one voice's two sentences 0.81-0.92.
VOICES: dict[str, tuple[Voice, ...]] = {
    "tune": (
        _v("t-m2", "en-us+m2", 50, 160), _v("t-m4", "en-us+m4", 40, 165),
        _v("t-f2", "en-gb+f2", 65, 150), _v("t-f2-down", "en-gb+f2", 65, 150, cents=-300),
        _v("t-klatt", "en-us+klatt", 50, 170), _v("t-david", "en-us+david", 50, 155),
        _v("t-f3", "en-us+f3", 70, 160), _v("t-andy", "en-us+Andy", 50, 175),
    ),
    "report": (
        _v("r-f1", "en-us+f1", 60, 160), _v("r-linda", "en-us+linda", 50, 155),
        _v("r-gb-m1", "en-gb+m1", 40, 160), _v("r-gb-m1-up", "en-gb+m1", 40, 160, cents=300),
        _v("r-ed", "en-us+ed", 50, 170), _v("r-steph", "en-us+steph", 50, 150),
        _v("r-m7", "en-us+m7", 45, 165), _v("r-klatt2", "en-us+klatt2", 40, 175),
    ),
}

_LINES = (
    "Let us start with the numbers from last quarter before we move on.",
    "The shipping delays were mostly caused by the warehouse move in March.",
    "I spoke with the supplier yesterday and they promised a new schedule.",
    "We should keep the launch date, but reduce the scope of the first release.",
    "Can somebody check whether the contract covers the extra testing?",
    "Our customers asked for a simpler way to export their reports.",
    "The new hires start on Monday, and they still need laptops and accounts.",
    "I would rather spend the money on support than on another advertisement.",
    "Last time we tried that, the servers ran out of memory within an hour.",
    "The design team wants two more weeks to finish the mobile screens.",
    "Please send me the slides after the meeting so I can review them tonight.",
    "Training costs went up, but the error rate in the factory went down.",
    "I am not convinced the survey asked the right questions.",
    "The audit found nothing serious, only a few missing signatures.",
    "If we move the workshop to Thursday, more people from sales can join.",
    "The budget for the garden project was approved this morning.",
    "My concern is the timeline, not the cost.",
    "Three of our largest clients renewed their contracts this month.",
    "We still have no answer from the city about the parking permits.",
    "Let me summarise what we agreed on so far.",
)
_SHORT = ("Yes, exactly.", "Right.", "Okay.", "I see.", "Sure, go ahead.", "No.",
          "Agreed.", "Good point.")


@dataclass(frozen=True)
class EvalFile:
    name: str
    half: str
    path: Path
    turns: list[Turn]  # the reference: who speaks when (turns may overlap)

    @property
    def speakers(self) -> int:
        return len({t.speaker for t in self.turns})


def _said(directory: Path, voice: Voice, text: str, index: int) -> npt.NDArray[np.float32]:
    clip = speak(directory / f"{voice.name}-{index}.wav", list(voice.espeak), text)
    if voice.cents:
        clip = altered(clip, clip.with_suffix(".shifted.wav"), ["pitch", str(voice.cents)])
    with wave.open(str(clip), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    # espeak-ng pads each clip with silence; a turn is the speech in it.
    samples = (pcm / 32768).astype(np.float32)
    voiced = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[voiced[0]:voiced[-1] + 1] if voiced.size else samples


def _cast(rng: random.Random, pool: tuple[Voice, ...], count: int, index: int) -> list[Voice]:
    """``count`` voices of ``pool``; every file but every fourth two-voice one holds a close
    pair (the first pair in even files, the second in odd ones)."""
    pair = list(pool[0:2] if index % 2 == 0 else pool[2:4])
    if count == 2 and index % 4 == 3:
        return rng.sample(pool[4:], 2)
    others = [v for v in pool if v not in pair]
    return pair + rng.sample(others, count - 2)


def conversation(directory: Path, half: str, index: int, count: int) -> EvalFile:
    (directory / "clips").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{half}-{index}")
    cast = _cast(rng, VOICES[half], count, index)
    # Everyone speaks early (a late first turn is a test of its own), then anyone but
    # the last speaker.
    order = rng.sample(cast, count)
    while len(order) < max(10, 3 * count):
        order.append(rng.choice([v for v in cast if v != order[-1]]))
    pieces: list[tuple[int, npt.NDArray[np.float32]]] = []
    turns: list[Turn] = []
    t = 0.5
    for i, voice in enumerate(order):
        text = rng.choice(_SHORT) if rng.random() < 0.25 else rng.choice(_LINES)
        samples = _said(directory / "clips", voice, text, i)
        seconds = len(samples) / SAMPLE_RATE
        if i and rng.random() < 0.2 and turns[-1].end - turns[-1].start > 1.5:
            t = turns[-1].end - rng.uniform(0.3, 1.0)  # talks over the end of the last turn
        start = round(t, 3)
        pieces.append((int(start * SAMPLE_RATE), samples))
        turns.append(Turn(start, round(start + seconds, 3), voice.name, text))
        t = start + seconds + rng.uniform(0.2, 0.8)
    mix = np.zeros(int((t + 0.5) * SAMPLE_RATE), np.float32)
    for offset, samples in pieces:
        mix[offset:offset + len(samples)] += samples
    name = f"{half}-{index:02d}-{count}spk"
    path = write_wav(directory / f"{name}.wav", np.clip(mix, -1, 1)[None, :], SAMPLE_RATE)
    return EvalFile(name, half, path, turns)


def build(directory: Path, halves: tuple[str, ...] = HALVES) -> list[EvalFile]:
    """Every file of ``halves``, written under ``directory``."""
    return [conversation(directory, half, i, count)
            for half in halves for i, count in enumerate(COUNTS)]
