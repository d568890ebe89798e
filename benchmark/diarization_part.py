"""Part ``diarization``: RTF, DER and memory of the diarization speed knobs on pyannote's
sample, whether the stage's setting is the fastest one that keeps DER, where the stage's
time goes at longer lengths (benchmark.diarization_split), and with ``--full`` its
figures on voices it was not tuned on (benchmark.diarization_quality), each beside the
setting before issue 28."""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

import msgspec

from benchmark.diarization_child import Knobs, Trial
from benchmark.diarization_quality import GUARDS, QualityRun
from benchmark.diarization_split import STEPS, SplitRun
from benchmark.evalset import HALVES
from benchmark.procs import Processes, child_env
from benchmark.report import PartResult
from tests.support.audio import duration, sample_wav

DER_SLACK = 0.01
ROUNDS = 3
FULL_ROUNDS = 5
# A setting counts as faster than the stage's only by more than this factor: two runs of
# one setting in the same round still differ by a few percent on a shared machine.
SAME_SPEED = 1.05
SPLIT_SECONDS = (60.0, 300.0)
FULL_SPLIT_SECONDS = (60.0, 300.0, 1800.0)
#: Issue 28's speed target: the stage's RTF from 5 min of audio on.
TARGET_RTF = 0.08
TARGET_FROM_SECONDS = 300.0
#: Issue 28's quality targets on the evaluation set's report half.
REPORT = "report"
COUNT_EXACT = 0.9
DER_LOWER = 0.3
STAGE = "stage setting"
BEFORE = "before issue 28 (torch, threshold 0.70, min cluster 12, every frame embedded)"
#: The split's configurations: name, the child's options, its environment.
CONFIGURATIONS: tuple[tuple[str, list[str], dict[str, str]], ...] = (
    (STAGE, [], {}),
    ("torch", [], {"DIARIZATION_ONNX": "false"}),
    (BEFORE, ["--before"], {"DIARIZATION_ONNX": "false"}),
)


def _describe(knobs: Knobs, base: Knobs) -> str:
    if knobs == base:
        return (f"stage setting (embedding batch {base.embedding_batch_size}, segmentation "
                f"batch {base.segmentation_batch_size}, step {base.segmentation_step:g}, "
                f"{base.threads} threads)")
    changed = [f"{name.replace('_', ' ')} {getattr(knobs, name):g}"
               for name in Knobs.__struct_fields__
               if getattr(knobs, name) != getattr(base, name)]
    return ", ".join(changed)


def speedup(stage: Trial, trial: Trial) -> float:
    """How many times faster ``trial`` ran than the stage's setting: the median over rounds
    of the two's times in the same round. A round's runs are close in time, so the machine's
    drift, larger than a knob's effect, cancels in each ratio; comparing each setting's best
    round would set runs from different rounds side by side."""
    return statistics.median(s / t for s, t in zip(stage.seconds, trial.seconds, strict=True))


def fastest_keeping_der(trials: list[Trial]) -> tuple[Trial, float]:
    """The trial fastest against the stage's setting (``trials[0]``) whose DER is within
    DER_SLACK of the best, and its speed-up."""
    best_der = min(t.der for t in trials)
    keeping = [t for t in trials if t.der <= best_der + DER_SLACK]
    fastest = max(keeping, key=lambda t: speedup(trials[0], t))
    return fastest, speedup(trials[0], fastest)


def _child(procs: Processes, name: str, args: list[str], log: str | None = None,
           **env: str) -> bytes:
    """The reply line of a child process ``python -m benchmark.NAME ARGS`` (its log in
    LOG.log, NAME.log by default)."""
    log = log or name
    child = procs.spawn(log, ["-m", f"benchmark.{name}", *args],
                        child_env(DEVICE="cpu", LOG_LEVEL="WARNING", **env),
                        stdout=subprocess.PIPE)
    out, _ = child.communicate()
    procs.stop(child)
    if child.returncode != 0:
        raise RuntimeError(f"the {name} process failed; see {log}.log")
    line: bytes = out.splitlines()[-1]
    return line


def _log(child: str, configuration: str) -> str:
    """The log's name of ``child`` run for one of CONFIGURATIONS."""
    return f"{child}-{configuration.split(' (')[0].replace(' ', '-')}"


