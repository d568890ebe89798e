"""The Litestar application: routes, auth, error bodies and the Redis connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import Scope

from gateway.audio import get_audio
from gateway.auth import require_key
from gateway.errors import api_error_handler, http_exception_handler, internal_error_handler
from gateway.events import JobEvents
from gateway.health import health
from gateway.jobs import (
    create_job,
    delete_job,
    get_job,
    get_result,
    get_run_result,
    list_jobs,
    rerun_job,
    transcribe,
)
from gateway.logs import log_refusal
from gateway.metrics import metrics
from gateway.openai import openai_router
from gateway.services import Services, provide_owner, provide_services
from gateway.speakers import rename_speakers
from gateway.voiceprints import (
    create_voiceprint,
    delete_voiceprint,
    get_voiceprint,
    list_voiceprints,
    update_voiceprint,
)
from gateway.web import swagger_plugin, web_router
from pipeline.connection import connect
from pipeline.errors import ApiError
from pipeline.janitor import run_janitor
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import TABLE


def _log_refusal(exc: Exception, scope: Scope) -> None:
    if isinstance(exc, ApiError):
        log_refusal(scope, exc.status, exc.message)
    elif isinstance(exc, HTTPException):
        log_refusal(scope, exc.status_code, str(exc.detail))
    # Anything else is an internal error: its handler logs it with the traceback.


def create_app(settings: Settings) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = await connect(settings)
        store = JobStore(redis, settings, TABLE)
        events = JobEvents(store)
        app.state.services = Services(store=store, settings=settings, events=events)
        tasks = [asyncio.create_task(run_janitor(store)), asyncio.create_task(events.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await redis.aclose()

    return Litestar(
        route_handlers=[create_job, get_job, get_result, get_run_result, rerun_job, list_jobs,
                        delete_job, transcribe, rename_speakers, create_voiceprint,
                        list_voiceprints, get_voiceprint, update_voiceprint,
                        delete_voiceprint, get_audio, health, metrics,
                        openai_router(), web_router()],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        guards=[require_key],
        dependencies={"services": Provide(provide_services, sync_to_thread=False),
                      "owner": Provide(provide_owner, sync_to_thread=False)},
        exception_handlers={ApiError: api_error_handler, HTTPException: http_exception_handler,
                            Exception: internal_error_handler},
        after_exception=[_log_refusal],
        openapi_config=OpenAPIConfig(
            title="Transcription & Diarization API", version="1.0.0",
            description="Speech transcription with speaker diarization. Upload audio to "
                        "POST /jobs and poll GET /jobs/{id}, or POST /transcribe for short "
                        "audio.",
            render_plugins=[swagger_plugin()]),
        # Logging is set up once per process by pipeline.logs (LOG_LEVEL); Litestar's own
        # configuration would install a second root handler at INFO.
        logging_config=None,
        debug=False,
    )
