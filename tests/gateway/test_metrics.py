"""GET /metrics: counters that only grow, a real histogram, and a scrape that only reads,
at the same cost however many jobs are kept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import pairwise
from typing import TypeVar

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import read_snapshot
from pipeline.store import Delivery, JobStore, Outcome, new_job_id
from stages.options import JobOptions
from stages.table import TABLE, JobStatus
from tests.support.gateway import finished, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers, until

T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

#: What a scrape may send: reads only.
READ_ONLY = {"ZCARD", "XINFO", "XLEN", "HGETALL", "EVALSHA", "XRANGE"}


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def grown(earlier: Samples, later: Samples) -> list[str]:
    """The counter and histogram samples of ``earlier`` that went down in ``later``."""
    monotonic = ("_total", "_bucket", "_count", "_sum")
    return [f"{name}{labels}" for (name, labels), v in earlier.items()
            if name.endswith(monotonic) and later.get((name, labels), 0.0) < v]


async def test_counters_follow_the_jobs_and_only_grow(client: httpx.AsyncClient,
                                                      store: JobStore) -> None:
    scrapes = [await scrape(client)]
    assert value(scrapes[0], "stt_jobs_created_total") == 0
    assert value(scrapes[0], "stt_stage_runs_total", stage="decode", outcome="done") == 0
    async with running_workers(store, GATEWAY_STAGES):
        good = (await submit(client)).json()["job_id"]
        await finished(client, good)
        scrapes.append(await scrape(client))
        bad = (await submit(client, model="fail")).json()["job_id"]
        await finished(client, bad)
        scrapes.append(await scrape(client))
        waiting = (await submit(client, model="wait")).json()["job_id"]

        async def decoding() -> bool:
            return (await client.get(f"/jobs/{waiting}")).json()["status"] == "decoding"

        await until(decoding, what="the waiting job to be decoded")
        assert (await client.delete(f"/jobs/{waiting}")).status_code == 200
        scrapes.append(await scrape(client))
        rerun = await client.post(f"/jobs/{good}/rerun", json={"from_stage": "transcribe"})
        assert rerun.status_code == 202
        assert (await finished(client, good))["run"] == 2
        scrapes.append(await scrape(client))
    # The workers have stopped: what they committed is counted.
    scrapes.append(await scrape(client))
    for earlier, later in pairwise(scrapes):
        assert grown(earlier, later) == []
    last = scrapes[-1]
    assert value(last, "stt_jobs_created_total") == 3
    assert value(last, "stt_jobs_rerun_total") == 1
    assert value(last, "stt_jobs_deleted_total") == 1
    finals = {s: value(last, "stt_jobs_finished_total", status=s)
              for s in ("completed", "failed", "cancelled")}
    assert finals == {"completed": 2, "failed": 1, "cancelled": 1}
    runs = {(stage, outcome): value(last, "stt_stage_runs_total", stage=stage, outcome=outcome)
            for stage in GATEWAY_STAGES for outcome in ("done", "failed", "dead_lettered")}
    assert {k: v for k, v in runs.items() if v} == {
        ("decode", "done"): 2, ("diarize", "done"): 1, ("diarize", "failed"): 1,
        ("transcribe", "done"): 2}
    for stage in GATEWAY_STAGES:
        buckets = sorted(((float(labels[0][1]), v) for (name, labels), v in last.items()
                          if name == "stt_stage_duration_seconds_bucket"
                          and dict(labels)["stage"] == stage))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and buckets[-1][0] == float("inf")
        count = value(last, "stt_stage_duration_seconds_count", stage=stage)
        assert counts[-1] == count == runs[(stage, "done")]
        assert value(last, "stt_stage_duration_seconds_sum", stage=stage) >= 0


async def commands_during(store: JobStore,
                          action: Callable[[], Awaitable[T]]) -> tuple[list[str], T]:
    """What ``action`` returned, and the names of the commands (a script's own included)
    that touched the store's keys while it ran, as the server's MONITOR saw them."""
    prefix, end = store.settings.key_prefix, f"{store.settings.key_prefix}:monitor-end"
    seen: list[str] = []
    async with store.redis.monitor() as monitor:
        result = await action()
        await store.redis.exists(end)
        while end not in (command := (await monitor.next_command())["command"]):
            if prefix in command:
                seen.append(command.split()[0].upper())
    return seen, result


async def keep_completed_jobs(store: JobStore, n: int) -> list[str]:
    """``n`` jobs run through every stage by hand (no workers: quicker)."""
    options = JobOptions()
    ids = [new_job_id() for _ in range(n)]
    for job_id in ids:
        assert (await store.create(job_id, options))[1]

    async def run(stage: str, entry_id: str, fields: dict[str, str]) -> None:
        d = Delivery(stage, store.keys.group(stage), "c", entry_id, fields["job_id"],
                     int(fields["run"]))
        assert await store.start_stage(d, TABLE.spec(stage).running, "") is Outcome.OK
        assert await store.finish(d, options.plan()) is Outcome.OK

    for stage in options.plan():
        stream, group = store.keys.stream(stage), store.keys.group(stage)
        await store.redis.xgroup_create(stream, group, id="0", mkstream=True)
        [[_, entries]] = await store.redis.xreadgroup(group, "c", {stream: ">"}, count=n)
        for start in range(0, len(entries), 50):
            await asyncio.gather(*(run(stage, *e) for e in entries[start:start + 50]))
    return ids


async def test_a_scrape_reads_the_same_few_keys_however_many_jobs(store: JobStore) -> None:
    commands: dict[int, list[str]] = {}
    for n in (10, 500):
        settings = msgspec.structs.replace(store.settings,
                                           key_prefix=f"{store.settings.key_prefix}n{n}")
        kept = JobStore(store.redis, settings, store.table)
        ids = await keep_completed_jobs(kept, n)
        # One job's hash expired; nothing pruned it from the indexes yet.
        await kept.redis.delete(kept.keys.job(ids[0]))
        await kept.redis.zadd(kept.keys.expiry_index, {ids[0]: 0})
        await read_snapshot(kept)  # scripts loaded once, before counting
        names, snap = await commands_during(kept, partial(read_snapshot, kept))
        commands[n] = sorted(names)
        assert set(names) <= READ_ONLY, names
        # Reading did not prune: the expired job is still counted and indexed.
        assert snap.jobs_by_status[JobStatus.COMPLETED] == n
        assert await kept.redis.zscore(kept.keys.expiry_index, ids[0]) == 0
    assert commands[10] == commands[500]
