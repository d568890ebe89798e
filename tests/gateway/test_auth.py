"""API keys: required everywhere but /health once set; jobs are private to their key."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from redis.asyncio import Redis

from pipeline.errors import ConfigError
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
        # /metrics counts every key's jobs: a job key is not enough (ADMIN_API_KEYS).
        assert (await client.get("/metrics", headers=K1)).status_code == 401

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


OPS = {"Authorization": "Bearer ops-key"}


async def test_operator_views_need_an_admin_key(settings: Settings) -> None:
    keyed = msgspec.structs.replace(settings, api_keys="key-one, key-two",
                                    admin_api_keys="ops-key")
    async with serve(keyed) as client:
        full = await client.get("/health", headers=OPS)
        assert {"status", "stages", "problems", "storage"} <= full.json().keys()
        for headers in ({}, K1, {"Authorization": "Bearer wrong"}):
            # Up or down, and nothing else: no stage, queue or disk details.
            minimal = await client.get("/health", headers=headers)
            assert minimal.status_code == full.status_code
            assert minimal.json() == {"status": full.json()["status"]}
        for headers in ({}, K1, {"Authorization": "Bearer wrong"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert "ADMIN_API_KEYS" in refused.json()["error"]["message"]
        scraped = await client.get("/metrics", headers=OPS)
        assert scraped.status_code == 200 and "stt_jobs{" in scraped.text
        # An operator key is not a job key.
        assert (await client.get("/jobs", headers=OPS)).status_code == 401


async def test_without_api_keys_everything_is_open(settings: Settings) -> None:
    async with serve(settings) as client:
        assert "stages" in (await client.get("/health")).json()
        assert (await client.get("/metrics")).status_code == 200


def test_admin_keys_need_api_keys() -> None:
    with pytest.raises(ConfigError, match="ADMIN_API_KEYS needs API_KEYS"):
        Settings.from_env({"ADMIN_API_KEYS": "ops-key"})


async def _commands_for(redis: Redis, job_id: str, request: object) -> list[str]:
    """The commands the server received that name ``job_id`` while ``request`` ran, with the
    id written as ID: read from MONITOR up to a marker sent after the request."""
    marker = f"end-{uuid.uuid4().hex}"
    seen: list[str] = []
    async with redis.monitor() as monitor:
        await request  # type: ignore[misc]
        await redis.echo(marker)
        async with asyncio.timeout(10):
            for _ in range(10_000):  # bounded: the marker comes after the request's commands
                command = (await monitor.next_command())["command"]
                if marker in command:
                    return seen
                if job_id in command:
                    seen.append(command.replace(job_id, "ID"))
    raise AssertionError("the marker never came back")


async def test_unknown_and_foreign_ids_cost_the_same_commands(settings: Settings,
                                                              redis: Redis) -> None:
    async with serve(msgspec.structs.replace(settings, api_keys="key-one, key-two")) as client:
        theirs = (await submit(client, headers=K1)).json()["job_id"]
        unknown = "e" * 32
        for method, suffix, body in (("GET", "", None), ("GET", "/result", None),
                                     ("DELETE", "", None), ("POST", "/rerun", {})):
            foreign = await _commands_for(redis, theirs, client.request(
                method, f"/jobs/{theirs}{suffix}", headers=K2, json=body))
            missing = await _commands_for(redis, unknown, client.request(
                method, f"/jobs/{unknown}{suffix}", headers=K2, json=body))
            # One read of the owner field only, for both: not the whole job for one of them.
            assert foreign == missing, (method, suffix)
            assert [c.split()[0].upper() for c in foreign] == ["HGET"], foreign
