"""Child process: the offline diarization pipeline's speed knobs on pyannote's sample.

``python -m benchmark.diarization_child ROUNDS`` prints one JSON line: a list of
:class:`Trial`. The pipeline comes from stages.models (the stage's own code path) and runs
through stages.diarize.diarize; each setting is applied to that loaded pipeline, then put
back, because stages.models builds it with fixed values (see the report's note).

Each round runs every setting once, starting one setting later than the round before:
the machine's speed drifts by more than the knobs change it, and a setting timed only
in its own stretch of minutes would carry that stretch's drift.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec

from benchmark import scoring
from benchmark.channel import reply_channel
from tests.support import memory
from tests.support.audio import sample_wav

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
    seconds: list[float]  # one per round
    der: float
    peak_rss_mb: float  # the highest of its runs' peaks, above the loaded pipeline


def variants(base: Knobs) -> list[Knobs]:
    """The stage's setting, then one knob changed at a time."""
    return [base, *(msgspec.structs.replace(base, **{name: value})
                    for name, values in _TRIED.items() for value in values
                    if value != getattr(base, name))]


def round_order(settings: int, round_index: int) -> list[int]:
    """The order of the settings in one round: each round starts one setting later."""
    start = round_index % settings
    return [*range(start, settings), *range(start)]


def _apply(pipeline: Any, knobs: Knobs) -> None:
    import torch

    pipeline.embedding_batch_size = knobs.embedding_batch_size
    pipeline.segmentation_batch_size = knobs.segmentation_batch_size
    # The sliding window's step is fixed when the pipeline is built (pyannote's Inference
    # keeps it in seconds); set it there and where the stage reads it for provenance.
    pipeline.segmentation_step = knobs.segmentation_step
    pipeline._segmentation.step = knobs.segmentation_step * pipeline._segmentation.duration
    torch.set_num_threads(knobs.threads)


def main(rounds: int) -> None:
    replies = reply_channel()
    import torch

    from stages import audio, models
    from stages.artifacts import SAMPLE_RATE
    from stages.diarize import diarize, to_record
    from stages.settings import Settings

    pipeline = models.diarization(Settings.from_env(device="cpu")).model
    loaded_mb = memory.rss_mb()
    base = Knobs(pipeline.embedding_batch_size, pipeline.segmentation_batch_size,
                 float(pipeline.segmentation_step), torch.get_num_threads())
    samples = audio.load(sample_wav())
    file = {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": SAMPLE_RATE}
    speakers: dict[str, int | None] = {"num_speakers": None, "min_speakers": None,
                                       "max_speakers": None}

    def progress(fraction: float, detail: str | None) -> None:
        pass

    def once() -> tuple[float, float, Any]:
        memory.reset_peak()
        started = time.perf_counter()
        with torch.inference_mode():
            output, _ = diarize(pipeline, file, speakers, progress)
        return time.perf_counter() - started, memory.peak_rss_mb() - loaded_mb, output

    once()  # warm-up: the first call pays one-off costs
    settings = variants(base)
    trials: list[Trial | None] = [None] * len(settings)
    for round_index in range(rounds):
        for i in round_order(len(settings), round_index):
            _apply(pipeline, settings[i])
            seconds, peak_mb, output = once()
            trial = trials[i]
            if trial is None:
                der = scoring.der_of_turns(to_record(output).turns)
                trials[i] = Trial(settings[i], [seconds], der, peak_mb)
            else:
                trial.seconds.append(seconds)
                trial.peak_rss_mb = max(trial.peak_rss_mb, peak_mb)
    _apply(pipeline, base)
    replies.write(msgspec.json.encode(trials).decode())
    replies.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
