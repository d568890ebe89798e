"""The gateway tests' fixtures: the app, and a client of it served for real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar

from gateway import create_app
from stages.settings import Settings
from tests.support.gateway import serve_app
from tests.support.option_stages import models_dir


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared settings, with the models the option stages obey (see MODELS_DIR)."""
    return msgspec.structs.replace(settings, models_dir=str(models_dir(tmp_path)))


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(app) as c:
        yield c
