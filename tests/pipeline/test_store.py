"""The job store's check-and-set rules, on a real server."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from pipeline.errors import ConfigError, QueueFull
from pipeline.runtime import consumer_is_dead
from pipeline.settings import describe
from pipeline.store import Delivery, JobStore, Outcome, new_job_id
from pipeline.types import StageStatus
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import JobStatus
from tests.support.stages import Behaviour, Script, finished, submit
from tests.support.workers import running_workers, until


async def delivered(store: JobStore, stage: str = "decode") -> Delivery:
    """Read the next entry of the stage's stream as consumer 'c' and start the stage."""
    stream, group = store.keys.stream(stage), store.keys.group(stage)  # type: ignore[arg-type]
    await store.redis.xgroup_create(stream, group, id="0", mkstream=True)
    [[_, [(entry_id, fields)]]] = await store.redis.xreadgroup(group, "c", {stream: ">"}, count=1)
    d = Delivery(stage, group, "c", entry_id, fields["job_id"], int(fields["run"]))  # type: ignore[arg-type]
    assert await store.start_stage(d, JobStatus.DECODING, "started") is Outcome.OK
    return d


async def test_progress_never_moves_backwards(store: JobStore) -> None:
    job_id = await submit(store)
    d = await delivered(store)
    plan = JobOptions().plan()
    assert await store.progress(d, plan, 0.6, "more") is Outcome.OK
    assert await store.progress(d, plan, 0.2, "late") is Outcome.OK
    job = await store.get(job_id)
    assert job is not None
    assert job.stages["decode"].progress == 60.0
    assert job.progress == store.table.progress(plan, "decode", 0.6)


async def test_late_updates_never_resurrect_a_deleted_job(store: JobStore) -> None:
    job_id = await submit(store)
    d = await delivered(store)
    assert await store.delete(job_id)
    plan = JobOptions().plan()
    assert await store.progress(d, plan, 0.5, "late") is Outcome.GONE
    assert await store.finish(d, plan) is Outcome.GONE
    assert await store.get(job_id) is None
    assert await store.redis.exists(store.keys.job(job_id)) == 0
    assert await store.redis.xlen(store.keys.stream("diarize")) == 0


async def test_late_updates_never_touch_a_cancelled_or_finished_job(store: JobStore) -> None:
    job_id = await submit(store)
    d = await delivered(store)
    assert await store.cancel(job_id) is Outcome.OK
    assert await store.progress(d, JobOptions().plan(), 0.5, "late") is Outcome.TERMINAL
    assert await store.fail(d, "late failure") is Outcome.TERMINAL
    job = await store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.error is None
    assert await store.cancel(job_id) is Outcome.TERMINAL


async def test_finish_by_a_consumer_that_lost_the_entry_changes_nothing(store: JobStore) -> None:
    job_id = await submit(store)
    d = await delivered(store)
    stream = store.keys.stream("decode")
    await store.redis.xclaim(stream, d.group, "thief", 0, [d.entry_id])
    assert not await store.heartbeat(d)
    assert await store.finish(d, JobOptions().plan()) is Outcome.LOST
    job = await store.get(job_id)
    assert job is not None and job.stages["decode"].status == "running"
    assert await store.redis.xlen(store.keys.stream("diarize")) == 0


async def test_heartbeat_keeps_the_entry_without_counting_a_delivery(store: JobStore) -> None:
    await submit(store)
    d = await delivered(store)
    for _ in range(3):
        assert await store.heartbeat(d)
    [pending] = await store.redis.xpending_range(store.keys.stream("decode"), d.group,
                                                 min="-", max="+", count=1)
    assert pending["times_delivered"] == 1 and pending["consumer"] == "c"


