"""Scenarios 6-8: upload limits and the gateway's memory, job ids under API keys, a burst."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.system.conftest import Service, submit

pytestmark = pytest.mark.system

GiB = 1024**3
BOUNDARY = "stt-test-boundary"


async def multipart_body(size: int, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A multipart form whose file part is ``size`` bytes, produced as it is sent."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    block = b"\0" * chunk
    sent = 0
    while sent < size:
        part = block[: min(chunk, size - sent)]
        sent += len(part)
        yield part
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_length(size: int) -> int:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
    return len(head) + size + len(f"\r\n--{BOUNDARY}--\r\n")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmHWM"].split()[0]) / 1024


async def test_one_byte_over_the_limit_and_a_gigabyte_stream(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(max_upload_bytes=GiB, workers=0)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    over = GiB + 1
    declared = await service.http.post(
        "/jobs", content=multipart_body(over),
        headers={**headers, "Content-Length": str(multipart_length(over))})
    assert declared.status_code == 413, declared.text
    chunked = await service.http.post("/jobs", content=multipart_body(over), headers=headers)
    assert chunked.status_code == 413, chunked.text
    assert "MAX_UPLOAD_BYTES" in chunked.json()["error"]["message"]
    assert not list((service.settings.jobs_path / ".uploads").glob("*"))
    peak = peak_rss_mb(service.gateway.pid)
    print(f"gateway peak RSS after streaming 1 GiB: {peak:.0f} MB")
    assert peak < 150


async def test_job_ids_cannot_be_guessed_or_crossed(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(api_keys="key-a,key-b", admin_api_keys="ops")
    a = {"Authorization": "Bearer key-a"}
    b = {"Authorization": "Bearer key-b"}
    job_b = (await submit(service, headers=b)).json()["job_id"]
    await service.wait_finished(job_b, headers=b)

    limit = asyncio.Semaphore(32)

    async def probe(job_id: str) -> int:
        async with limit:
            return (await service.http.get(f"/jobs/{job_id}", headers=a)).status_code

    codes = await asyncio.gather(*(probe(secrets.token_hex(16)) for _ in range(10_000)))
    assert set(codes) == {404}
    for method, path in (("GET", f"/jobs/{job_b}"), ("GET", f"/jobs/{job_b}/result"),
                         ("GET", f"/jobs/{job_b}/runs/1/result"),
                         ("POST", f"/jobs/{job_b}/rerun"), ("DELETE", f"/jobs/{job_b}")):
        kwargs = {"json": {"from_stage": "decode"}} if method == "POST" else {}
        response = await service.http.request(method, path, headers=a, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        # The same answer as for an id that never existed: nothing tells them apart.
        assert "never existed" in response.json()["error"]["message"]
    listed = (await service.http.get("/jobs", headers=a)).json()["jobs"]
    assert job_b not in {j["id"] for j in listed}
    assert (await service.http.get(f"/jobs/{job_b}", headers=b)).status_code == 200
    assert (await service.http.get(f"/jobs/{job_b}")).status_code == 401
    # Every key's counts and the queues are the operators' (ADMIN_API_KEYS) only.
    assert (await service.http.get("/metrics", headers=a)).status_code == 401
    ops = {"Authorization": "Bearer ops"}
    assert "stt_jobs{" in (await service.http.get("/metrics", headers=ops)).text
    for headers in ({}, a):
        assert (await service.http.get("/health", headers=headers)).json().keys() == {"status"}
    assert "stages" in (await service.http.get("/health", headers=ops)).json()


async def test_a_burst_of_200_jobs(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(max_queued_jobs=150, workers=0)
    limit = asyncio.Semaphore(16)

    async def one() -> httpx.Response:
        async with limit:
            return await submit(service)

    responses = await asyncio.gather(*(one() for _ in range(200)))
    accepted = [r.json()["job_id"] for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code == 503]
    assert len(accepted) + len(refused) == 200
    assert len(accepted) == 150 and refused
    assert all(int(r.headers["retry-after"]) > 0 for r in refused)

    health = (await service.http.get("/health")).json()
    assert health["stages"]["decode"]["lag"] == len(accepted)
    metrics = (await service.http.get("/metrics")).text
    lag = {s.labels["stage"]: s.value for f in text_string_to_metric_families(metrics)
           for s in f.samples if s.name == "stt_queue_lag"}
    assert lag["decode"] == len(accepted)

    for stage in ("decode", "diarize", "transcribe"):
        for i in range(2):
            service.start_worker(stage, f"{stage}-{i}")
    for job_id in accepted:
        assert (await service.wait_finished(job_id, timeout=180))["status"] == "completed"
