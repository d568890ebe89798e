"""A job's audio for players: whole, in byte ranges, and private to its key."""

from __future__ import annotations

import httpx
import msgspec

from pipeline.store import JobStore
from stages import artifacts
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.gateway import serve, submit

K1 = {"Authorization": "Bearer key-one"}
K2 = {"Authorization": "Bearer key-two"}


async def test_the_upload_whole_and_in_ranges(client: httpx.AsyncClient) -> None:
    upload = silent_wav(0.5)[:-7] + b"0123456"  # a recognisable end
    job_id = (await submit(client, audio=upload)).json()["job_id"]
    url = f"/jobs/{job_id}/audio"

    whole = await client.get(url)
    assert whole.status_code == 200 and whole.content == upload
    assert whole.headers["accept-ranges"] == "bytes"
    assert int(whole.headers["content-length"]) == len(upload)

    size = len(upload)
    for asked, first, last in (("bytes=0-99", 0, 99), (f"bytes=100-{size + 50}", 100, size - 1),
                               ("bytes=4000-", 4000, size - 1), ("bytes=-7", size - 7, size - 1)):
        part = await client.get(url, headers={"Range": asked})
        assert part.status_code == 206, (asked, part.text)
        assert part.content == upload[first:last + 1], asked
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", asked
        assert int(part.headers["content-length"]) == last - first + 1
    assert (await client.get(url, headers={"Range": "bytes=-7"})).content == b"0123456"

    for bad in (f"bytes={size}-", "bytes=50-10", "bytes=-", "bytes=x-1"):
        refused = await client.get(url, headers={"Range": bad})
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{size}"
        error = refused.json()["error"]
        assert error["status"] == 416 and error["field"] == "Range", bad
    # Another unit, or several ranges, may be ignored: the whole file.
    for ignored in ("items=0-1", "bytes=0-1,5-9"):
        assert (await client.get(url, headers={"Range": ignored})).status_code == 200


async def test_the_decoded_audio_once_there(client: httpx.AsyncClient, store: JobStore) -> None:
    job_id = (await submit(client)).json()["job_id"]
    decoded = silent_wav(0.25)
    store.files(job_id).artifact(artifacts.AUDIO).write_bytes(decoded)
    response = await client.get(f"/jobs/{job_id}/audio")
    assert response.status_code == 200 and response.content == decoded
    assert response.headers["content-type"] == "audio/wav"


async def test_only_its_key_hears_a_job(settings: Settings) -> None:
    async with serve(msgspec.structs.replace(settings, api_keys="key-one, key-two")) as client:
        job_id = (await submit(client, headers=K1)).json()["job_id"]
        url = f"/jobs/{job_id}/audio"
        assert (await client.get(url)).status_code == 401
        mine = await client.get(url, headers={**K1, "Range": "bytes=0-9"})
        assert mine.status_code == 206 and len(mine.content) == 10
        theirs = await client.get(url, headers={**K2, "Range": "bytes=0-9"})
        unknown = await client.get(f"/jobs/{'0' * 32}/audio", headers=K2)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["error"]["message"].replace(job_id, "0" * 32) == \
            unknown.json()["error"]["message"]
