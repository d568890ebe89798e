"""The runtime against a server that restarts or is wiped, and the embedded server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from pipeline.connection import connect
from pipeline.embedded import (
    ServerInfo,
    free_port,
    running_server,
    server_dir,
    start_server,
    stop_server,
)
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import TABLE, JobStatus
from tests.support.stages import Behaviour, Script, finished, submit
from tests.support.workers import REPO, running_workers, until

pytestmark = pytest.mark.system


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[ServerInfo]:
    """A server of this test's own, which it may stop, restart and flush."""
    info = start_server(tmp_path / "valkey", free_port())
    yield info
    # The test may have restarted it: stop whichever server now runs there.
    stop_server(running_server(tmp_path / "valkey") or info)


@pytest.fixture
async def own_store(own_server: ServerInfo, settings: Settings) -> AsyncIterator[JobStore]:
    own = msgspec.structs.replace(settings, redis_url=own_server.url)
    redis = await connect(own)
    yield JobStore(redis, own, TABLE)
    await redis.aclose()


async def test_restart_with_aof_keeps_queued_and_finished_jobs(
        own_server: ServerInfo, own_store: JobStore, tmp_path: Path) -> None:
    store = own_store
    gate = tmp_path / "gate"
    done = await submit(store)
    async with running_workers(store):
        await until(lambda: finished(store, done))
        # One job mid-stage while the server goes away, one queued.
        running = await submit(store, Script(stages={"diarize": Behaviour(wait_for=str(gate))}))
        await until(lambda: _stage_running(store, running, "diarize"))
        queued = await submit(store)
        stop_server(own_server)
        gate.touch()
        start_server(tmp_path / "valkey", own_server.port)
        # The workers reconnect by themselves and finish everything.
        for job_id in (running, queued):
            await until(lambda: finished(store, job_id), timeout=60, what=f"{job_id} to finish")
    for job_id in (done, running, queued):
        job = await store.get(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED, job_id


async def _stage_running(store: JobStore, job_id: str, stage: str) -> bool:
    job = await store.get(job_id)
    return job is not None and job.stages[stage].status == "running"  # type: ignore[index]


async def test_workers_recreate_groups_after_the_server_is_wiped(own_store: JobStore) -> None:
    store = own_store
    async with running_workers(store):
        first = await submit(store)
        await until(lambda: finished(store, first))
        await store.redis.flushall()
        second = await submit(store)
        await until(lambda: finished(store, second), timeout=60)
    assert (await store.get(second)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_a_wipe_while_a_job_runs_stops_no_worker(own_store: JobStore,
                                                     tmp_path: Path) -> None:
    """The streams vanish under workers that are blocked reading and under one busy with a
    job; each finds them gone at some other step (its next read, or the maintenance that
    follows a job) and must create them again."""
    store = own_store
    gate = tmp_path / "gate"
    async with running_workers(store):
        running = await submit(store, Script(stages={"decode": Behaviour(wait_for=str(gate))}))
        await until(lambda: _stage_running(store, running, "decode"))
        await store.redis.flushall()
        # Time under test, not a synchronisation: the busy worker's maintenance interval
        # (shorter than CLAIM_IDLE_SECONDS here) passes while the job holds it, so that
        # maintenance runs right after the job, on the wiped server.
        await asyncio.sleep(store.settings.claim_idle_seconds)
        gate.touch()
        for _ in range(2):
            job_id = await submit(store)
            await until(lambda: finished(store, job_id), timeout=60)
            assert (await store.get(job_id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_trimming_keeps_every_unacknowledged_entry(store: JobStore) -> None:
    settings = msgspec.structs.replace(store.settings, stream_retention_seconds=0)
    store = JobStore(store.redis, settings, store.table)
    stream, group = store.keys.stream("decode"), store.keys.group("decode")
    async with running_workers(store):
        done = [await submit(store) for _ in range(3)]
        for job_id in done:
            await until(lambda: finished(store, job_id))
    # Now a job delivered but not acknowledged, one not yet delivered, and a second group
    # (a replay) that has read nothing.
    await store.redis.xgroup_create(stream, "replay", id="0")
    pending = await submit(store)
    await store.redis.xreadgroup(group, "stuck", {stream: ">"}, count=1)
    waiting = await submit(store)
    from pipeline.runtime import Worker
    from tests.support.stages import Decode
    await Worker(Decode(), store, consumer="janitor")._trim()
    ids = [fields["job_id"] for _, fields in await store.redis.xrange(stream)]
    assert ids == [*done, pending, waiting]  # the replay group still needs them all
    await store.redis.xgroup_destroy(stream, "replay")
    await Worker(Decode(), store, consumer="janitor")._trim()
    ids = [fields["job_id"] for _, fields in await store.redis.xrange(stream)]
    assert ids == [pending, waiting]



async def test_dead_letters_are_kept_as_long_as_jobs(store: JobStore) -> None:
    from pipeline.runtime import Worker, format_id, stream_id_for
    from tests.support.stages import Decode

    # As a running worker has it: its stream and group exist.
    await store.redis.xgroup_create(store.keys.stream("decode"), store.keys.group("decode"),
                                    id="0", mkstream=True)
    dead = store.keys.dead_letters("decode")
    now = time.time()
    expired = format_id(stream_id_for(now - store.settings.job_ttl_seconds - 60))
    kept = format_id(stream_id_for(now - store.settings.job_ttl_seconds + 60))
    await store.redis.xadd(dead, {"job_id": "expired", "reason": "r"}, id=expired)
    await store.redis.xadd(dead, {"job_id": "kept", "reason": "r"}, id=kept)
    await store.redis.xadd(dead, {"job_id": "new", "reason": "r"})
    await Worker(Decode(), store, consumer="janitor")._trim()
    assert [fields["job_id"] for _, fields in await store.redis.xrange(dead)] == ["kept", "new"]

def test_one_embedded_server_per_jobs_dir(tmp_path: Path) -> None:
    code = ("from pathlib import Path; from pipeline.embedded import ensure_server; "
            f"print(ensure_server(Path({str(tmp_path)!r})))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO,
                              text=True) for _ in range(3)]
    urls = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(urls) == 1
    info = running_server(server_dir(tmp_path))
    assert info is not None and info.url in urls
    stop_server(info)


async def test_blocking_reads_outlast_the_socket_timeout(settings: Settings) -> None:
    slow = msgspec.structs.replace(settings, block_seconds=6.0)
    redis = await connect(slow)
    try:
        stream = f"{slow.key_prefix}:idle"
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
        assert await redis.xreadgroup("g", "c", {stream: ">"}, count=1, block=6000) == []
    finally:
        await redis.aclose()
