"""Jobs flowing through the runtime with in-process workers of the test stages."""

from __future__ import annotations

import io

import msgspec
import pytest

from pipeline.errors import PermanentError, TransientError
from pipeline.runtime import is_permanent
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


def test_what_a_retry_cannot_fix_is_permanent() -> None:
    for exc in (PermanentError("bad"), ValueError("x"), KeyError("k"), TypeError("t"),
                IndexError("i"), ZeroDivisionError(), AttributeError("a")):
        assert is_permanent(exc), exc
    for exc in (TransientError("busy"), ConnectionRefusedError(), TimeoutError(), OSError(),
                MemoryError(), RuntimeError("CUDA out of memory"), Exception(),
                io.UnsupportedOperation()):  # both an OSError and a ValueError
        assert not is_permanent(exc), exc


async def test_a_bug_fails_its_job_at_once_and_others_flow(store: JobStore) -> None:
    bad = await submit(store, Script(stages={"diarize": Behaviour(fail="bug")}))
    good = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, bad))
        await until(lambda: finished(store, good))
    job = await store.get(bad)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == "diarize failed: KeyError: 'diarize: no such option'"
    assert len([line for line in runs(store.files(bad).root) if "start" in line]) == 2
    assert await store.redis.xlen(store.keys.dead_letters("diarize")) == 0


async def test_a_failed_attempt_waits_without_holding_the_worker(store: JobStore) -> None:
    # One decode worker: while the flaky job waits for its retries (1 + 2 + 4 s), the jobs
    # behind it pass.
    flaky = await submit(store, Script(stages={"decode": Behaviour(fail="transient")}))
    others = [await submit(store) for _ in range(3)]
    async with running_workers(store):
        for job_id in others:
            await until(lambda: finished(store, job_id))
        job = await store.get(flaky)
        assert job is not None and not job.status.terminal
        assert job.stages["decode"].error == "decode: device busy"
        assert await store.waiting_retries("decode") == 1
        await until(lambda: finished(store, flaky), timeout=60)
    job = await store.get(flaky)
    assert job is not None and "gave up after 3 attempts" in (job.error or "")
    assert await store.waiting_retries("decode") == 0
    assert (await store.redis.xinfo_groups(store.keys.stream("decode")))[0]["pending"] == 0
