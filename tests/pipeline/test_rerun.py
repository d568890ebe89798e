"""Reruns of finished jobs from any stage, and lanes that keep replays off live streams."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from pipeline.store import JobStore, Outcome
from pipeline.types import Job
from stages.table import STAGES, JobStatus
from tests.support.stages import Behaviour, Script, finished, stages_run, submit
from tests.support.workers import running_workers, until


async def completed(store: JobStore, job_id: str) -> Job:
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job
    return job


@pytest.mark.parametrize(("from_stage", "expected"), [
    ("decode", ["decode", "diarize", "transcribe"]),
    ("diarize", ["diarize", "transcribe"]),
    ("transcribe", ["transcribe"]),
])
async def test_rerun_recomputes_from_the_given_stage(store: JobStore, from_stage: str,
                                                     expected: list[str]) -> None:
    job_id = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, job_id))
        (store.files(job_id).audio).write_text("decoded")  # what decode leaves for diarize
        (store.files(job_id).diarization).write_text("{}")
        first = await completed(store, job_id)
        assert await store.rerun(first, from_stage, {"num_speakers": 2}) is Outcome.OK
        await until(lambda: finished(store, job_id))
    job = await completed(store, job_id)
    assert job.run == 2 and job.options.num_speakers == 2
    assert stages_run(store, job_id, 2) == expected
    assert job.plan == tuple(expected)
    assert [(r.run, r.status, r.options.num_speakers) for r in job.runs] == [
        (1, JobStatus.COMPLETED, None)]
    assert job.result_path == str(store.files(job_id).result(2))
    assert store.files(job_id).result(1).exists() and store.files(job_id).result(2).exists()


async def test_rerun_is_refused_while_running_expired_or_unfit(store: JobStore) -> None:
    job_id = await submit(store, Script(stages={"decode": Behaviour(seconds=60, steps=60)}))
    job = await store.get(job_id)
    assert job is not None
    assert await store.rerun(job, "diarize") is Outcome.RUNNING
    await store.cancel(job_id)
    job = await store.get(job_id)
    assert job is not None
    assert await store.rerun(job, "diarize") is Outcome.EXPIRED  # never decoded
    with pytest.raises(ValueError, match="min_speakers"):
        await store.rerun(job, "decode", {"min_speakers": 3, "max_speakers": 2})
    no_speakers = await submit(store, diarize=False)
    await store.cancel(no_speakers)
    job = await store.get(no_speakers)
    assert job is not None
    with pytest.raises(ValueError, match="not part of this job"):
        await store.rerun(job, "diarize")


async def test_rerun_racing_a_delete_leaves_nothing_behind(store: JobStore) -> None:
    job_id = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, job_id))
        job = await completed(store, job_id)
        assert await store.rerun(job, "decode") is Outcome.OK
        assert await store.delete(job_id)
        assert await store.rerun(job, "decode") is Outcome.GONE
        other = await submit(store)
        await until(lambda: finished(store, other))
    assert not store.files(job_id).root.exists()
    assert [k async for k in store.redis.scan_iter(f"{store.keys.prefix}:job:{job_id}")] == []


async def test_a_replay_lane_is_served_only_by_its_own_workers(store: JobStore) -> None:
    job_id = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, job_id))
        job = await completed(store, job_id)
        assert await store.rerun(job, "decode", lane="replay-1") is Outcome.OK
        live = await submit(store)
        await until(lambda: finished(store, live))
        assert (await store.get(job_id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
    async with running_workers(store, lane="replay-1"):
        await until(lambda: finished(store, job_id))
    job = await completed(store, job_id)
    assert job.lane == "replay-1" and job.run == 2
    assert await store.redis.xlen(store.keys.stream("transcribe", "replay-1")) == 1
    # Lane streams go once their jobs have: no lane worker may be left to trim them.
    for stage in STAGES:
        lane_ttl = await store.redis.ttl(store.keys.stream(stage, "replay-1"))
        assert 0 < lane_ttl <= store.settings.job_ttl_seconds
        assert await store.redis.ttl(store.keys.stream(stage)) == -1


async def test_result_paths_are_kept_relative_to_the_job_folder(store: JobStore,
                                                               tmp_path: Path) -> None:
    job_id = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, job_id))
        store.files(job_id).audio.write_text("decoded")  # what transcribe starts from
        store.files(job_id).diarization.write_text("{}")
        assert await store.rerun(await completed(store, job_id), "transcribe") is Outcome.OK
        await until(lambda: finished(store, job_id))
    key = store.keys.job(job_id)
    assert await store.redis.hget(key, "result_path") == "runs/2/result.json"
    [earlier] = msgspec.json.decode(await store.redis.hget(key, "runs"))
    assert earlier["result_path"] == "runs/1/result.json"
    # A gateway that mounts JOBS_DIR elsewhere finds the results under its own mount.
    mounted = tmp_path / "mounted"
    elsewhere = JobStore(store.redis, msgspec.structs.replace(
        store.settings, jobs_dir=str(mounted)), store.table)
    job = await completed(elsewhere, job_id)
    assert job.result_path == str(mounted / job_id / "runs" / "2" / "result.json")
    assert job.runs[0].result_path == str(mounted / job_id / "runs" / "1" / "result.json")
    # Jobs stored by earlier versions kept absolute paths: those are read as they are.
    await store.redis.hset(key, "result_path", "/old/jobs/x/runs/2/result.json")
    assert (await completed(elsewhere, job_id)).result_path == "/old/jobs/x/runs/2/result.json"
