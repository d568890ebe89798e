"""Voiceprints through HTTP: enrolling, listing, renaming, deleting, per-key libraries, and
jobs that identify their speakers against them.

The option stages (tests/support/option_stages.py) give every job the same two speakers'
embeddings, matched by the real identification code, so no model runs here; the real
models' part is in tests/stages/test_identify.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis

from pipeline.store import JobStore, now_iso
from pipeline.voiceprints import Voiceprint, VoiceprintStore
from stages.settings import Settings
from tests.support.gateway import completed_job, finished, serve, submit
from tests.support.option_stages import EMBEDDINGS, GATEWAY_STAGES
from tests.support.workers import running_workers


async def _enroll(client: httpx.AsyncClient, job_id: str, speaker: str,
                  name: str) -> dict[str, Any]:
    response = await client.post("/speakers", json={"name": name, "from_job": job_id,
                                                    "speaker": speaker})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _identified(client: httpx.AsyncClient, identify: str) -> dict[str, Any]:
    response = await submit(client, identify=identify)
    assert response.status_code == 202, response.text
    job = await finished(client, response.json()["job_id"])
    assert job["status"] == "completed", job
    result: dict[str, Any] = job["result"]
    return result


async def test_an_enrolled_speaker_is_named_in_a_new_job(client: httpx.AsyncClient,
                                                         store: JobStore) -> None:
    first = await completed_job(client, store)
    alice = await _enroll(client, first, "SPEAKER_01", "Alice")
    assert alice["name"] == "Alice" and alice["samples"] == 1 and alice["model"] == "offline"
    assert (await client.get("/speakers")).json() == [alice]
    assert (await client.get(f"/speakers/{alice['id']}")).json() == alice

    async with running_workers(store, GATEWAY_STAGES):
        result = await _identified(client, "true")
    assert result["speakers"] == ["Alice", "SPEAKER_00"]
    names = {n["label"]: n for n in result["speaker_names"]}
    assert names["SPEAKER_01"]["name"] == "Alice"
    assert names["SPEAKER_01"]["voiceprint"] == alice["id"]
    assert abs(names["SPEAKER_01"]["similarity"] - 1.0) < 1e-6
    # Its embedding is orthogonal to every voiceprint: it keeps its label.
    assert names["SPEAKER_00"] == {"label": "SPEAKER_00", "name": "SPEAKER_00",
                                   "similarity": None, "voiceprint": None}
    assert [s["speaker"] for s in result["segments"]] == ["SPEAKER_00", "Alice", None]


async def test_identify_is_checked_when_the_job_is_submitted(client: httpx.AsyncClient,
                                                             store: JobStore) -> None:
    none_yet = await submit(client, identify="true")
    assert none_yet.status_code == 400
    assert none_yet.json()["error"]["field"] == "identify"
    assert "POST /speakers" in none_yet.json()["error"]["message"]
    job_id = await completed_job(client, store)
    await _enroll(client, job_id, "SPEAKER_00", "Bob")
    undiarized = await submit(client, identify="true", diarize="false")
    assert undiarized.status_code == 400 and undiarized.json()["error"]["field"] == "identify"
    for value in ("Carol", "Bob,,Carol", "maybe"):
        refused = await submit(client, identify=value)
        assert refused.status_code == 400, value
        error = refused.json()["error"]
        assert error["field"] == "identify", value
    unknown = (await submit(client, identify="Carol")).json()["error"]["message"]
    assert "'Carol'" in unknown and "Bob" in unknown
    # Chosen by name (any case) or id; the rerun checks it as a submission does.
    rerun = await client.post(f"/jobs/{job_id}/rerun",
                              json={"from_stage": "diarize", "identify": ["Carol"]})
    assert rerun.status_code == 400 and rerun.json()["error"]["field"] == "identify"
    async with running_workers(store, GATEWAY_STAGES):
        rerun = await client.post(f"/jobs/{job_id}/rerun",
                                  json={"from_stage": "diarize", "identify": ["bob"]})
        assert rerun.status_code == 202, rerun.text
        job = await finished(client, job_id)
    assert job["options"]["identify"] == ["bob"]
    assert job["result"]["speakers"] == ["Bob", "SPEAKER_01"]


async def test_each_key_sees_only_its_own_voiceprints(settings: Settings,
                                                      store: JobStore) -> None:
    keyed = msgspec.structs.replace(settings, api_keys="key-one,key-two")
    async with serve(keyed) as client:
        client.headers["authorization"] = "Bearer key-one"
        job_id = await completed_job(client, store)
        alice = await _enroll(client, job_id, "SPEAKER_01", "Alice")
        other = {"authorization": "Bearer key-two"}
        assert (await client.get("/speakers", headers=other)).json() == []
        for method in ("GET", "PATCH", "DELETE"):
            response = await client.request(method, f"/speakers/{alice['id']}", headers=other,
                                            json={"name": "Eve"} if method == "PATCH" else None)
            assert response.status_code == 404, method
        # Nor can key two enroll from key one's job, or identify against Alice.
        stolen = await client.post("/speakers", headers=other, json={
            "name": "Eve", "from_job": job_id, "speaker": "SPEAKER_01"})
        assert stolen.status_code == 404
        refused = await submit(client, identify="Alice", headers=other)
        assert refused.status_code == 400 and "Alice" not in refused.json()["error"]["message"]
        # Key two's own voiceprint of the same name is another one, never key one's.
        client.headers["authorization"] = "Bearer key-two"
        own_job = await completed_job(client, store)
        own = await _enroll(client, own_job, "SPEAKER_00", "Alice")
        assert own["id"] != alice["id"]
        async with running_workers(store, GATEWAY_STAGES):
            result = await _identified(client, "true")
        named = {n["label"]: n for n in result["speaker_names"]}
        assert named["SPEAKER_00"]["voiceprint"] == own["id"]
        assert named["SPEAKER_01"]["name"] == "SPEAKER_01"


async def test_a_voiceprint_of_another_model_never_matches(client: httpx.AsyncClient,
                                                           store: JobStore) -> None:
    now = now_iso()
    # The very embedding of SPEAKER_00, but made by another diarization pipeline.
    await VoiceprintStore(store.redis, store.keys).put(None, Voiceprint(
        id="vp_foreign", name="Dora", model="pyannote/another-pipeline",
        samples=[EMBEDDINGS["SPEAKER_00"]], created_at=now, updated_at=now))
    async with running_workers(store, GATEWAY_STAGES):
        result = await _identified(client, "true")
    assert "Dora" not in result["speakers"]
    assert any("Dora" in w and "pyannote/another-pipeline" in w for w in result["warnings"])


async def test_deleting_a_voiceprint_removes_its_embedding(client: httpx.AsyncClient,
                                                           store: JobStore,
                                                           redis: Redis) -> None:
    job_id = await completed_job(client, store)
    alice = await _enroll(client, job_id, "SPEAKER_01", "Alice")
    bob = await _enroll(client, job_id, "SPEAKER_00", "Bob")
    deleted = await client.delete(f"/speakers/{alice['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": alice["id"]}
    assert (await client.get(f"/speakers/{alice['id']}")).status_code == 404
    assert (await client.delete(f"/speakers/{alice['id']}")).status_code == 404
    stored = await redis.hgetall(store.keys.voiceprints(None))
    assert list(stored) == [bob["id"]]
    async with running_workers(store, GATEWAY_STAGES):
        result = await _identified(client, "true")
    assert result["speakers"] == ["Bob", "SPEAKER_01"]


async def test_a_voiceprint_is_renamed_and_grows_by_samples(client: httpx.AsyncClient,
                                                            store: JobStore) -> None:
    job_id = await completed_job(client, store)
    alice = await _enroll(client, job_id, "SPEAKER_01", "Alice")
    taken = await client.post("/speakers", json={"name": "alice", "from_job": job_id,
                                                 "speaker": "SPEAKER_00"})
    assert taken.status_code == 409 and alice["id"] in taken.json()["error"]["message"]
    renamed = await client.patch(f"/speakers/{alice['id']}", json={"name": "Alice Smith"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Alice Smith"
    grown = await client.patch(f"/speakers/{alice['id']}",
                               json={"from_job": job_id, "speaker": "SPEAKER_01"})
    assert grown.status_code == 200 and grown.json()["samples"] == 2
    for body, field in (({"name": ""}, "name"), ({"colour": "red"}, "colour"),
                        ({"from_job": job_id, "speaker": "SPEAKER_09"}, "speaker")):
        refused = await client.patch(f"/speakers/{alice['id']}", json=body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["field"] == field, body
    assert (await client.get(f"/speakers/{alice['id']}")).json()["samples"] == 2


async def test_renaming_with_enroll_makes_or_extends_voiceprints(client: httpx.AsyncClient,
                                                                 store: JobStore) -> None:
    first = await completed_job(client, store)
    response = await client.patch(f"/jobs/{first}/speakers",
                                  json={"SPEAKER_01": "Carol", "enroll": True})
    assert response.status_code == 200, response.text
    [carol] = (await client.get("/speakers")).json()
    assert carol["name"] == "Carol" and carol["samples"] == 1
    names = {n["label"]: n for n in response.json()["speaker_names"]}
    assert names["SPEAKER_01"]["voiceprint"] == carol["id"]
    second = await completed_job(client, store)
    again = await client.patch(f"/jobs/{second}/speakers",
                               json={"SPEAKER_01": "Carol", "enroll": True})
    assert again.status_code == 200, again.text
    assert (await client.get(f"/speakers/{carol['id']}")).json()["samples"] == 2
    bad = await client.patch(f"/jobs/{second}/speakers",
                             json={"SPEAKER_00": "Dan", "enroll": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "enroll"


async def test_a_sample_upload_is_enrolled_through_the_pipeline(client: httpx.AsyncClient,
                                                                store: JobStore) -> None:
    async with running_workers(store, GATEWAY_STAGES):
        response = await submit(client, "/speakers", name="Erin")
    assert response.status_code == 201, response.text
    erin = response.json()
    assert erin["name"] == "Erin" and erin["samples"] == 1
    assert response.headers["location"] == f"/speakers/{erin['id']}"
    # The sample's job is one of the caller's, asked for one speaker.
    [job] = (await client.get("/jobs")).json()["jobs"]
    assert (await client.get(f"/jobs/{job['id']}")).json()["options"]["num_speakers"] == 1
    nameless = await submit(client, "/speakers")
    assert nameless.status_code == 400 and nameless.json()["error"]["field"] == "name"