def _label(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def run(work: Path, procs: Processes, full: bool) -> PartResult:
    part = PartResult(part="diarization")
    rounds = FULL_ROUNDS if full else ROUNDS
    trials = msgspec.json.decode(_child(procs, "diarization_child", [str(rounds)]),
                                 type=list[Trial])
    audio_seconds = duration(sample_wav())
    base = trials[0].knobs
    for trial in trials:
        name = _describe(trial.knobs, base)
        part.add(f"{name}: RTF", min(trial.seconds) / audio_seconds)
        part.add(f"{name}: DER", trial.der)
        part.add(f"{name}: peak RSS above the loaded pipeline", trial.peak_rss_mb, "MB")
        if trial is not trials[0]:
            part.add(f"{name}: speed-up over the stage setting", speedup(trials[0], trial), "x")
    fastest, gain = fastest_keeping_der(trials)
    part.add(f"fastest within {DER_SLACK} DER of the best: {_describe(fastest.knobs, base)}; "
             "speed-up over the stage setting", gain, "x", f"<= {SAME_SPEED:g}",
             gain <= SAME_SPEED)
    spread = max(trials[0].seconds) / min(trials[0].seconds)
    part.add("stage setting: slowest / fastest of its rounds", spread, "x")
    part.notes.append(
        f"pyannote's sample.wav ({audio_seconds:.0f} s), DER collar 0 with overlap scored "
        f"against sample.rttm; one knob changed at a time from the stage's setting; "
        f"{rounds} rounds ({FULL_ROUNDS} with --full, {ROUNDS} without) after an untimed "
        "warm-up, each running every setting once, starting one setting later than the "
        "round before; RTF from each setting's fastest round, speed-up = median over rounds "
        "of the stage setting's time / the setting's in the same round; the stage's "
        f"setting should be the fastest that keeps DER, to within {SAME_SPEED:g} times")
    lengths = FULL_SPLIT_SECONDS if full else SPLIT_SECONDS
    runs: dict[str, SplitRun] = {}
    for runtime, args, env in CONFIGURATIONS:
        runs[runtime] = result = msgspec.json.decode(
            _child(procs, "diarization_split", [*args, str(work / "audio"), *map(str, lengths)],
                   log=_log("diarization_split", runtime), **env),
            type=SplitRun)
        part.add(f"{runtime}: DER on the sample", result.der)
        for one in result.splits:
            label = f"{runtime} {_label(one.audio_seconds)}"
            rtf = one.seconds / one.audio_seconds
            if runtime == STAGE and one.audio_seconds >= TARGET_FROM_SECONDS:
                part.add(f"{label}: RTF", rtf, "", f"<= {TARGET_RTF:g}", rtf <= TARGET_RTF)
            else:
                part.add(f"{label}: RTF", rtf)
            part.add(f"{label}: DER", one.der)
            for step in STEPS:
                part.add(f"{label}: {step}", one.steps[step] / one.seconds * 100, "%")
            part.add(f"{label}: peak RSS above the loaded pipeline", one.peak_rss_mb, "MB")
    for now, before in zip(runs[STAGE].splits, runs[BEFORE].splits, strict=True):
        part.add(f"{_label(now.audio_seconds)}: stage setting's speed-up over the setting "
                 "before issue 28", before.seconds / now.seconds, "x")
    part.notes.append(
        "time split: one run per length (pyannote's sample repeated, DER against its "
        "reference repeated alike) after an untimed warm-up on the sample; torch = "
        "DIARIZATION_ONNX=false; before issue 28 = torch, clustering threshold 0.70 and "
        "smallest cluster 12, every active frame embedded (benchmark/diarization_split.py "
        "--before); inference = the models' forward passes (CAM++'s includes its fbank), "
        "other = the rest of pyannote's step (windows, cropping, aggregation); clustering "
        "= from the end of the embeddings to the first reconstruction; 30 min with --full "
        "only")
    if full:
        quality(part, procs)
    return part


def quality(part: PartResult, procs: Processes) -> None:
    """The evaluation set's figures (benchmark.diarization_quality) of the stage's setting
    and of the setting before issue 28, with issue 28's targets on the report half."""
    runs = {name: msgspec.json.decode(
        _child(procs, "diarization_quality", ["--json", *args],
               log=_log("diarization_quality", name), **env),
        type=QualityRun) for name, args, env in CONFIGURATIONS if name in (STAGE, BEFORE)}
    add_quality(part, runs)


def add_quality(part: PartResult, runs: dict[str, QualityRun]) -> None:
    """``runs``' figures, STAGE's and BEFORE's, into ``part``."""
    for half in (*HALVES, *GUARDS):
        for name, run in runs.items():
            figures, label = run.halves[half], f"evaluation set {half}, {name}"
            target = name == STAGE and half == REPORT
            part.add(f"{label}: speaker count exact", 100 * figures.count_exact, "%",
                     *((f">= {100 * COUNT_EXACT:g} %", figures.count_exact >= COUNT_EXACT)
                       if target else ()))
            lower = runs[BEFORE].halves[half].der * (1 - DER_LOWER)
            part.add(f"{label}: DER", figures.der, "",
                     *((f"<= {lower:.3f} ({100 * DER_LOWER:g} % below before issue 28)",
                        figures.der <= lower) if target else ()))
            part.add(f"{label}: with num_speakers, count exact",
                     100 * figures.forced_count_exact, "%")
            part.add(f"{label}: with num_speakers, DER", figures.forced_der)
    for kind, share in runs[STAGE].words.items():
        part.add(f"evaluation set, stage setting: words given the speaker who said them, "
                 f"{kind} diarization", 100 * share, "%")
    part.notes.append(
        "evaluation set (--full only): benchmark/evalset.py's 20 synthetic conversations of "
        "2-6 voices, halves tune and report with no voice in common (the stage's setting "
        "was chosen on tune), the guards pyannote's sample and the tests' conversation; "
        "before issue 28 = its embeddings computed then as well (python -m "
        "benchmark.diarization_quality --before); mean DER per file, collar 0; words: "
        "Whisper tiny.en's, against who really spoke")
