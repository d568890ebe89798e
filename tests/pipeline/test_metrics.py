"""The counters and histogram that only grow: recorded by the workers, once per change."""

from __future__ import annotations

import asyncio
import logging
from itertools import pairwise

import pytest

from pipeline import metrics
from pipeline.logs import job_log
from pipeline.runtime import Worker
from pipeline.store import JobStore
from tests.pipeline.test_store import delivered
from tests.support.stages import Behaviour, Decode, Script, finished, submit
from tests.support.workers import running_workers, until


async def raw(store: JobStore) -> dict[str, float]:
    fields: dict[str, str]
    fields = await store.redis.hgetall(store.keys.metrics)  # type: ignore[assignment]
    return {name: float(value) for name, value in fields.items()}


def counted(readings: metrics.Readings, counter: metrics.Counter, *labels: str) -> float:
    return readings.counters[counter].get(labels, 0.0)


async def test_counters_only_grow_across_the_jobs_lives(store: JobStore) -> None:
    good = await submit(store)
    bad = await submit(store, Script(stages={"diarize": Behaviour(fail="permanent")}))
    poison = await submit(store, Script(stages={"decode": Behaviour(fail="transient")}))
    samples: list[dict[str, float]] = []

    async def sample() -> None:
        while True:
            samples.append(await raw(store))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    async with running_workers(store):
        for job_id in (good, bad, poison):
            await until(lambda: finished(store, job_id), timeout=60)
    # Stopped workers have counted what they committed.
    sampler.cancel()
    samples.append(await raw(store))
    for earlier, later in pairwise(samples):
        assert all(later.get(name, 0.0) >= value for name, value in earlier.items())

    got = await metrics.read(store)
    assert got.counters[metrics.STAGE_RUNS] == {
        ("decode", "done"): 2, ("diarize", "done"): 1, ("transcribe", "done"): 1,
        ("diarize", "failed"): 1, ("decode", "dead_lettered"): 1}
    assert got.counters[metrics.STAGE_RETRIES] == {("decode",): 3}
    assert got.counters[metrics.JOBS_FINISHED] == {("completed",): 1, ("failed",): 2}
    durations = got.histograms[metrics.STAGE_SECONDS]
    # One observation per run that ended done; the test stages take no time.
    assert {labels: v.cumulative()[-1] for labels, v in durations.items()} == {
        ("decode",): 2, ("diarize",): 1, ("transcribe",): 1}
    assert all(v.cumulative()[0] == v.cumulative()[-1] for v in durations.values())


async def test_a_repeated_finish_is_not_counted_again(store: JobStore) -> None:
    job_id = await submit(store)
    d = await delivered(store)
    worker = Worker(Decode(), store, consumer=d.consumer)
    job = await store.get(job_id)
    assert job is not None
    jlog = job_log(logging.getLogger(__name__), d.job_id, d.stage)
    await worker._process(d, job, jlog)
    once = await raw(store)
    assert counted(await metrics.read(store), metrics.STAGE_RUNS, "decode", "done") == 1
    # The same delivery again, as after a reply lost on the way back: the entry is
    # acknowledged, the script answers 'lost' and nothing is counted.
    await worker._process(d, job, jlog)
    assert await raw(store) == once


async def test_a_resent_recording_counts_once(store: JobStore,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.metrics.secrets.token_hex", lambda _: "same")
    for _ in range(2):
        await metrics.record(store, metrics.JOBS_CREATED.inc(),
                             metrics.STAGE_SECONDS.observe(2.5, "decode"))
    got = await metrics.read(store)
    assert got.counters[metrics.JOBS_CREATED] == {(): 1}
    assert got.histograms[metrics.STAGE_SECONDS][("decode",)].sum == 2.5


async def test_histogram_buckets_add_up(store: JobStore) -> None:
    for seconds in (0.5, 3.0, 5.0, 4000.0):
        await metrics.record(store, metrics.STAGE_SECONDS.observe(seconds, "decode"))
    values = (await metrics.read(store)).histograms[metrics.STAGE_SECONDS][("decode",)]
    bounds = metrics.STAGE_SECONDS.bounds
    cumulative = dict(zip(bounds, values.cumulative(), strict=True))
    assert (cumulative["1"], cumulative["5"], cumulative["3600"], cumulative["+Inf"]) == (
        1, 3, 3, 4)
    assert values.cumulative() == sorted(values.cumulative())
    assert values.sum == pytest.approx(4008.5)


def test_fields_of_unknown_metrics_are_left_out() -> None:
    got = metrics.parse({"stt_jobs_created_total": "3", "stt_from_a_newer_version:x": "1",
                         "stt_stage_runs_total:decode": "1"})
    assert got.counters[metrics.JOBS_CREATED] == {(): 3}
    assert got.counters[metrics.STAGE_RUNS] == {}


def test_label_values_must_fit_the_counter() -> None:
    with pytest.raises(ValueError):
        metrics.STAGE_RUNS.inc("decode")
    with pytest.raises(ValueError):
        metrics.STAGE_RETRIES.inc("a:b")
