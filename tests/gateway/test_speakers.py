"""Speakers' names through HTTP: renaming a finished job's speakers."""

from __future__ import annotations

import httpx
import msgspec
import srt

from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.gateway import completed_job, serve


async def _formats(client: httpx.AsyncClient, job_id: str) -> dict[str, str]:
    return {f: (await client.get(f"/jobs/{job_id}/result", params={"format": f})).text
            for f in ("srt", "vtt", "txt", "rttm")}


async def test_a_rename_shows_in_every_format(client: httpx.AsyncClient,
                                              store: JobStore) -> None:
    job_id = await completed_job(client, store)
    before = await _formats(client, job_id)
    response = await client.patch(f"/jobs/{job_id}/speakers", json={"SPEAKER_01": "Alice"})
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered == (await client.get(f"/jobs/{job_id}/result")).json()
    assert sorted(answered["speakers"]) == ["Alice", "SPEAKER_00"]
    assert {(s["label"], s["name"]) for s in answered["speaker_names"]} == {
        ("SPEAKER_00", "SPEAKER_00"), ("SPEAKER_01", "Alice")}
    assert [s["speaker"] for s in answered["segments"]] == ["SPEAKER_00", "Alice", None]
    assert (await client.get(f"/jobs/{job_id}")).json()["result"] == answered

    after = await _formats(client, job_id)
    for name, text in after.items():
        assert "SPEAKER_01" in before[name] and "SPEAKER_01" not in text, name
        assert "Alice" in text and "SPEAKER_00" in text, name
    cues = list(srt.parse(after["srt"]))
    assert cues[1].content.startswith("Alice: ")
    assert "<v Alice>Hi &lt;you&gt; &amp; me" in after["vtt"]
    assert after["txt"].startswith("SPEAKER_00 [00:00:00]\nHello there.\n\nAlice [00:00:01]")
    assert f"SPEAKER {job_id} 1 1.500 1.250 <NA> <NA> Alice <NA> <NA>" in after["rttm"]

    # Named again by its current name or by its label; names with spaces stay one RTTM field.
    again = await client.patch(f"/jobs/{job_id}/speakers", json={"Alice": "Alice Smith"})
    assert again.status_code == 200, again.text
    assert "Alice_Smith" in (await _formats(client, job_id))["rttm"]
    third = await client.patch(f"/jobs/{job_id}/speakers",
                               json={"SPEAKER_01": "Bob", "SPEAKER_00": "Alice Smith"})
    assert third.status_code == 200, third.text
    assert [s["speaker"] for s in third.json()["segments"]] == ["Alice Smith", "Bob", None]


async def test_bad_renames_are_refused_naming_the_label(client: httpx.AsyncClient,
                                                        store: JobStore) -> None:
    job_id = await completed_job(client, store)
    url = f"/jobs/{job_id}/speakers"
    response = await client.patch(url, json={"SPEAKER_07": "Alice"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "SPEAKER_07"
    assert "SPEAKER_07" in error["message"] and "SPEAKER_00, SPEAKER_01" in error["message"]
    for body, field in (({"SPEAKER_00": ""}, "SPEAKER_00"), ({"SPEAKER_00": 3}, "SPEAKER_00"),
                        ({"SPEAKER_00": "Alice", "SPEAKER_01": "Alice"}, "SPEAKER_01"),
                        ({"SPEAKER_00": "SPEAKER_01"}, "SPEAKER_00")):
        response = await client.patch(url, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["field"] == field, body
    assert (await client.patch(url, json={})).status_code == 400
    # Nothing was changed by the refused ones.
    assert "SPEAKER_01" in (await client.get(f"/jobs/{job_id}/result",
                                             params={"format": "txt"})).text


async def test_another_keys_job_cannot_be_renamed(settings: Settings, store: JobStore) -> None:
    keyed = msgspec.structs.replace(settings, api_keys="key-one,key-two")
    async with serve(keyed) as client:
        client.headers["authorization"] = "Bearer key-one"
        job_id = await completed_job(client, store)
        other = await client.patch(f"/jobs/{job_id}/speakers", json={"SPEAKER_01": "Eve"},
                                   headers={"authorization": "Bearer key-two"})
        assert other.status_code == 404
        unauthenticated = await client.patch(f"/jobs/{job_id}/speakers",
                                             json={"SPEAKER_01": "Eve"},
                                             headers={"authorization": ""})
        assert unauthenticated.status_code == 401
        mine = await client.patch(f"/jobs/{job_id}/speakers", json={"SPEAKER_01": "Alice"})
        assert mine.status_code == 200
