"""A real job through three real worker processes on the offline default models."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from pipeline.store import JobStore, new_job_id
from pipeline.types import StageStatus
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import TABLE, JobStatus
from stages.types import Result
from tests.support.audio import sample_wav
from tests.support.stages import finished
from tests.support.workers import spawn_worker, until

pytestmark = [pytest.mark.models, pytest.mark.system]


async def test_sample_through_three_worker_processes(store: JobStore, settings: Settings,
                                                     tmp_path: Path) -> None:
    workers = [spawn_worker(settings, stage, f"{stage}-e2e", TABLE.spec(stage).stage,
                            log=tmp_path / f"{stage}.log", WHISPER_MODEL="base")
               for stage in ("decode", "diarize", "transcribe")]
    try:
        job_id = new_job_id()
        store.files(job_id).create()
        shutil.copy(sample_wav(), store.files(job_id).input)
        await store.create(job_id, JobOptions(), input_name="sample.wav")
        await until(lambda: finished(store, job_id), timeout=600, what="the job to finish")
    finally:
        for worker in workers:
            worker.terminate()
        codes = [worker.wait(timeout=60) for worker in workers]
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job and job.error
    assert codes == [0, 0, 0]
    assert {job.stages[s].worker for s in job.plan} == {
        "decode-e2e", "diarize-e2e", "transcribe-e2e"}
    assert all(job.stages[s].status is StageStatus.DONE for s in job.plan)
    result = msgspec.json.decode(Path(job.result_path or "").read_bytes(), type=Result)
    assert result.language == "en"
    assert abs(result.duration - 30.0) < 0.5
    assert len(result.speakers) == 2
    words = [w for s in result.segments for w in s.words]
    assert len(words) > 50 and all(w.speaker in result.speakers for w in words)
