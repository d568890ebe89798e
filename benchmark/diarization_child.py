"""Child process: the offline diarization pipeline's speed knobs on pyannote's sample.

``python -m benchmark.diarization_child REPEATS`` prints one JSON line: a list of
:class:`Trial`. The pipeline comes from stages.models (the stage's own code path) and runs
through stages.diarize.diarize; each setting is applied to that loaded pipeline, then put
back, because stages.models builds it with fixed values (see the report's note).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec

from benchmark import scoring
from benchmark.audio import sample_wav
from benchmark.channel import reply_channel

WARMUP = "warm-up"


class Knobs(msgspec.Struct, frozen=True):
    embedding_batch_size: int
    segmentation_batch_size: int
    segmentation_step: float  # fraction of the 10 s window
    threads: int


# The values tried for each knob, one knob at a time from the stage's setting.
_TRIED: dict[str, tuple[int | float, ...]] = {
    "embedding_batch_size": (1, 8, 32),
    "segmentation_batch_size": (1, 8, 32),
    "segmentation_step": (0.1, 0.2, 0.3),
    "threads": (1, 2),
}


class Trial(msgspec.Struct):
    knobs: Knobs
    seconds: float  # best of the repeats
    der: float


def variants(base: Knobs) -> list[Knobs]:
    """The stage's setting, then one knob changed at a time."""
    return [base, *(msgspec.structs.replace(base, **{name: value})
                    for name, values in _TRIED.items() for value in values
                    if value != getattr(base, name))]


def _apply(pipeline: Any, knobs: Knobs) -> None:
    import torch

    pipeline.embedding_batch_size = knobs.embedding_batch_size
    pipeline.segmentation_batch_size = knobs.segmentation_batch_size
    # The sliding window's step is fixed when the pipeline is built (pyannote's Inference
    # keeps it in seconds); set it there and where the stage reads it for provenance.
    pipeline.segmentation_step = knobs.segmentation_step
    pipeline._segmentation.step = knobs.segmentation_step * pipeline._segmentation.duration
    torch.set_num_threads(knobs.threads)


def main(repeats: int) -> None:
    replies = reply_channel()
    import torch

    from pipeline.settings import Settings
    from stages import audio, models
    from stages.decode import SAMPLE_RATE
    from stages.diarize import diarize, to_record

    pipeline = models.diarization(Settings.from_env(device="cpu")).model
    base = Knobs(pipeline.embedding_batch_size, pipeline.segmentation_batch_size,
                 float(pipeline.segmentation_step), torch.get_num_threads())
    samples = audio.load(sample_wav())
    file = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": SAMPLE_RATE}
    speakers: dict[str, int | None] = {"num_speakers": None, "min_speakers": None,
                                       "max_speakers": None}

    def progress(fraction: float, detail: str | None) -> None:
        pass

    def once() -> tuple[float, Any]:
        started = time.perf_counter()
        with torch.inference_mode():
            output, _ = diarize(pipeline, file, speakers, progress)
        return time.perf_counter() - started, output

    once()  # warm-up: the first call pays one-off costs
    trials = []
    for knobs in variants(base):
        _apply(pipeline, knobs)
        runs = [once() for _ in range(repeats)]
        best = min(seconds for seconds, _ in runs)
        trials.append(Trial(knobs, best, scoring.der_of_turns(to_record(runs[0][1]).turns)))
    _apply(pipeline, base)
    replies.write(msgspec.json.encode(trials).decode())
    replies.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
