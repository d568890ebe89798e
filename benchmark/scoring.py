"""WER against sample.stm and DER against sample.rttm, as the stage tests score them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from stages.types import Result, SpeakerTurn
from tests.support.audio import sample_dir


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


def der_of_turns(turns: list[SpeakerTurn]) -> float:
    """DER of ``turns`` against sample.rttm."""
    from pyannote.database.util import load_rttm

    reference = next(iter(load_rttm(str(sample_dir() / "sample.rttm")).values()))  # type: ignore[no-untyped-call]
    return der_against(reference, turns)


def der(diarization_path: Path) -> float:
    return der_of_turns(msgspec.json.decode(diarization_path.read_bytes(), type=Diarized).turns)