async def test_idempotency_key_returns_the_same_job(store: JobStore) -> None:
    first, created = await store.create(new_job_id(), JobOptions(), idempotency_key="k1",
                                        owner="alice")
    again, created_again = await store.create(new_job_id(), JobOptions(),
                                              idempotency_key="k1", owner="alice")
    other, _ = await store.create(new_job_id(), JobOptions(), idempotency_key="k1", owner="bob")
    assert created and not created_again and again == first and other != first
    await store.delete(first)
    assert not await store.redis.exists(store.keys.idempotency("alice", "k1"))
    fresh, created_fresh = await store.create(new_job_id(), JobOptions(),
                                              idempotency_key="k1", owner="alice")
    assert created_fresh and fresh != first
    assert await store.redis.xlen(store.keys.stream("decode")) == 3


async def test_the_queue_limit_is_exact(store: JobStore) -> None:
    full = JobStore(store.redis, msgspec.structs.replace(store.settings, max_queued_jobs=5),
                    store.table)
    stream, group = full.keys.stream("decode"), full.keys.group("decode")

    async def accepted(attempts: int) -> int:
        results = await asyncio.gather(*(full.create(new_job_id(), JobOptions())
                                         for _ in range(attempts)), return_exceptions=True)
        assert all(isinstance(r, (tuple, QueueFull)) for r in results), results
        return sum(isinstance(r, tuple) for r in results)

    key_job, created = await full.create(new_job_id(), JobOptions(), idempotency_key="k")
    assert created
    # No worker yet, so no consumer group: every entry of the stream waits.
    assert await accepted(20) == 4
    with pytest.raises(QueueFull) as refused:
        await full.create(new_job_id(), JobOptions())
    assert (refused.value.waiting, refused.value.limit) == (5, 5)
    assert await full.queue_lag("decode") == 5
    # A repeated upload gets its job back, however full the queue.
    assert await full.create(new_job_id(), JobOptions(), idempotency_key="k") == (key_job, False)

    # A worker takes two entries: two places are free (the server reports the lag).
    await store.redis.xgroup_create(stream, group, id="0")
    await store.redis.xreadgroup(group, "c", {stream: ">"}, count=2)
    assert await full.queue_lag("decode") == 3
    assert await accepted(5) == 2
    # A deleted entry leaves the server unable to tell the lag: then the entries after the
    # last delivered one are counted.
    [(last_id, _)] = await store.redis.xrevrange(stream, count=1)
    await store.redis.xdel(stream, last_id)
    info = next(g for g in await store.redis.xinfo_groups(stream) if g["name"] == group)
    assert info["lag"] is None
    assert await full.queue_lag("decode") == 4
    assert await full.queue_lag("decode", cap=2) == 2
    assert await accepted(5) == 1
    assert await store.redis.xlen(stream) == 5 + 2 - 1 + 1


async def test_jobs_expire_after_the_ttl(store: JobStore) -> None:
    job_id = await submit(store)
    ttl = await store.redis.ttl(store.keys.job(job_id))
    assert 0 < ttl <= store.settings.job_ttl_seconds


async def test_listing_is_newest_first_with_a_cursor(store: JobStore) -> None:
    ids = [await submit(store) for _ in range(5)]
    page, cursor = await store.list(limit=3)
    assert [j.id for j in page] == ids[::-1][:3]
    rest, end = await store.list(limit=3, cursor=cursor)
    assert [j.id for j in rest] == ids[::-1][3:]
    assert end is None
    assert [j.id for j in (await store.list(status=JobStatus.COMPLETED))[0]] == []


