"""The gateway tests' fixtures: the app, and a client of it served for real."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from gateway import create_app
from stages.settings import Settings
from tests.support.gateway import serve_app


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(app) as c:
        yield c
