"""WER against sample.stm and DER against sample.rttm, as the stage tests score them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from stages.types import Result, SpeakerTurn
from tests.support.audio import duration, sample_dir


class Diarized(msgspec.Struct):
    """The part of the diarize stage's artifact that DER needs."""

    turns: list[SpeakerTurn]


def wer(result_path: Path) -> float:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    result = msgspec.json.decode(result_path.read_bytes(), type=Result)
    stm = [line.split(maxsplit=5)
           for line in (sample_dir() / "sample.stm").read_text().splitlines()
           if line.strip() and not line.startswith(";;")]
    normalize = EnglishTextNormalizer()
    truth = normalize(" ".join(fields[5] for fields in stm if len(fields) > 5))
    said = normalize(" ".join(s.text for s in result.segments))
    return float(jiwer.wer(truth, said))


def annotation(turns: list[SpeakerTurn]) -> Any:
    """``turns`` as a pyannote Annotation."""
    from pyannote.core import Annotation, Segment

    hypothesis = Annotation()
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    return hypothesis


def der_against(reference: Any, turns: list[SpeakerTurn]) -> float:
    """DER (collar 0, overlap scored) of ``turns`` against a ``reference`` Annotation."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    return float(metric(reference, annotation(turns)))


def sample_turns() -> list[SpeakerTurn]:
    """sample.rttm's turns."""
    turns = []
    for line in (sample_dir() / "sample.rttm").read_text().splitlines():
        fields = line.split()
        start = float(fields[3])
        turns.append(SpeakerTurn(start, start + float(fields[4]), fields[7]))
    return turns


def repeated_turns(turns: list[SpeakerTurn], period: float,
                   seconds: float) -> list[SpeakerTurn]:
    """The turns of a recording ``period`` s long repeated and cut to ``seconds``, as
    tests.support.audio.repeated makes its audio: whole copies end to end, then cut."""
    out = []
    for copy in range(int(seconds // period) + 1):
        offset = copy * period
        for turn in turns:
            start, end = turn.start + offset, min(turn.end + offset, seconds)
            if start < end:
                out.append(SpeakerTurn(start, end, turn.speaker))
    return out


def der_of_turns(turns: list[SpeakerTurn], seconds: float | None = None) -> float:
    """DER of ``turns`` against sample.rttm, or against it repeated to ``seconds``."""
    reference = sample_turns()
    if seconds is not None:
        reference = repeated_turns(reference, duration(sample_dir() / "sample.wav"), seconds)
    return der_against(annotation(reference), turns)


def der(diarization_path: Path) -> float:
    return der_of_turns(msgspec.json.decode(diarization_path.read_bytes(), type=Diarized).turns)
