"""Operator replay of a stream range."""

from __future__ import annotations

from pipeline.replay import replay
from pipeline.store import JobStore
from stages.table import JobStatus
from tests.support.stages import finished, stages_run, submit
from tests.support.workers import running_workers, until


async def test_replay_reprocesses_exactly_the_jobs_in_the_range(store: JobStore) -> None:
    async with running_workers(store):
        ids = [await submit(store) for _ in range(5)]
        for job_id in ids:
            await until(lambda: finished(store, job_id))
        for job_id in ids:  # decode's artifact, which a rerun from diarize starts from
            store.files(job_id).audio.write_text("decoded")
        entries = await store.redis.xrange(store.keys.stream("diarize"))
        start, end = entries[1][0], entries[3][0]
        in_range = [fields["job_id"] for _, fields in entries[1:4]]

        dry = await replay(store, "diarize", start, end, dry_run=True)
        assert dry.rerun == in_range and dry.entries == 3
        assert [(await store.get(j)).run for j in ids] == [1] * 5  # type: ignore[union-attr]

        report = await replay(store, "diarize", start, end)
        assert report.rerun == in_range
        again = await replay(store, "diarize", start, end)
        assert again.rerun == [] and again.already_replayed == in_range
        for job_id in in_range:
            await until(lambda: finished(store, job_id))
    for job_id in ids:
        job = await store.get(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED
        assert job.run == (2 if job_id in in_range else 1)
        if job_id in in_range:
            assert stages_run(store, job_id, 2) == ["diarize", "transcribe"]
