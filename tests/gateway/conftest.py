"""A real gateway: uvicorn serving the app on a free port, in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from gateway import create_app
from stages.settings import Settings
from benchmark.audio import silent_wav
from tests.support.workers import until


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                            log_level="warning", lifespan="on")
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


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as c:
        yield c


async def submit(client: httpx.AsyncClient, path: str = "/jobs", *, audio: bytes | None = None,
                 headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    files = {"file": ("talk.wav", audio if audio is not None else silent_wav(), "audio/wav")}
    return await client.post(path, files=files, data=fields, headers=headers)
