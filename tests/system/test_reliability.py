"""Scenarios 9-: one bad job never stalls a stage; lying headers, failed reruns, outages."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.system.conftest import Service, submit

pytestmark = pytest.mark.system


def seconds_taken(job: dict[str, object]) -> float:
    """From the job's creation to its last change (its completion), on the server's clock."""
    def parse(stamp: object) -> datetime:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))

    return (parse(job["updated_at"]) - parse(job["created_at"])).total_seconds()


async def good_jobs(service: Service, count: int) -> float:
    """Submit ``count`` slow jobs that succeed; the longest any of them took."""
    ids = [(await submit(service, model="slow")).json()["job_id"] for _ in range(count)]
    jobs = [await service.wait_finished(job_id, timeout=120) for job_id in ids]
    assert all(job["status"] == "completed" for job in jobs), jobs
    return max(map(seconds_taken, jobs))


async def test_a_burst_of_bad_jobs_costs_only_those_jobs(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    solo = await good_jobs(service, 2)
    # In front of the good ones: jobs whose transcription fails as a lost connection does
    # (retried later, with a backoff of their own) and as a bug does (a plain ValueError,
    # which no retry fixes).
    flaky = [(await submit(service, model="flaky")).json()["job_id"] for _ in range(3)]
    buggy = [(await submit(service, model="bug")).json()["job_id"] for _ in range(3)]
    behind = await good_jobs(service, 2)
    print(f"good jobs took {solo:.2f} s alone, {behind:.2f} s behind 6 bad jobs")
    assert behind <= 2 * solo

    for job_id in buggy:
        job = await service.wait_finished(job_id)
        assert job["status"] == "failed"
        assert job["error"] == ("transcribe failed: ValueError: transcribe: 'xx' is not a "
                                "language the model knows")
        assert "error" not in job["stages"]["transcribe"]  # never retried
    for job_id in flaky:
        job = await service.wait_finished(job_id, timeout=60)
        assert job["status"] == "failed"
        assert "gave up after 3 attempts" in job["error"]
        assert "ConnectionRefusedError" in job["error"]
    dead = await service.store.redis.xrange(service.store.keys.dead_letters("transcribe"))
    assert sorted(fields["job_id"] for _, fields in dead) == sorted(flaky)
    assert await service.store.waiting_retries("transcribe") == 0
    assert all(worker.poll() is None for worker in service.workers.values())
