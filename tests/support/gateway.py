"""A real gateway for tests: uvicorn serving the app on a free port, in the test's event
loop, and what tests ask of it over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from litestar import Litestar

from gateway import create_app
from gateway.events import JobEvents
from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers, until


@asynccontextmanager
async def serve_app(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app``, served until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), timeout=10, what="gateway start")
        assert server.started, "the gateway did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new gateway with ``settings``."""
    async with serve_app(create_app(settings)) as client:
        yield client


def job_events(app: Litestar) -> JobEvents:
    """The job events of ``app``'s gateway (there once it has started)."""
    found: JobEvents = app.state.services.events
    return found


def waiters(events: JobEvents, job_id: str) -> int:
    """How many requests wait on the job. A waiting request shows nowhere outside the
    gateway (it holds no Redis connection of its own), so this reads its bookkeeping."""
    return len(events._waiters.get(job_id, ()))


async def submit(client: httpx.AsyncClient, path: str = "/jobs", *, audio: bytes | None = None,
                 headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    files = {"file": ("talk.wav", audio if audio is not None else silent_wav(), "audio/wav")}
    return await client.post(path, files=files, data=fields, headers=headers)


async def finished(client: httpx.AsyncClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """The job once completed, failed or cancelled; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = (await client.get(f"/jobs/{job_id}", params={"wait": 5})).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


async def completed_job(client: httpx.AsyncClient, store: JobStore) -> str:
    """A job run to completion through the gateway by the option stages."""
    async with running_workers(store, GATEWAY_STAGES):
        response = await submit(client, language="en", num_speakers="2")
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        assert (await finished(client, job_id))["status"] == "completed"
    return job_id
