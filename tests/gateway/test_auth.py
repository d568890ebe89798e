"""API keys: required everywhere but /health once set; jobs are private to their key."""

from __future__ import annotations

import msgspec

from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.gateway import serve, submit

K1 = {"Authorization": "Bearer key-one"}
K2 = {"Authorization": "Bearer key-two"}


async def test_keys_are_required_and_jobs_private(settings: Settings, store: JobStore) -> None:
    async with serve(msgspec.structs.replace(settings, api_keys="key-one, key-two")) as client:
        for path in ("/jobs", "/metrics", "/schema/openapi.json", "/jobs/" + "0" * 32):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "key-one"}):
                response = await client.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["error"]["status"] == 401
                assert "Authorization: Bearer" in response.json()["error"]["message"]
        assert (await submit(client)).status_code == 401
        assert (await client.get("/health")).status_code in (200, 503)
        assert (await client.get("/schema/openapi.json", headers=K1)).status_code == 200
        assert (await client.get("/metrics", headers=K1)).status_code == 200

        created = await submit(client, headers=K1)
        assert created.status_code == 202
        job_id = created.json()["job_id"]
        job = await store.get(job_id)
        assert job is not None and job.owner and "key-one" not in job.owner

        assert (await client.get(f"/jobs/{job_id}", headers=K1)).status_code == 200
        unknown = "f" * 32
        for method, suffix in (("GET", ""), ("GET", "/result"), ("DELETE", "")):
            theirs = await client.request(method, f"/jobs/{job_id}{suffix}", headers=K2)
            missing = await client.request(method, f"/jobs/{unknown}{suffix}", headers=K2)
            assert theirs.status_code == missing.status_code == 404
            assert theirs.text.replace(job_id, unknown) == missing.text
        assert (await client.get("/jobs", headers=K2)).json()["jobs"] == []
        assert [j["id"] for j in (await client.get("/jobs", headers=K1)).json()["jobs"]] == [job_id]

        # The same Idempotency-Key under another key is another client's: a new job.
        a = await submit(client, headers={**K1, "Idempotency-Key": "same"})
        b = await submit(client, headers={**K2, "Idempotency-Key": "same"})
        assert a.json()["job_id"] != b.json()["job_id"]
        assert (await client.delete(f"/jobs/{job_id}", headers=K1)).status_code == 200
