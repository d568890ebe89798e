"""Jobs flowing through the runtime with in-process workers of the test stages."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.store import JobStore
from pipeline.types import StageStatus
from stages.table import JobStatus
from stages.types import Result
from tests.support.stages import Behaviour, Script, finished, runs, submit
from tests.support.workers import running_workers, until


async def test_job_flows_through_three_stages(store: JobStore) -> None:
    job_id = await submit(store, Script(text="three stages"))
    async with running_workers(store):
        await until(lambda: finished(store, job_id), what="job to finish")
    job = await store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.COMPLETED and job.progress == 100.0
    assert [job.stages[s].status for s in job.plan] == [StageStatus.DONE] * 3
    for record in job.stages.values():
        assert record.started_at and record.finished_at and record.worker
    assert job.result_path
    result = msgspec.json.decode(open(job.result_path, "rb").read(), type=Result)
    assert result.segments[0].text == "three stages"
    assert [line.split()[1:3] for line in runs(store.files(job_id).root)] == [
        ["decode", "start"], ["decode", "end"], ["diarize", "start"], ["diarize", "end"],
        ["transcribe", "start"], ["transcribe", "end"]]


async def test_diarization_off_skips_the_diarize_stage(store: JobStore) -> None:
    job_id = await submit(store, diarize=False)
    async with running_workers(store):
        await until(lambda: finished(store, job_id))
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.stages["diarize"].status is StageStatus.SKIPPED
    assert not any("diarize" in line for line in runs(store.files(job_id).root))


async def test_permanent_error_fails_the_job_with_its_reason(store: JobStore) -> None:
    bad = await submit(store, Script(stages={"diarize": Behaviour(fail="permanent")}))
    good = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, bad))
        await until(lambda: finished(store, good))
    job = await store.get(bad)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == "diarize: the input is not usable"
    assert job.stages["diarize"].status is StageStatus.FAILED
    assert (await store.get(good)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    # A permanent failure is the input's fault: one attempt, no dead letter.
    assert await store.redis.xlen(store.keys.dead_letters("diarize")) == 0


@pytest.mark.parametrize("fail", ["error", "transient"])
async def test_poison_job_is_dead_lettered_and_others_flow(store: JobStore, fail: str) -> None:
    poison = await submit(store, Script(stages={"decode": Behaviour(fail=fail)}))
    others = [await submit(store) for _ in range(3)]
    async with running_workers(store):
        await until(lambda: finished(store, poison), timeout=60)
        for job_id in others:
            await until(lambda: finished(store, job_id))
    job = await store.get(poison)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None and "gave up after 3 attempts" in job.error
    assert ("unexpected bug" if fail == "error" else "device busy") in job.error
    dead = await store.redis.xrange(store.keys.dead_letters("decode"))
    assert [fields["job_id"] for _, fields in dead] == [poison]
    assert int(dead[0][1]["deliveries"]) == 4
    starts = [line for line in runs(store.files(poison).root) if "start" in line]
    assert len(starts) == 3
    for job_id in others:
        assert (await store.get(job_id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    info = await store.redis.xinfo_groups(store.keys.stream("decode"))
    assert info[0]["pending"] == 0
