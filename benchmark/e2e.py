"""Parts ``overhead``, ``throughput`` and ``accuracy``: the service (HTTP + three worker
processes + Redis) against the three stages called directly in one process.

Both sides hold the same models, loaded and warmed (one untimed job each) before any
timing, and run the same files, interleaved (direct, then pipeline, per file), so slow
phases of a noisy machine hit both alike.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from benchmark import scoring
from benchmark.direct import Reply, Request
from benchmark.procs import Processes, child_env
from benchmark.report import PartResult
from benchmark.service import Service, service
from stages.artifacts import Files
from tests.support.audio import duration, repeated, sample_wav

OVERHEAD_TARGET = 1.10
THROUGHPUT_TARGET = 1.0


@dataclass(frozen=True)
class Sizes:
    overhead_seconds: tuple[float, ...]
    throughput_jobs: int


DEFAULT = Sizes(overhead_seconds=(30.0, 120.0), throughput_jobs=4)
FULL = Sizes(overhead_seconds=(30.0, 300.0), throughput_jobs=20)
#: The diarize worker's settings in the throughput part's second, tuned service (--full).
TUNED_DIARIZE = {"CPU_THREADS": "1"}


class Direct:
    """The direct-call child (benchmark.direct): models loaded once, requests on stdin."""

    def __init__(self, procs: Processes, jobs_dir: Path, whisper_model: str) -> None:
        self.jobs_dir = jobs_dir
        self.child = procs.spawn("direct", ["-m", "benchmark.direct", str(jobs_dir),
                                            whisper_model],
                                 child_env(DEVICE="cpu", LOG_LEVEL="WARNING"),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._line()  # "ready": the models are loaded

    def _line(self) -> bytes:
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError("the direct-call process died; see its log")
        return line

    def send(self, files: list[Path]) -> None:
        assert self.child.stdin is not None
        self.child.stdin.write(msgspec.json.encode(Request([str(f) for f in files])) + b"\n")
        self.child.stdin.flush()

    def receive(self) -> Reply:
        return msgspec.json.decode(self._line(), type=Reply)

    def run(self, files: list[Path]) -> Reply:
        self.send(files)
        return self.receive()


def _result_path(jobs_dir: Path, job_id: str) -> Path:
    return Files.of(jobs_dir, job_id).result(1)


def _diarization_path(jobs_dir: Path, job_id: str) -> Path:
    return Files.of(jobs_dir, job_id).diarization


def run(parts: list[str], work: Path, procs: Processes, redis_url: str, whisper_model: str,
        full: bool) -> list[PartResult]:
    sizes = FULL if full else DEFAULT
    audio = {s: repeated(sample_wav(), s, work / "audio" / f"sample-{s:.0f}s.wav")
             for s in sizes.overhead_seconds}
    sample = audio[30.0]
    results: dict[str, PartResult] = {}
    pipeline_jobs = work / "jobs-pipeline"
    direct_jobs = work / "jobs-direct"
    direct_jobs.mkdir(parents=True, exist_ok=True)
    direct = Direct(procs, direct_jobs, whisper_model)
    with service(procs, redis_url, pipeline_jobs, whisper_model,
                 MAX_QUEUED_JOBS="100000") as svc:
        # Warm-ups run at the same time: nothing is timed yet, and it saves a minute.
        direct.send([sample])
        svc.run(sample)
        direct.receive()
        if "overhead" in parts or "accuracy" in parts:
            overhead = PartResult(part="overhead")
            first: tuple[str, str] | None = None
            lengths = sizes.overhead_seconds if "overhead" in parts else (30.0,)
            for seconds in lengths:
                reply = direct.run([audio[seconds]])
                job_id, took = svc.run(audio[seconds])
                first = first or (reply.job_ids[0], job_id)
                label = f"{duration(audio[seconds]):.0f} s file"
                overhead.add(f"direct, {label}", reply.seconds[0], "s")
                overhead.add(f"pipeline, {label}", took, "s")
                ratio = took / reply.seconds[0]
                overhead.add(f"pipeline / direct, {label}", ratio, "",
                             f"<= {OVERHEAD_TARGET:.2f}", ratio <= OVERHEAD_TARGET)
            overhead.notes.append(
                "pipeline: from the start of POST /jobs until GET /jobs/{id}?wait= reports "
                "completed; direct: copy of the upload + decode, diarize, transcribe "
                "process() in one process. Warm on both sides (one untimed job first).")
            if not full:
                overhead.notes.append("the 5 min file runs with --full (it alone takes "
                                      "~7 min on 2 cores); the default uses 2 min")
            if "overhead" in parts:
                results["overhead"] = overhead
            if "accuracy" in parts and first is not None:
                results["accuracy"] = _accuracy(direct_jobs, pipeline_jobs, *first)
        if "throughput" in parts:
            results["throughput"], direct_rate = _throughput(svc, direct, sample,
                                                             sizes.throughput_jobs, full)
    if "throughput" in parts and full:
        with service(procs, redis_url, work / "jobs-tuned", whisper_model,
                     worker_env={"diarize": TUNED_DIARIZE}, MAX_QUEUED_JOBS="100000") as svc:
            svc.run(sample)  # warm-up
            _tuned_throughput(results["throughput"], svc, sample, sizes.throughput_jobs,
                              direct_rate)
    procs.stop(direct.child)
    return [results[p] for p in parts if p in results]


def _throughput(svc: Service, direct: Direct, sample: Path, jobs: int,
                full: bool) -> tuple[PartResult, float]:
    """The part, and the direct loop's jobs per minute."""
    part = PartResult(part="throughput")
    reply = direct.run([sample] * jobs)
    direct_rate = 60 * jobs / reply.total_seconds
    part.add(f"direct sequential loop, {jobs} x 30 s", direct_rate, "jobs/min")
    pipeline_rate = _queued_rate(svc, sample, jobs)
    part.add(f"pipeline, 1 worker per stage, {jobs} x 30 s queued", pipeline_rate, "jobs/min")
    ratio = pipeline_rate / direct_rate
    part.add("pipeline / direct jobs per minute", ratio, "", f">= {THROUGHPUT_TARGET:.1f}",
             ratio >= THROUGHPUT_TARGET)
    if not full:
        part.notes.append(f"{jobs} jobs in the default suite (20 take ~15 min here); "
                          "--full runs 20, and the same jobs with CPU_THREADS=1 on diarize")
    return part, direct_rate


