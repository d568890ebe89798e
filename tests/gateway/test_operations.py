"""Health, metrics, schema, backpressure, error bodies and the file janitor."""

from __future__ import annotations

import os
import time

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from pipeline.embedded import free_port
from pipeline.files import uploads_dir
from pipeline.janitor import sweep
from pipeline.store import JobStore, new_job_id
from stages.settings import Settings
from tests.support.gateway import finished, serve, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers, until


async def test_health_needs_a_live_worker_per_stage(client: httpx.AsyncClient,
                                                    store: JobStore) -> None:
    down = await client.get("/health")
    assert down.status_code == 503
    assert down.json()["redis"] is True
    assert len(down.json()["problems"]) == 3
    async with running_workers(store, GATEWAY_STAGES):
        await submit(client)

        async def healthy() -> bool:
            return (await client.get("/health")).status_code == 200

        # A worker joins its group with its first read, a moment after it starts.
        await until(healthy, what="every stage to have a live worker")
        body = (await client.get("/health")).json()
    assert body["status"] == "ok" and body["problems"] == []
    for stage in ("decode", "diarize", "transcribe"):
        assert body["stages"][stage]["consumers"] == 1
        assert set(body["stages"][stage]) == {"consumers", "pending", "lag", "dead_letters"}


async def test_health_without_redis_is_503(settings: Settings) -> None:
    nowhere = msgspec.structs.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(nowhere) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["redis"] is False
    assert "REDIS_URL" in response.json()["problems"][0]


async def test_backpressure_is_503_with_retry_after(settings: Settings) -> None:
    tight = msgspec.structs.replace(settings, max_queued_jobs=2)
    async with serve(tight) as client:
        for _ in range(2):
            assert (await submit(client)).status_code == 202
        for path in ("/jobs", "/transcribe"):
            refused = await submit(client, path)
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            assert "try again" in refused.json()["error"]["message"]


async def test_metrics(client: httpx.AsyncClient, store: JobStore) -> None:
    async with running_workers(store, GATEWAY_STAGES):
        job_id = (await submit(client)).json()["job_id"]
        await finished(client, job_id)
        failed = (await submit(client, model="fail")).json()["job_id"]
        await finished(client, failed)
        await submit(client, model="wait")
        response = await client.get("/metrics")
        # The waiting job holds the decode worker; let it go so the workers can stop.
        waiting = [p for p in store.settings.jobs_path.iterdir() if len(p.name) == 32]
        for folder in waiting:
            (folder / "go").touch()
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    jobs = {s.labels["status"]: s.value for s in families["stt_jobs"].samples}
    assert jobs["completed"] == 1 and jobs["failed"] == 1
    assert jobs["decoding"] + jobs["queued"] == 1
    workers = {s.labels["stage"]: s.value for s in families["stt_live_workers"].samples}
    assert workers == {"decode": 1, "diarize": 1, "transcribe": 1}
    assert {"stt_queue_lag", "stt_queue_pending", "stt_dead_letters"} <= set(families)
    counts = {s.labels["stage"]: s.value for s in families["stt_stage_duration_seconds"].samples
              if s.name.endswith("_count")}
    # Every stage run that ended done: the failed job was decoded too.
    assert counts == {"decode": 2, "diarize": 1, "transcribe": 1}


async def test_schema_and_docs(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result", "/transcribe", "/health",
            "/metrics"} <= set(schema["paths"])
    assert (await client.get("/schema")).status_code == 200


async def test_every_error_is_one_json_shape(client: httpx.AsyncClient) -> None:
    for method, path, status in (("GET", "/nowhere", 404), ("PUT", "/jobs", 405),
                                 ("GET", "/jobs?limit=x", 400)):
        response = await client.request(method, path)
        assert response.status_code == status
        body = response.json()
        assert set(body) == {"error"} and body["error"]["status"] == status
        assert body["error"]["message"]


async def test_janitor_removes_expired_files_only(store: JobStore) -> None:
    root = store.settings.jobs_path
    old = time.time() - 2 * 3600
    orphan, young_orphan = store.files(new_job_id()), store.files(new_job_id())
    live_id = new_job_id()
    live = store.files(live_id)
    for files in (orphan, young_orphan, live):
        files.create()
        files.input.write_bytes(b"x")
    await store.redis.hset(store.keys.job(live_id), "id", live_id)
    uploads_dir(root).mkdir()
    stale, fresh = uploads_dir(root) / "a.part", uploads_dir(root) / "b.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    other = root / ".valkey"
    other.mkdir()
    for path in (orphan.root, live.root, stale, other):
        os.utime(path, (old, old))
    assert await sweep(store) == 2
    assert not orphan.root.exists() and not stale.exists()
    assert young_orphan.root.exists() and live.root.exists() and fresh.exists()
    assert other.exists()
