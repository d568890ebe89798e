"""Part ``stages``: real-time factor and peak RSS of each stage, each in its own fresh
process (benchmark.stage_child), on the same jobs at several audio lengths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

from benchmark.procs import Processes, child_env
from benchmark.report import PartResult
from benchmark.stage_child import Measured
from stages.table import STAGES
from tests.support.audio import repeated, sample_wav
from tests.support.jobs import new_job

DEFAULT_SECONDS = (30.0, 60.0, 300.0)
FULL_SECONDS = (30.0, 60.0, 300.0, 1800.0)
# Growth is judged from the shortest audio that fills every stage's batches: transcribe
# decodes two 30 s chunks per batch on the CPU, so 30 s of audio fills half of one. The
# step from 30 s is still shown, without a target: it does not grow with the length.
GROWTH_FROM_SECONDS = 60.0
WARMUP_SECONDS = 10.0
# The decoded audio itself, per minute: 16 kHz mono float32 samples, as the models compute
# on them. The decode stage writes 16-bit samples, which the model stages read mapped from
# its file, releasing what they read as they go.
AUDIO_MB_PER_MIN = 16_000 * 60 * 4 / 1e6
# Growth is judged only when the longest audio is at least this long (--full). Up to 5 min
# (the default run), the allowance comes to 15 MB, less than one peak's spread between
# runs (20-40 MB here, from freed memory the allocator keeps or returns).
JUDGED_FROM_LONGEST_SECONDS = 1800.0


def run(work: Path, procs: Processes, whisper_model: str, full: bool) -> PartResult:
    part = PartResult(part="stages")
    lengths = FULL_SECONDS if full else DEFAULT_SECONDS
    jobs_dir = work / "jobs-stages"
    warmup = new_job(jobs_dir, repeated(sample_wav(), WARMUP_SECONDS,
                                        work / "audio" / "warmup.wav"))
    jobs = [new_job(jobs_dir, repeated(sample_wav(), s, work / "audio" / f"sample-{s:.0f}s.wav"))
            for s in lengths]
    for stage in STAGES:
        # Stages run in pipeline order: each one's outputs are the next one's inputs.
        child = procs.spawn(f"stage-{stage}", ["-m", "benchmark.stage_child", stage,
                                               str(jobs_dir), whisper_model, warmup, *jobs],
                            child_env(DEVICE="cpu", LOG_LEVEL="WARNING"),
                            stdout=subprocess.PIPE)
        out, _ = child.communicate()
        procs.stop(child)
        if child.returncode != 0:
            raise RuntimeError(f"the {stage} stage process failed; see stage-{stage}.log")
        measured = msgspec.json.decode(out.splitlines()[-1], type=Measured)
        part.add(f"{stage}: RSS after model load", measured.rss_after_load_mb, "MB")
        for seconds, one in zip(lengths, measured.runs, strict=True):
            label = _label(seconds)
            part.add(f"{stage} {label}: RTF", one.seconds / seconds)
            part.add(f"{stage} {label}: peak RSS", one.peak_rss_mb, "MB")
            part.add(f"{stage} {label}: peak RSS - RSS after load",
                     one.peak_rss_mb - measured.rss_after_load_mb, "MB")
        peaks = {seconds: one.peak_rss_mb
                 for seconds, one in zip(lengths, measured.runs, strict=True)}
        part.add(f"{stage}: peak RSS growth per audio minute from {_label(lengths[0])}",
                 growth_per_minute(peaks, lengths[0]), "MB/min")
        growth = growth_per_minute(peaks, GROWTH_FROM_SECONDS)
        part.add(f"{stage}: peak RSS growth per audio minute from "
                 f"{_label(GROWTH_FROM_SECONDS)}", growth, "MB/min",
                 *growth_verdict(growth, lengths[-1]))
        if not measured.peak_reset:
            part.notes.append(f"{stage}: the kernel refused to reset the peak RSS, so peaks "
                              "are since process start")
    part.notes.append(
        f"growth from X = (peak RSS at {_label(lengths[-1])} - at X) / minutes between them, "
        f"judged from {_label(GROWTH_FROM_SECONDS)}, the shortest audio that fills every "
        "stage's batches (30 s fills half of one of transcribe's); allowance = the decoded "
        f"audio itself, {AUDIO_MB_PER_MIN:.2f} MB/min (16 kHz mono float32; the stages read "
        "the decoded 16-bit file mapped, releasing what they read), judged only when the "
        f"longest audio is {_label(JUDGED_FROM_LONGEST_SECONDS)} (--full): from 1 to 5 min "
        "the allowance comes to less than one peak's spread between runs. Peaks are reset "
        f"before each job, after an untimed {WARMUP_SECONDS:.0f} s warm-up job; RTF = "
        "processing seconds / audio seconds, one process per stage, running its jobs as a "
        "worker does (in a worker thread, handing freed memory back after each)")
    if not full:
        part.notes.append("30 min of audio runs with --full only")
    return part


def growth_per_minute(peaks: dict[float, float], start: float) -> float:
    """MB of peak RSS per audio minute, from ``start`` to the longest audio."""
    longest = max(peaks)
    return (peaks[longest] - peaks[start]) / ((longest - start) / 60)


def growth_verdict(growth: float, longest: float) -> tuple[str, bool | None]:
    """The target of a growth figure, and whether it is met (None: not judged, the audio
    was too short for the allowance to stand out of the noise)."""
    target = f"<= {AUDIO_MB_PER_MIN:.2f} MB/min"
    if longest < JUDGED_FROM_LONGEST_SECONDS:
        return f"{target} (judged with {_label(JUDGED_FROM_LONGEST_SECONDS)}: --full)", None
    return target, growth <= AUDIO_MB_PER_MIN


def _label(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"
