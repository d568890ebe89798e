"""Part ``diarization``: RTF and DER of the diarization speed knobs on pyannote's sample."""

from __future__ import annotations

import subprocess

import msgspec

from benchmark.audio import duration, sample_wav
from benchmark.diarization_child import Knobs, Trial
from benchmark.procs import Processes, child_env
from benchmark.report import PartResult

DER_SLACK = 0.01


def _describe(knobs: Knobs, base: Knobs) -> str:
    if knobs == base:
        return (f"stage setting (embedding batch {base.embedding_batch_size}, segmentation "
                f"batch {base.segmentation_batch_size}, step {base.segmentation_step:g}, "
                f"{base.threads} threads)")
    changed = [f"{name.replace('_', ' ')} {getattr(knobs, name):g}"
               for name in Knobs.__struct_fields__
               if getattr(knobs, name) != getattr(base, name)]
    return ", ".join(changed)


def run(procs: Processes, full: bool) -> PartResult:
    part = PartResult(part="diarization")
    repeats = 3 if full else 1
    child = procs.spawn("diarization", ["-m", "benchmark.diarization_child", str(repeats)],
                        child_env(DEVICE="cpu", LOG_LEVEL="WARNING"), stdout=subprocess.PIPE)
    out, _ = child.communicate()
    procs.stop(child)
    if child.returncode != 0:
        raise RuntimeError("the diarization process failed; see diarization.log")
    trials = msgspec.json.decode(out.splitlines()[-1], type=list[Trial])
    audio_seconds = duration(sample_wav())
    base = trials[0].knobs
    for trial in trials:
        name = _describe(trial.knobs, base)
        part.add(f"{name}: RTF", trial.seconds / audio_seconds)
        part.add(f"{name}: DER", trial.der)
    best_der = min(t.der for t in trials)
    good = [t for t in trials if t.der <= best_der + DER_SLACK]
    fastest = min(good, key=lambda t: t.seconds)
    speedup = trials[0].seconds / fastest.seconds
    part.add(f"fastest within {DER_SLACK} DER of the best: {_describe(fastest.knobs, base)}; "
             "speed-up over the stage setting", speedup, "x")
    part.notes.append(
        f"pyannote's sample.wav ({audio_seconds:.0f} s), DER collar 0 with overlap scored "
        f"against sample.rttm; one knob changed at a time from the stage's setting; "
        f"{'best of 3 runs' if full else 'one run each (best of 3 with --full)'} after an "
        "untimed warm-up")
    return part
