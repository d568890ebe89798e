"""Child process: one stage, alone in a fresh process, on several prepared jobs.

``python -m benchmark.stage_child STAGE JOBS_DIR WHISPER_MODEL WARMUP_ID JOB_ID...`` loads
the stage's models, runs the warm-up job untimed, then each job in turn with the peak RSS
reset before it, and prints one JSON line (:class:`Measured`). Jobs run as a worker runs
them: in a worker thread, with freed memory handed back after each. Jobs must hold what the
stage reads (the upload; audio.wav; diarization.json), written by the previous stage.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from benchmark.channel import reply_channel
from pipeline import allocator
from pipeline.stage import load_stage
from stages.settings import Settings
from stages.table import TABLE
from tests.support import memory
from tests.support.jobs import context


class Run(msgspec.Struct):
    seconds: float
    peak_rss_mb: float  # during this job only (the peak is reset before it)


class Measured(msgspec.Struct):
    rss_after_load_mb: float
    rss_after_warmup_mb: float
    peak_reset: bool  # False: peaks are since process start (kernel refused the reset)
    runs: list[Run]


def main(stage_name: str, jobs_dir: Path, whisper_model: str, warmup: str,
         job_ids: list[str]) -> None:
    replies = reply_channel()
    settings = Settings.from_env(jobs_dir=str(jobs_dir), whisper_model=whisper_model)
    spec = TABLE.spec(stage_name)
    stage = load_stage(spec)
    # As pipeline.runtime runs a stage: in a worker thread (which has its own glibc arena and
    # OpenMP thread pool), a model stage handing freed memory back after every job.
    with ThreadPoolExecutor(max_workers=1) as worker:

        def process(job_id: str) -> None:
            worker.submit(stage.process, context(jobs_dir, job_id, settings)).result()
            if spec.gives_back_memory:
                allocator.give_back()

        worker.submit(stage.setup, settings).result()
        after_load = memory.rss_mb()
        process(warmup)
        after_warmup = memory.rss_mb()
        runs, reset = [], True
        for job_id in job_ids:
            reset = memory.reset_peak() and reset
            started = time.perf_counter()
            process(job_id)
            runs.append(Run(time.perf_counter() - started, memory.peak_rss_mb()))
    replies.write(msgspec.json.encode(Measured(after_load, after_warmup, reset, runs)).decode())
    replies.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:])
