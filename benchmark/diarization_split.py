"""Child process: where the offline diarization's time goes, at several audio lengths.

``python -m benchmark.diarization_split [--before] WORK SECONDS...`` prints one JSON line,
a :class:`SplitRun`: one :class:`Split` per length, each pyannote's sample repeated to that
length (written under WORK) and run once through stages.diarize.diarize, with its DER
against the sample's reference repeated alike, after an untimed warm-up on the sample
itself, whose DER it reports. The pipeline is the one the settings in the environment
select (DIARIZATION_ONNX=false: torch's); ``--before`` sets it back to the offline
setting before issue 28 (benchmark.diarization_quality.set_before), to be run with
DIARIZATION_ONNX=false.

The steps are timed from outside pyannote's code: the models' forward passes through
torch's forward hooks, pyannote's steps by wrapping the loaded pipeline's methods for the
run. Clustering has no method of the pipeline to wrap (pyannote calls its clustering
sub-pipeline), so it is the time from the end of the embeddings to the first
reconstruction, which only clustering and a few array operations fill.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from benchmark.channel import reply_channel
from tests.support import memory
from tests.support.audio import repeated, sample_wav

#: The steps of a split, in the order pyannote runs them.
STEPS = ("segmentation inference", "segmentation other", "embedding inference",
         "embedding other", "clustering", "reconstruction", "other")


class Split(msgspec.Struct):
    audio_seconds: float
    seconds: float  # the whole run
    der: float  # against the sample's reference repeated to the same length
    steps: dict[str, float]  # seconds per step of STEPS, adding up to ``seconds``
    peak_rss_mb: float  # above the loaded pipeline


class SplitRun(msgspec.Struct):
    der: float  # on the sample, against its reference
    splits: list[Split]


class _Clock:
    """Seconds spent in each timed call, and when the last of some calls ended."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self._open: dict[str, float] = {}

    def start(self, name: str) -> None:
        now = time.perf_counter()
        self._open[name] = now
        self.started.setdefault(name, now)

    def stop(self, name: str) -> None:
        now = time.perf_counter()
        self.spent[name] = self.spent.get(name, 0.0) + now - self._open.pop(name)
        self.ended[name] = now

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.start(name)
            try:
                return call(*args, **kwargs)
            finally:
                self.stop(name)
        return timed


@contextmanager
def _timed(pipeline: Any, clock: _Clock) -> Iterator[None]:
    """``pipeline``'s models and steps timed into ``clock`` for the duration."""
    from stages import compat

    models = {"segmentation model": compat.pyannote.segmentation_inference(pipeline).model,
              "embedding model": compat.pyannote.pyannote_embedding_model(pipeline)}
    handles = []
    for name, model in models.items():
        handles.append(model.register_forward_pre_hook(
            lambda *_, name=name: clock.start(name)))
        handles.append(model.register_forward_hook(lambda *_, name=name: clock.stop(name)))
    methods = {"get_segmentations": "segmentation", "get_embeddings": "embeddings",
               "reconstruct": "reconstruction"}
    # The stage may have set an instance attribute (stages/compat/reconstruct.py); it is
    # put back as it was.
    own = {method: pipeline.__dict__[method] for method in methods if method in pipeline.__dict__}
    for method, name in methods.items():
        setattr(pipeline, method, clock.wrap(name, getattr(pipeline, method)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for method in methods:
            if method in own:
                setattr(pipeline, method, own[method])
            else:
                delattr(pipeline, method)


def split(clock: _Clock, seconds: float) -> dict[str, float]:
    """The seconds of each of STEPS, from a clock that timed one run of ``seconds``."""
    spent = clock.spent
    segmentation, embeddings = spent["segmentation"], spent.get("embeddings", 0.0)
    clustering = (clock.started["reconstruction"] - clock.ended["embeddings"]
                  if "reconstruction" in clock.started else 0.0)
    steps = {
        "segmentation inference": spent["segmentation model"],
        "segmentation other": segmentation - spent["segmentation model"],
        "embedding inference": spent.get("embedding model", 0.0),
        "embedding other": embeddings - spent.get("embedding model", 0.0),
        "clustering": clustering,
        "reconstruction": spent.get("reconstruction", 0.0),
    }
    steps["other"] = seconds - sum(steps.values())
    return steps


def main(work: Path, lengths: list[float], before: bool) -> None:
    replies = reply_channel()
    import torch

    from benchmark import scoring
    from stages import audio, models
    from stages.artifacts import SAMPLE_RATE
    from stages.diarize import diarize, to_record
    from stages.settings import Settings

    pipeline = models.diarization(Settings.from_env(device="cpu")).model
    if before:
        from benchmark.diarization_quality import set_before

        set_before(pipeline)
    loaded_mb = memory.rss_mb()
    speakers: dict[str, int | None] = {"num_speakers": None, "min_speakers": None,
                                       "max_speakers": None}

    def progress(fraction: float, detail: str | None) -> None:
        pass

    def file_of(path: Path) -> dict[str, Any]:
        samples = audio.load(path)
        return {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": SAMPLE_RATE}

    def once(seconds: float) -> Split:
        file = file_of(repeated(sample_wav(), seconds, work / f"sample-{seconds:.0f}s.wav"))
        clock = _Clock()
        memory.reset_peak()
        with _timed(pipeline, clock), torch.inference_mode():
            started = time.perf_counter()
            output, _ = diarize(pipeline, file, speakers, progress)
            elapsed = time.perf_counter() - started
        return Split(seconds, elapsed, scoring.der_of_turns(to_record(output).turns, seconds),
                     split(clock, elapsed), memory.peak_rss_mb() - loaded_mb)

    # The warm-up: the first call pays one-off costs.
    with torch.inference_mode():
        output, _ = diarize(pipeline, file_of(sample_wav()), speakers, progress)
    der = scoring.der_of_turns(to_record(output).turns)
    splits = [once(seconds) for seconds in lengths]
    replies.write(msgspec.json.encode(SplitRun(der, splits)).decode())
    replies.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    before = args[:1] == ["--before"]
    args = args[1:] if before else args
    main(Path(args[0]), [float(s) for s in args[1:]], before)
