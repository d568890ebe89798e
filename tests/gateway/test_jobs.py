"""Submitting, inspecting, long-polling, listing and deleting jobs over HTTP."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import httpx
import msgspec
import srt
import webvtt
from litestar import Litestar
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from redis.asyncio import Redis

from gateway.events import POLL_SECONDS, JobEvents, next_change
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import JobStatus
from stages.types import Result
from tests.support.gateway import completed_job, finished, job_events, submit, waiters
from tests.support.option_stages import GATEWAY_STAGES, RESULT
from tests.support.stages import submit as submit_job
from tests.support.workers import running_workers, until

JOB_FIELDS = {"id", "status", "progress", "stage_detail", "result", "error", "created_at",
              "updated_at", "stages", "options", "input_name", "run", "runs", "webhook"}


async def test_job_runs_to_completion(client: httpx.AsyncClient, store: JobStore) -> None:
    async with running_workers(store, GATEWAY_STAGES):
        response = await submit(client, language="en", num_speakers="2", diarize="true")
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert response.headers["location"] == f"/jobs/{job_id}"
        body = await finished(client, job_id)
    assert set(body) == JOB_FIELDS
    assert body["status"] == "completed" and body["progress"] == 100.0
    assert body["error"] is None and body["input_name"] == "talk.wav"
    assert msgspec.convert(body["result"], Result) == RESULT
    assert body["options"]["language"] == "en" and body["options"]["num_speakers"] == 2
    assert set(body["stages"]) == {"decode", "diarize", "transcribe"}
    decode = body["stages"]["decode"]
    assert decode["status"] == "done" and decode["worker"].startswith("decode")
    assert decode["started_at"] and decode["finished_at"]


async def test_result_formats_parse(client: httpx.AsyncClient, store: JobStore) -> None:
    job_id = await completed_job(client, store)
    url = f"/jobs/{job_id}/result"

    as_json = await client.get(url)
    assert as_json.status_code == 200
    assert msgspec.json.decode(as_json.content, type=Result) == RESULT

    subtitles = list(srt.parse((await client.get(url, params={"format": "srt"})).text))
    assert [s.content for s in subtitles] == [
        "SPEAKER_00: Hello there.", "SPEAKER_01: Hi <you> & me", "Bye"]
    assert subtitles[1].start.total_seconds() == 1.5
    assert subtitles[1].end.total_seconds() == 2.75

    vtt = await client.get(url, params={"format": "vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(vtt.text)).captions
    assert [c.start for c in captions] == ["00:00:00.000", "00:00:01.500", "00:00:02.750"]
    # The speaker in a voice tag (<v SPEAKER_00>), no longer a "SPEAKER_00: " text prefix.
    assert (captions[0].voice, captions[0].text) == ("SPEAKER_00", "Hello there.")
    assert (captions[1].voice, captions[1].raw_text) == (
        "SPEAKER_01", "<v SPEAKER_01>Hi &lt;you&gt; &amp; me")

    txt = (await client.get(url, params={"format": "txt"})).text
    # A paragraph per speaker turn, headed by the speaker and its start (was one
    # "[SPEAKER_00] text" line per segment).
    assert txt.split("\n\n") == ["SPEAKER_00 [00:00:00]\nHello there.",
                                 "SPEAKER_01 [00:00:01]\nHi <you> & me", "[00:00:02]\nBye\n"]

    rttm = (await client.get(url, params={"format": "rttm"})).text
    annotation = Annotation(uri=job_id)
    for line in rttm.splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[1] == job_id
        start, duration = float(fields[3]), float(fields[4])
        annotation[Span(start, start + duration)] = fields[7]
    assert annotation.labels() == ["SPEAKER_00", "SPEAKER_01"]
    assert annotation.label_duration("SPEAKER_01") == 1.25

    bad = await client.get(url, params={"format": "doc"})
    assert bad.status_code == 400 and "format" in bad.json()["error"]["message"]


async def test_rttm_loads_with_pyannote(client: httpx.AsyncClient, store: JobStore,
                                        tmp_path: Path) -> None:
    from pyannote.database.util import load_rttm

    job_id = await completed_job(client, store)
    path = tmp_path / "result.rttm"
    path.write_text((await client.get(f"/jobs/{job_id}/result?format=rttm")).text)
    annotation = load_rttm(path)[job_id]  # type: ignore[no-untyped-call]
    assert annotation.labels() == ["SPEAKER_00", "SPEAKER_01"]


async def test_result_is_409_until_completed(client: httpx.AsyncClient) -> None:
    job_id = (await submit(client)).json()["job_id"]
    response = await client.get(f"/jobs/{job_id}/result", params={"format": "srt"})
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "queued" in message and f"GET /jobs/{job_id}" in message


async def test_long_poll_wakes_on_progress(app: Litestar, client: httpx.AsyncClient,
                                           store: JobStore) -> None:
    job_id = (await submit(client)).json()["job_id"]
    poll = asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 30}))
    # The poll must be waiting before anything happens; it cannot answer before a change.
    await until(lambda: waiters(job_events(app), job_id) == 1, what="the poll to wait")
    started = time.monotonic()
    async with running_workers(store, GATEWAY_STAGES):
        body = (await poll).json()
    assert time.monotonic() - started < 10
    assert body["status"] != "queued" or body["stages"]["decode"]["status"] != "queued"


async def test_long_poll_answers_after_wait_without_change(client: httpx.AsyncClient) -> None:
    job_id = (await submit(client)).json()["job_id"]
    started = time.monotonic()
    body = (await client.get(f"/jobs/{job_id}", params={"wait": 0.5})).json()
    assert 0.4 < time.monotonic() - started < 5
    assert body["status"] == "queued"


async def subscribed_connections(redis: Redis) -> int:
    return sum(1 for c in await redis.client_list() if int(c["sub"]) or int(c["psub"]))


async def test_waiting_clients_share_one_subscription(app: Litestar, client: httpx.AsyncClient,
                                                      store: JobStore) -> None:
    await until(lambda: subscribed_connections(store.redis), what="the gateway to subscribe")
    before = await subscribed_connections(store.redis)
    job_ids = [(await submit(client)).json()["job_id"] for _ in range(4)]
    polls = [asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 30}))
             for job_id in job_ids for _ in range(5)]
    await until(lambda: sum(waiters(job_events(app), job_id) for job_id in job_ids) == 20,
                what="every poll to wait")
    assert not any(poll.done() for poll in polls)
    assert await subscribed_connections(store.redis) == before
    started = time.monotonic()
    async with running_workers(store, GATEWAY_STAGES):
        bodies = [(await poll).json() for poll in polls]
    assert time.monotonic() - started < 10
    assert all(body["status"] != "queued" or body["stages"]["decode"]["status"] != "queued"
               for body in bodies)


async def test_waiters_poll_while_there_is_no_subscription(store: JobStore) -> None:
    events = JobEvents(store)  # never run: as while Redis is unreachable
    job_id = await submit_job(store)
    job = await store.get(job_id)
    assert job is not None
    waiting = asyncio.create_task(next_change(events, job, 30))
    await until(lambda: waiters(events, job_id) == 1, what="the waiter to watch the job")
    started = time.monotonic()
    await store.cancel(job_id)
    changed = await waiting
    assert changed is not None and changed.status is JobStatus.CANCELLED
    assert time.monotonic() - started < POLL_SECONDS + 1


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/jobs/" + "0" * 32, "/jobs/not-an-id", "/jobs/" + "0" * 32 + "/result"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["status"] == 404
        assert "POST /jobs" in response.json()["error"]["message"]
    assert (await client.delete("/jobs/" + "0" * 32)).status_code == 404


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client)).json()["job_id"] for _ in range(3)]
    first = (await client.get("/jobs", params={"limit": 2})).json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    assert first["next_cursor"] is not None
    second = (await client.get("/jobs", params={"limit": 2,
                                                "cursor": first["next_cursor"]})).json()
    assert [j["id"] for j in second["jobs"]] == ids[:1]
    assert second["next_cursor"] is None
    assert set(second["jobs"][0]) == {"id", "status", "progress", "stage_detail", "error",
                                      "created_at", "updated_at", "input_name"}

    queued = (await client.get("/jobs", params={"status": "queued"})).json()
    assert len(queued["jobs"]) == 3
    assert (await client.get("/jobs", params={"status": "completed"})).json()["jobs"] == []
    for bad in ({"status": "bogus"}, {"limit": 0}, {"cursor": "x"}):
        response = await client.get("/jobs", params=bad)
        assert response.status_code == 400
        assert next(iter(bad)) in response.json()["error"]["message"]


async def test_delete_removes_every_key_and_file(client: httpx.AsyncClient, store: JobStore,
                                                 redis: Redis, settings: Settings) -> None:
    done = await completed_job(client, store)
    queued = (await submit(client)).json()["job_id"]
    for job_id in (done, queued):
        assert store.files(job_id).root.exists()
        response = await client.delete(f"/jobs/{job_id}")
        assert response.status_code == 200 and response.json() == {"deleted": job_id}
        assert not store.files(job_id).root.exists()
        keys = [k async for k in redis.scan_iter(f"{settings.key_prefix}:*")]
        assert not [k for k in keys if job_id in k]
        assert await redis.zscore(store.keys.jobs_index, job_id) is None
        assert (await client.get(f"/jobs/{job_id}")).status_code == 404
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 404


async def test_delete_cancels_a_running_job(client: httpx.AsyncClient, store: JobStore) -> None:
    async with running_workers(store, GATEWAY_STAGES):
        job_id = (await submit(client, model="wait")).json()["job_id"]
        await until(lambda: _decode_running(client, job_id), what="decode running")
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 200
        root = store.files(job_id).root
        assert not root.exists()
        # The stage stops at its next progress report and leaves nothing behind.
        await until(lambda: _stopped(store, root), what="stage stop")
    assert not root.exists()


async def _decode_running(client: httpx.AsyncClient, job_id: str) -> bool:
    body = (await client.get(f"/jobs/{job_id}")).json()
    return bool(body["stages"]["decode"]["status"] == "running")


async def _stopped(store: JobStore, root: Path) -> bool:
    info = await store.redis.xpending(store.keys.stream("decode"), store.keys.group("decode"))
    return not info["pending"] and not root.exists()
