"""The runtime under faults: killed workers, signals, cancelled jobs, a wiped server."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pipeline.store import JobStore
from pipeline.types import StageStatus
from stages.settings import Settings
from stages.table import JobStatus
from tests.support.stages import TEST_STAGES, Behaviour, Script, finished, runs, submit
from tests.support.workers import running_workers, spawn_worker, until

pytestmark = pytest.mark.system


def started_by(store: JobStore, job_id: str, stage: str) -> list[int]:
    """Pids of the processes that started ``stage`` of the job."""
    return [int(line.split()[3]) for line in runs(store.files(job_id).root)
            if line.split()[1:3] == [stage, "start"]]


async def entries_for(store: JobStore, stage: str, job_id: str) -> int:
    return sum(1 for _, f in await store.redis.xrange(store.keys.stream(stage))  # type: ignore[arg-type]
               if f["job_id"] == job_id)


async def test_killed_worker_job_completes_once_via_another(store: JobStore, settings: Settings,
                                                            tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(store, Script(stages={"diarize": Behaviour(wait_for=str(gate))}))
    first = spawn_worker(settings, "diarize", "diarize-a", log=tmp_path / "a.log")
    async with running_workers(store, {s: c for s, c in TEST_STAGES.items() if s != "diarize"}):
        await until(lambda: started_by(store, job_id, "diarize"), what="diarize to start")
        first.kill()  # SIGKILL mid-job: no chance to clean up
        first.wait()
        gate.touch()
        second = spawn_worker(settings, "diarize", "diarize-b", log=tmp_path / "b.log")
        try:
            await until(lambda: finished(store, job_id), timeout=60, what="job to finish")
        finally:
            second.terminate()
            assert second.wait(timeout=30) == 0
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.stages["diarize"].worker == "diarize-b"
    assert started_by(store, job_id, "diarize") == [first.pid, second.pid]
    # Exactly once: one hand-over to each later stage, nothing left pending.
    assert await entries_for(store, "transcribe", job_id) == 1
    for stage in ("decode", "diarize", "transcribe"):
        groups = await store.redis.xinfo_groups(store.keys.stream(stage))
        assert groups[0]["pending"] == 0


async def test_sigterm_finishes_the_current_job(store: JobStore, settings: Settings,
                                                tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(store, Script(stages={"decode": Behaviour(wait_for=str(gate))}))
    worker = spawn_worker(settings, "decode", "decode-a", log=tmp_path / "w.log")
    await until(lambda: started_by(store, job_id, "decode"), what="decode to start")
    worker.send_signal(signal.SIGTERM)
    await until(lambda: "stop requested" in (tmp_path / "w.log").read_text())
    assert worker.poll() is None  # still working on the job
    gate.touch()
    assert worker.wait(timeout=30) == 0
    job = await store.get(job_id)
    assert job is not None and job.stages["decode"].status is StageStatus.DONE
    assert job.stages["diarize"].status is StageStatus.QUEUED


async def test_second_sigterm_exits_at_once_and_entry_is_reclaimed(
        store: JobStore, settings: Settings, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(store, Script(stages={"decode": Behaviour(wait_for=str(gate))}))
    worker = spawn_worker(settings, "decode", "decode-a", log=tmp_path / "w.log")
    await until(lambda: started_by(store, job_id, "decode"))
    worker.send_signal(signal.SIGTERM)
    await until(lambda: "stop requested" in (tmp_path / "w.log").read_text())
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) != 0
    pending = await store.redis.xpending(store.keys.stream("decode"), store.keys.group("decode"))
    assert pending["pending"] == 1
    gate.touch()
    async with running_workers(store):
        await until(lambda: finished(store, job_id), timeout=30)
    assert (await store.get(job_id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_job_that_kills_its_worker_ends_dead_lettered(store: JobStore, settings: Settings,
                                                             tmp_path: Path) -> None:
    poison = await submit(store, Script(stages={"decode": Behaviour(fail="exit")}))
    good = await submit(store)

    async def both_finished() -> bool:
        return await finished(store, poison) and await finished(store, good)

    crashes = 0
    async with running_workers(store, {s: c for s, c in TEST_STAGES.items() if s != "decode"}):
        # A supervisor's job, done here by hand: restart the decode worker when it dies.
        for restart in range(10):
            if await both_finished():
                break
            worker = spawn_worker(settings, "decode", f"decode-{restart}",
                                  log=tmp_path / "decode.log")

            async def worker_exited_or_all_done() -> bool:
                return worker.poll() is not None or await both_finished()

            await until(worker_exited_or_all_done, timeout=60)
            if worker.poll() is None:
                worker.terminate()
                assert worker.wait(timeout=30) == 0
            else:
                crashes += 1
    job = await store.get(poison)
    assert job is not None and job.status is JobStatus.FAILED
    assert "gave up after 3 attempts" in (job.error or "")
    assert "died or stalled" in (job.error or "")
    assert crashes == 3
    assert await store.redis.xlen(store.keys.dead_letters("decode")) == 1
    assert (await store.get(good)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_cancelled_job_is_never_processed_further(store: JobStore, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(store, Script(stages={"diarize": Behaviour(wait_for=str(gate))}))
    async with running_workers(store):
        await until(lambda: started_by(store, job_id, "diarize"))
        await store.cancel(job_id)
        gate.touch()
        other = await submit(store)
        await until(lambda: finished(store, other))
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED
    assert not any("transcribe" in line for line in runs(store.files(job_id).root))
    assert job.stages["diarize"].status is not StageStatus.DONE
    assert await entries_for(store, "transcribe", job_id) == 0


async def test_deleted_job_leaves_nothing_behind(store: JobStore, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(store, Script(stages={"decode": Behaviour(wait_for=str(gate))}))
    async with running_workers(store):
        await until(lambda: started_by(store, job_id, "decode"))
        assert await store.delete(job_id)
        gate.touch()
        other = await submit(store)
        await until(lambda: finished(store, other))
    assert await store.get(job_id) is None
    assert not store.files(job_id).root.exists()
    assert await entries_for(store, "diarize", job_id) == 0
    assert [k async for k in store.redis.scan_iter(f"{store.keys.prefix}:job:{job_id}*")] == []