def _tuned_throughput(part: PartResult, svc: Service, sample: Path, jobs: int,
                      direct_rate: float) -> None:
    """The same queued jobs on a service whose diarize worker computes on one thread
    (CPU_THREADS=1), as advised for stages that share a machine's cores."""
    rate = _queued_rate(svc, sample, jobs)
    part.add(f"pipeline, CPU_THREADS=1 on diarize, {jobs} x 30 s queued", rate, "jobs/min")
    part.add("pipeline (CPU_THREADS=1 on diarize) / direct", rate / direct_rate, "",
             f">= {THROUGHPUT_TARGET:.1f}", rate / direct_rate >= THROUGHPUT_TARGET)
    part.notes.append("CPU_THREADS=1 on diarize: a second service, started after the "
                      "first stopped, against the same direct loop")


def _queued_rate(svc: Service, sample: Path, jobs: int) -> float:
    """Jobs per minute, from queueing ``jobs`` copies of ``sample`` to the last completed."""
    started = time.perf_counter()
    ids = [svc.submit(sample) for _ in range(jobs)]
    for job_id in ids:
        svc.wait(job_id)
    return 60 * jobs / (time.perf_counter() - started)


def _accuracy(direct_jobs: Path, pipeline_jobs: Path, direct_id: str,
              pipeline_id: str) -> PartResult:
    part = PartResult(part="accuracy")
    scores = {}
    for side, jobs_dir, job_id in (("direct", direct_jobs, direct_id),
                                   ("pipeline", pipeline_jobs, pipeline_id)):
        scores[side] = (scoring.wer(_result_path(jobs_dir, job_id)),
                        scoring.der(_diarization_path(jobs_dir, job_id)))
        part.add(f"WER, {side}, 30 s sample", scores[side][0])
        part.add(f"DER, {side}, 30 s sample", scores[side][1])
    for index, metric in enumerate(("WER", "DER")):
        gap = abs(scores["pipeline"][index] - scores["direct"][index])
        part.add(f"{metric} pipeline - direct", gap, "", "= 0", gap < 1e-9)
    part.notes.append("WER vs sample.stm (EnglishTextNormalizer + jiwer), DER vs sample.rttm "
                      "(collar 0, overlap scored); outputs of the overhead part's 30 s jobs")
    return part
