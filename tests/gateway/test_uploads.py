"""The upload path: limits, media checks, option validation, idempotency, file names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
from redis.asyncio import Redis

from gateway.uploads import display_name
from pipeline.files import uploads_dir
from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.gateway import serve, submit

BOUNDARY = "gatewaytestboundary"


def multipart(audio: bytes, filename: str = "talk.wav") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + audio + (
            f"\r\n--{BOUNDARY}--\r\n").encode()


async def chunks(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


def no_leftovers(settings: Settings) -> bool:
    folder = uploads_dir(settings.jobs_path)
    jobs = [p for p in settings.jobs_path.iterdir() if p.name != ".uploads"] \
        if settings.jobs_path.exists() else []
    return not (folder.exists() and any(folder.iterdir())) and not [
        p for p in jobs if len(p.name) == 32]


async def test_too_large_with_content_length(settings: Settings) -> None:
    small = msgspec.structs.replace(settings, max_upload_bytes=4096)
    async with serve(small) as client:
        response = await submit(client, audio=silent_wav(seconds=4))  # 128 KB
        assert response.request.headers["content-length"]
    assert response.status_code == 413
    assert "MAX_UPLOAD_BYTES" in response.json()["error"]["message"]
    assert no_leftovers(small)


async def test_too_large_chunked_without_content_length(settings: Settings) -> None:
    small = msgspec.structs.replace(settings, max_upload_bytes=4096)
    async with serve(small) as client:
        # Within FORM_OVERHEAD of the limit as a whole body, so only counting the file's
        # bytes while streaming can catch it.
        body = multipart(silent_wav(seconds=0.5))  # 16 KB
        response = await client.post(
            "/jobs", content=chunks(body),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 413
        # A streamed upload within the limit is accepted.
        ok = await client.post(
            "/jobs", content=chunks(multipart(silent_wav(seconds=0.1))),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert ok.status_code == 202, ok.text
    assert response.json()["error"]["status"] == 413
    assert not any(uploads_dir(small.jobs_path).iterdir())


async def test_not_audio_is_415(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await submit(client, audio=b"this is not audio at all\n" * 100)
    assert response.status_code == 415
    message = response.json()["error"]["message"]
    assert "not an audio file" in message and "upload an audio file" in message
    not_form = await client.post("/jobs", content=silent_wav(),
                                 headers={"content-type": "audio/wav"})
    assert not_form.status_code == 415
    assert "multipart/form-data" in not_form.json()["error"]["message"]
    assert no_leftovers(settings)


async def test_missing_file_and_malformed_form_are_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", data={"language": "en"},
                                 files={"other": ("x", b"y")})
    assert response.status_code == 400
    assert "'file'" in response.json()["error"]["message"]
    truncated = multipart(silent_wav())[:-10]
    broken = await client.post(
        "/jobs", content=truncated,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert broken.status_code == 400


async def test_bad_options_name_the_field(client: httpx.AsyncClient, settings: Settings) -> None:
    cases: dict[str, dict[str, str]] = {
        "num_speakers": {"num_speakers": "abc"},
        "max_speakers": {"max_speakers": "100"},
        "language": {"language": "English"},
        "task": {"task": "summarise"},
        "diarize": {"diarize": "maybe"},
        "colour": {"colour": "blue"},
        "min_speakers": {"min_speakers": "3", "max_speakers": "2"},
    }
    for field, fields in cases.items():
        response = await submit(client, **fields)  # type: ignore[arg-type]
        assert response.status_code == 400, (field, response.text)
        assert field in response.json()["error"]["message"], field
    assert no_leftovers(settings)


async def test_options_are_stored(client: httpx.AsyncClient) -> None:
    response = await submit(client, language="de", task="translate", min_speakers="1",
                            max_speakers="3", model="base", diarize="false")
    assert response.status_code == 202, response.text
    body = (await client.get(response.headers["location"])).json()
    assert body["options"] == {"language": "de", "task": "translate", "num_speakers": None,
                               "min_speakers": 1, "max_speakers": 3, "model": "base",
                               "audio_stream": None, "diarize": False, "prompt": None,
                               "hotwords": None, "identify": False,
                               "callback_url": None, "callback_events": "job"}
    assert body["stages"]["diarize"]["status"] == "skipped"


async def test_idempotency_key_returns_the_same_job(client: httpx.AsyncClient,
                                                    settings: Settings) -> None:
    first = await submit(client, headers={"Idempotency-Key": "upload-1"})
    again = await submit(client, headers={"Idempotency-Key": "upload-1"})
    other = await submit(client, headers={"Idempotency-Key": "upload-2"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"] != other.json()["job_id"]
    folders = sorted(p.name for p in settings.jobs_path.iterdir() if len(p.name) == 32)
    assert folders == sorted({first.json()["job_id"], other.json()["job_id"]})
    assert len((await client.get("/jobs")).json()["jobs"]) == 2


async def test_client_file_name_is_never_a_path(client: httpx.AsyncClient,
                                                store: JobStore, redis: Redis) -> None:
    response = await client.post(
        "/jobs", files={"file": ("../../etc/evil name.wav", silent_wav(), "audio/wav")})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert (await client.get(f"/jobs/{job_id}")).json()["input_name"] == "evil name.wav"
    assert store.files(job_id).input.read_bytes() == silent_wav()
    assert not (store.settings.jobs_path.parent / "etc").exists()


def test_display_name_drops_paths_and_control_characters() -> None:
    assert display_name("C:\\Users\\me\\talk.wav") == "talk.wav"
    assert display_name("../a/b\x07\nc.mp3") == "bc.mp3"
    assert display_name("../") is None
    assert len(display_name("x" * 1000) or "") == 200


async def test_upload_beyond_litestars_default_body_limit_streams_to_disk(
        client: httpx.AsyncClient, store: JobStore) -> None:
    audio = silent_wav(seconds=400)  # 12.8 MB: above Litestar's 10 MB default body limit
    response = await client.post(
        "/jobs", content=chunks(multipart(audio), size=256 * 1024),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert response.status_code == 202, response.text
    assert store.files(response.json()["job_id"]).input.read_bytes() == audio


async def test_audio_stream_the_file_lacks(settings: Settings, tmp_path: Path) -> None:
    from tests.support.media_gen import encode_streams, tone

    tracks = encode_streams(tmp_path / "tracks.mkv", [tone(1.0, 48000)] * 2, 48000,
                            "libopus", "matroska").read_bytes()
    async with serve(settings) as client:
        refused = await submit(client, audio=tracks, audio_stream="2")
        accepted = await submit(client, audio=tracks, audio_stream="1")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["field"] == "audio_stream"
    assert error["message"] == "audio_stream=2, but the file has 2 audio streams: use 0 to 1"
    assert accepted.status_code == 202, accepted.text