async def indexed_statuses(store: JobStore, job_id: str) -> list[JobStatus]:
    """The statuses in whose index the job is."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for status in JobStatus:
            pipe.zscore(store.keys.status_index(status), job_id)
        scores = await pipe.execute()
    return [status for status, score in zip(JobStatus, scores, strict=True) if score is not None]


async def assert_indexed(store: JobStore, *job_ids: str) -> None:
    for job_id in job_ids:
        job = await store.get(job_id)
        assert await indexed_statuses(store, job_id) == ([job.status] if job else []), job


async def stage_running(store: JobStore, job_id: str, stage: str) -> bool:
    job = await store.get(job_id)
    return job is not None and job.stages[stage].status is StageStatus.RUNNING


async def test_each_job_is_indexed_under_its_status_alone(store: JobStore) -> None:
    gate = store.settings.jobs_path / "go"
    held = await submit(store, Script(stages={"diarize": Behaviour(wait_for=str(gate))}))
    bad = await submit(store, Script(stages={"decode": Behaviour(fail="permanent")}))
    good = await submit(store)
    doomed = await submit(store)
    await assert_indexed(store, held, bad, good, doomed)
    assert await store.cancel(doomed) is Outcome.OK
    await assert_indexed(store, doomed)
    async with running_workers(store):
        await until(lambda: stage_running(store, held, "diarize"), what="diarize to start")
        await until(lambda: finished(store, bad))
        await assert_indexed(store, held, bad, good, doomed)
        gate.touch()  # held keeps the one diarize worker until then
        for job_id in (held, good):
            await until(lambda: finished(store, job_id))
    await assert_indexed(store, held, good)
    first_good = await store.get(good)
    assert first_good is not None
    assert await store.rerun(first_good, "decode") is Outcome.OK
    await assert_indexed(store, good)
    assert await store.delete(doomed)
    await assert_indexed(store, doomed)
    counts = await store.count_by_status()
    assert {s: n for s, n in counts.items() if n} == {
        JobStatus.QUEUED: 1, JobStatus.COMPLETED: 1, JobStatus.FAILED: 1}
    assert [j.id for j in (await store.list(status=JobStatus.COMPLETED))[0]] == [held]


async def test_listing_by_status_pages_through_its_index(store: JobStore) -> None:
    ids = [await submit(store) for _ in range(5)]
    for job_id in ids[1::2]:
        await store.cancel(job_id)
    page, cursor = await store.list(status=JobStatus.QUEUED, limit=2)
    rest, end = await store.list(status=JobStatus.QUEUED, limit=2, cursor=cursor)
    assert [j.id for j in page + rest] == ids[::-2] and end is None
    assert [j.id for j in (await store.list(status=JobStatus.CANCELLED))[0]] == ids[-2::-2]


async def owned(store: JobStore, owner: str) -> str:
    job_id, _ = await store.create(new_job_id(), JobOptions(), owner=owner)
    return job_id


async def test_listing_an_owners_jobs_reads_only_its_index(store: JobStore) -> None:
    alice = [await owned(store, "alice") for _ in range(3)]
    bob = await owned(store, "bob")
    await store.cancel(alice[1])
    await store.delete(alice[2])
    assert await store.redis.zrange(store.keys.owner_index("alice"), 0, -1) == alice[:2]
    assert [j.id for j in (await store.list(owner="alice"))[0]] == alice[1::-1]
    assert [j.id for j in (await store.list(owner="alice", status=JobStatus.QUEUED))[0]] == [
        alice[0]]
    assert [j.id for j in (await store.list(owner="bob"))[0]] == [bob]
    assert (await store.list(owner="carol"))[0] == []


async def expired_on_time(store: JobStore, job_id: str) -> bool:
    """Whether the job's hash is gone and the server's clock has passed the expiry index's
    time for it: what pruning goes by."""
    due = await store.redis.zscore(store.keys.expiry_index, job_id)
    seconds, micros = await store.redis.time()
    return (due is not None and seconds + micros / 1e6 >= due
            and not await store.redis.exists(store.keys.job(job_id)))


async def test_pruning_drops_expired_jobs_and_keeps_rerun_ones(store: JobStore) -> None:
    short = JobStore(store.redis, msgspec.structs.replace(store.settings, job_ttl_seconds=2),
                     store.table)
    expired, rerun = await owned(short, "alice"), await submit(short)
    assert await short.cancel(rerun) is Outcome.OK
    # The jobs' age is what is under test: the rerun comes a second after their creation.
    await asyncio.sleep(1.0)
    # A rerun keeps the job another JOB_TTL_SECONDS: longer than its creation time says.
    job = await short.get(rerun)
    assert job is not None and await short.rerun(job, "decode") is Outcome.OK
    # Due 2 s after creation, a second before the rerun job.
    await until(lambda: expired_on_time(short, expired), timeout=10, what="the job to expire")
    assert await short.prune() == 1
    assert await short.redis.zscore(short.keys.jobs_index, expired) is None
    assert await indexed_statuses(short, expired) == []
    assert await short.redis.zcard(short.keys.owner_index("alice")) == 0
    assert [j.id for j in (await short.list())[0]] == [rerun]
    assert await short.count_by_status() == {s: int(s is JobStatus.QUEUED) for s in JobStatus}


async def test_migrate_indexes_the_jobs_of_an_earlier_version(store: JobStore) -> None:
    ids = [await submit(store), await owned(store, "alice"), await owned(store, "bob")]
    await store.cancel(ids[0])
    # What a version without status, owner and expiry indexes left behind.
    await store.redis.delete(*map(store.keys.status_index, JobStatus), store.keys.migrations,
                             store.keys.owner_index("alice"), store.keys.owner_index("bob"),
                             store.keys.owners, store.keys.expiry_index)
    await store.migrate()
    await assert_indexed(store, *ids)
    assert await store.redis.zcard(store.keys.expiry_index) == len(ids)
    assert [j.id for j in (await store.list(owner="alice"))[0]] == [ids[1]]
    assert await store.redis.smembers(store.keys.owners) == {"alice", "bob"}
    assert await store.count_by_status() == {
        s: {JobStatus.QUEUED: 2, JobStatus.CANCELLED: 1}.get(s, 0) for s in JobStatus}
    await store.redis.delete(store.keys.status_index(JobStatus.QUEUED))
    await store.migrate()  # once only
    assert await indexed_statuses(store, ids[1]) == []


def test_options_are_validated() -> None:
    import msgspec
    with pytest.raises(msgspec.ValidationError, match="min_speakers"):
        msgspec.convert({"min_speakers": 4, "max_speakers": 2}, JobOptions)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"task": "summarise"}, JobOptions)
    assert JobOptions(diarize=False).plan() == ("decode", "transcribe")


def test_settings_name_the_bad_variable() -> None:
    with pytest.raises(ConfigError, match="invalid MAX_DELIVERIES"):
        Settings.from_env({"MAX_DELIVERIES": "many"})
    with pytest.raises(ConfigError, match="invalid CLAIM_IDLE_SECONDS"):
        Settings.from_env({"CLAIM_IDLE_SECONDS": "0"})
    with pytest.raises(ConfigError, match="invalid CPU_THREADS"):
        Settings.from_env({"CPU_THREADS": "0"})
    s = Settings.from_env({"JOB_TTL_SECONDS": "3600", "REDIS_URL": "", "DEVICE": "cpu"})
    assert s.job_ttl_seconds == 3600 and s.redis_url is None and s.device == "cpu"
    assert [row[0] for row in describe()][:3] == ["REDIS_URL", "JOBS_DIR", "JOB_TTL_SECONDS"]


def test_one_rule_says_when_a_consumer_is_dead() -> None:
    # The health check's live workers and the consumers a worker removes, by idle time.
    settings = Settings()  # CLAIM_IDLE_SECONDS=60, BLOCK_SECONDS=5
    assert not consumer_is_dead(180_000, settings) and consumer_is_dead(180_001, settings)
    quick = Settings(claim_idle_seconds=2.0, block_seconds=0.2)
    assert not consumer_is_dead(30_000, quick) and consumer_is_dead(30_001, quick)


async def test_progress_accepts_numpy_numbers(store: JobStore) -> None:
    import numpy as np

    from pipeline.stage import JobContext
    job_id = await submit(store)
    d = await delivered(store)
    job = await store.get(job_id)
    assert job is not None
    reported: list[float] = []
    ctx = JobContext(job=job, files=store.files(job_id), settings=store.settings,
                     log=None,  # type: ignore[arg-type]
                     report=lambda fraction, detail: reported.append(fraction))
    ctx.progress(np.float64(0.25))
    assert type(reported[0]) is float
    assert await store.progress(d, job.plan, reported[0], None) is Outcome.OK
