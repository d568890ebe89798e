"""Child process: the three stages' ``process()`` called directly, in this one process.

``python -m benchmark.direct JOBS_DIR WHISPER_MODEL`` loads the models, then answers
requests on stdin, one JSON line each (:class:`Request`), with a JSON line on stdout
(:class:`Reply`). Kept alive between requests so that the direct and the pipeline runs of
the same file can be interleaved, and the models are loaded and warmed only once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgspec

from benchmark.channel import reply_channel
from stages.settings import Settings
from tests.support.jobs import context, new_job


class Request(msgspec.Struct):
    files: list[str]


class Reply(msgspec.Struct):
    job_ids: list[str]
    seconds: list[float]  # per file: copy of the upload + the three stages
    total_seconds: float  # the whole sequential loop


def main(jobs_dir: Path, whisper_model: str) -> None:
    replies = reply_channel()
    from stages.decode import DecodeStage
    from stages.diarize import DiarizeStage
    from stages.transcribe import TranscribeStage

    settings = Settings.from_env(jobs_dir=str(jobs_dir), whisper_model=whisper_model)
    stages = [DecodeStage(), DiarizeStage(), TranscribeStage()]
    for stage in stages:
        stage.setup(settings)
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        request = msgspec.json.decode(line, type=Request)
        job_ids, seconds = [], []
        loop_started = time.perf_counter()
        for name in request.files:
            started = time.perf_counter()
            job_id = new_job(jobs_dir, Path(name))
            ctx = context(jobs_dir, job_id, settings)
            for stage in stages:
                stage.process(ctx)
            seconds.append(time.perf_counter() - started)
            job_ids.append(job_id)
        reply = Reply(job_ids, seconds, time.perf_counter() - loop_started)
        replies.write(msgspec.json.encode(reply).decode() + "\n")
        replies.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
