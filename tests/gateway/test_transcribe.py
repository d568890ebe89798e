"""POST /transcribe: waits for the result, refuses long audio, times out to 202."""

from __future__ import annotations

import time

import msgspec

from pipeline.store import JobStore
from stages.settings import Settings
from stages.types import Result
from tests.support.audio import silent_wav
from tests.support.gateway import finished, serve, submit
from tests.support.option_stages import GATEWAY_STAGES, RESULT
from tests.support.workers import running_workers


async def test_returns_the_result(settings: Settings, store: JobStore) -> None:
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        response = await submit(client, "/transcribe", language="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert msgspec.convert(body["result"], Result) == RESULT


async def test_times_out_to_202(settings: Settings, store: JobStore) -> None:
    quick = msgspec.structs.replace(settings, sync_timeout_seconds=0.5)
    async with serve(quick) as client:
        started = time.monotonic()
        response = await submit(client, "/transcribe")
        assert time.monotonic() - started < 10
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        assert response.json() == {"job_id": job_id, "status": "queued"}
        assert response.headers["location"] == f"/jobs/{job_id}"
        # Nothing is lost: the job goes on once a worker is there.
        async with running_workers(store, GATEWAY_STAGES):
            body = await finished(client, job_id, timeout=60)
        assert body["status"] == "completed", body
        assert body["result"] is not None


async def test_failed_job_is_422(settings: Settings, store: JobStore) -> None:
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        response = await submit(client, "/transcribe", model="fail")
    assert response.status_code == 422
    assert "diarize: the input is not usable" in response.json()["error"]["message"]


async def test_long_audio_is_413_with_a_pointer_to_jobs(settings: Settings) -> None:
    short = msgspec.structs.replace(settings, sync_max_seconds=1.0)
    async with serve(short) as client:
        response = await submit(client, "/transcribe", audio=silent_wav(seconds=2))
        assert response.status_code == 413
        assert "POST /jobs" in response.json()["error"]["message"]
        assert (await submit(client, "/jobs", audio=silent_wav(seconds=2))).status_code == 202
