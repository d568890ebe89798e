"""POST /jobs/{id}/rerun and the results of earlier runs, through HTTP."""

from __future__ import annotations

import httpx

from pipeline.store import JobStore
from tests.support.gateway import completed_job, finished, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers


async def test_rerun_from_diarize_with_a_new_speaker_count(client: httpx.AsyncClient,
                                                           store: JobStore) -> None:
    job_id = await completed_job(client, store)
    first = (await client.get(f"/jobs/{job_id}")).json()
    async with running_workers(store, GATEWAY_STAGES):
        response = await client.post(f"/jobs/{job_id}/rerun",
                                     json={"from_stage": "diarize", "num_speakers": 3})
        assert response.status_code == 202, response.text
        assert response.json()["run"] == 2
        assert response.headers["location"] == f"/jobs/{job_id}"
        job = await finished(client, job_id)
    assert job["status"] == "completed" and job["run"] == 2
    assert job["options"]["num_speakers"] == 3 and job["options"]["language"] == "en"
    # decode was not run again: its record is the first run's.
    assert job["stages"]["decode"] == first["stages"]["decode"]
    assert job["stages"]["diarize"]["started_at"] > first["stages"]["transcribe"]["finished_at"]
    [earlier] = job["runs"]
    assert earlier["run"] == 1 and earlier["options"]["num_speakers"] == 2
    assert earlier["stages"] == ["decode", "diarize", "transcribe"]
    assert earlier["result_url"] == f"/jobs/{job_id}/runs/1/result"
    for run in (1, 2):
        response = await client.get(f"/jobs/{job_id}/runs/{run}/result", params={"format": "srt"})
        assert response.status_code == 200 and "SPEAKER_00" in response.text
    assert (await client.get(f"/jobs/{job_id}/runs/3/result")).status_code == 404


async def test_rerun_errors(client: httpx.AsyncClient, store: JobStore) -> None:
    running = (await submit(client)).json()["job_id"]
    busy = await client.post(f"/jobs/{running}/rerun", json={"from_stage": "transcribe"})
    assert busy.status_code == 409
    assert "wait until it has finished" in busy.json()["error"]["message"]

    done = await completed_job(client, store)
    bad = await client.post(f"/jobs/{done}/rerun", json={"from_stage": "align"})
    assert bad.status_code == 400
    unfit = await client.post(f"/jobs/{done}/rerun",
                              json={"from_stage": "diarize", "min_speakers": 5,
                                    "max_speakers": 2})
    assert unfit.status_code == 400 and "min_speakers" in unfit.json()["error"]["message"]
    store.files(done).audio.unlink()
    expired = await client.post(f"/jobs/{done}/rerun", json={"from_stage": "diarize"})
    assert expired.status_code == 410 and "expired" in expired.json()["error"]["message"]
    missing = await client.post("/jobs/0123456789abcdef0123456789abcdef/rerun",
                                json={"from_stage": "decode"})
    assert missing.status_code == 404


async def test_a_rerun_s_options_are_checked_as_a_submission_s(
        client: httpx.AsyncClient, store: JobStore) -> None:
    done = await completed_job(client, store)
    for overrides, field, words in (
            ({"num_speakers": "two"}, "num_speakers", "a whole number from 1 to 64"),
            ({"task": "dance"}, "task", "transcribe or translate"),
            ({"model": "/etc"}, "model", "tiny.en, base"),
            ({"model": "tiny.en", "language": "de"}, "language", "en")):
        answer = await client.post(f"/jobs/{done}/rerun",
                                   json={"from_stage": "transcribe", **overrides})
        assert answer.status_code == 400, overrides
        error = answer.json()["error"]
        assert error["field"] == field and words in error["message"], error
    job = (await client.get(f"/jobs/{done}")).json()
    assert job["run"] == 1  # nothing was rerun
