"""Scenarios 1-4: workers killed at random, a restarted server, a renamed worker, a job
that kills its worker."""

from __future__ import annotations

import asyncio
import random

import pytest

from stages.table import STAGES
from tests.support.workers import until
from tests.system.conftest import Service, stream_stats, submit

pytestmark = pytest.mark.system


async def entries_per_job(service: Service, stage: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, fields in await service.store.redis.xrange(service.store.keys.stream(stage)):  # type: ignore[arg-type]
        counts[fields["job_id"]] = counts.get(fields["job_id"], 0) + 1
    return counts


async def test_random_kills_lose_and_duplicate_nothing(deploy) -> None:  # type: ignore[no-untyped-def]
    # Kills may hit the same entry several times: that is retrying, not poison.
    service: Service = await deploy(max_deliveries=30)
    ids = [(await submit(service, model="slow")).json()["job_id"] for _ in range(10)]
    rng = random.Random(7)
    kills = 0
    while kills < 20:
        # At a random moment, kill -9 a random stage's worker; a supervisor restarts it.
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        name = f"{rng.choice(STAGES)}-0"
        service.workers[name].kill()
        service.workers[name].wait()
        kills += 1
        service.start_worker(name.split("-")[0], name)  # type: ignore[arg-type]
    for job_id in ids:
        job = await service.wait_finished(job_id, timeout=120)
        assert job["status"] == "completed", job
    # Exactly once: one hand-over into each later stage per job, one result per job.
    for stage in ("diarize", "transcribe"):
        assert await entries_per_job(service, stage) == {job_id: 1 for job_id in ids}
    for job_id in ids:
        results = list((service.store.files(job_id).root / "runs").glob("*/result.json"))
        assert len(results) == 1

    async def drained() -> bool:
        return all(s == {"pending": 0, "lag": 0} for s in (await stream_stats(service)).values())

    await until(drained, what="no pending entries and no lag")


async def test_jobs_survive_a_server_restart(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    before = [(await submit(service, model="slow")).json()["job_id"] for _ in range(4)]
    await service.wait_finished(before[0])
    service.restart_server()
    # Gateway and workers reconnect by themselves; acknowledged jobs are all still there.
    after = []

    async def accepted() -> bool:
        response = await submit(service, model="slow")
        if response.status_code == 202:
            after.append(response.json()["job_id"])
        return bool(after)

    await until(accepted, timeout=60, what="the gateway to accept jobs again")
    for job_id in before + after:
        job = await service.wait_finished(job_id, timeout=120)
        assert job["status"] == "completed", job


async def test_a_dead_consumers_entries_are_reclaimed_before_it_is_removed(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    stream, group = service.store.keys.stream("decode"), service.store.keys.group("decode")
    job_id = (await submit(service, model="wait")).json()["job_id"]

    async def decoding() -> bool:
        return (await service.job(job_id))["stages"]["decode"]["status"] == "running"

    await until(decoding)
    service.workers["decode-0"].kill()
    service.workers["decode-0"].wait()
    info = await service.store.redis.xinfo_consumers(stream, group)
    consumers = {c["name"]: c["pending"] for c in info}
    assert consumers["decode-0"] == 1
    (service.store.files(job_id).root / "go").touch()
    service.start_worker("decode", "decode-new")
    job = await service.wait_finished(job_id)
    assert job["status"] == "completed" and job["stages"]["decode"]["worker"] == "decode-new"

    async def predecessor_removed() -> bool:
        names = {c["name"]: c["pending"]
                 for c in await service.store.redis.xinfo_consumers(stream, group)}
        # Never removed while it still had the entry pending.
        assert names.get("decode-0", 0) == 0
        return "decode-0" not in names

    await until(predecessor_removed, timeout=60, what="the dead consumer to be removed")


async def test_a_job_that_kills_its_worker_every_time(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    poison = (await submit(service, model="exit")).json()["job_id"]
    behind = [(await submit(service)).json()["job_id"] for _ in range(3)]
    restarts = 0
    while (await service.job(poison))["status"] != "failed":
        worker = service.workers["decode-0"]

        async def died_or_poison_failed() -> bool:
            return worker.poll() is not None or (await service.job(poison))["status"] == "failed"

        await until(died_or_poison_failed, timeout=60)
        if worker.poll() is not None:
            restarts += 1
            assert restarts <= 5, "the poison job was retried more than MAX_DELIVERIES"
            service.start_worker("decode", "decode-0")
    job = await service.job(poison)
    assert "gave up after 3 attempts" in job["error"]
    dead = await service.store.redis.xrange(service.store.keys.dead_letters("decode"))
    assert [fields["job_id"] for _, fields in dead] == [poison]
    for job_id in behind:
        assert (await service.wait_finished(job_id))["status"] == "completed"
