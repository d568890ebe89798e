"""The OpenAI-compatible endpoints under /v1: a request becomes a job like POST /transcribe's
and waits for it, up to OPENAI_TIMEOUT_SECONDS; errors come in OpenAI's error shape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException

from gateway.apidocs import errors, multipart
from gateway.errors import api_error_handler, http_exception_handler, internal_error_handler
from gateway.jobs import finished_result
from gateway.openai.answers import Model, ModelList, answer
from gateway.openai.form import FIELD_LIMITS, FIELDS, FORM_SCHEMA, OpenAIForm, Task, served_models
from gateway.services import Services
from gateway.submit import submit
from gateway.voiceprints import known_voices
from pipeline.errors import ApiError, ErrorBody, NotFound
from pipeline.voiceprints import Candidates
from stages.options import JobOptions

log = logging.getLogger("gateway.openai")


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class Error(msgspec.Struct, frozen=True, kw_only=True):
    """OpenAI's error body, from which the `openai` package raises its own exceptions."""

    error: ErrorDetail


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None,
                   code: str | None = None) -> Response[Error]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    code = code or ("invalid_api_key" if status == 401 else None)
    return Response(Error(error=ErrorDetail(message=message, type=kind, code=code)),
                    status_code=status, headers=dict(headers or {}))


def _in_openai_shape(handler: Callable[[Request[Any, Any, Any], Any], Response[ErrorBody]],
                     ) -> Callable[[Request[Any, Any, Any], Any], Response[Error]]:
    """The gateway's own error handler, answering in OpenAI's shape instead."""

    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Error]:
        plain = handler(request, exc)
        # OpenAI answers a file that is not audio with 400 (ours: 415).
        status = 400 if plain.status_code == 415 else plain.status_code or 500
        return error_response(status, plain.content.error.message, plain.headers)

    return handle


async def _disconnected(request: Request[Any, Any, Any]) -> None:
    """Returns once the client has gone (the body has been read: nothing else arrives)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _transcribe(request: Request[Any, Any, Any], services: Services, owner: str | None,
                      task: Task) -> Response[Any]:
    settings = services.settings
    form = OpenAIForm(settings, task)


    async def voices(options: JobOptions) -> Candidates | None:
        # identify is set only by known speakers: stored voiceprints play no part here.
        known = [(k.name, k.audio) for k in form.known]
        return await known_voices(services, owner, known) if known else None

    submitted = await submit(request, services.store, settings, owner=owner,
                             max_seconds=settings.max_audio_seconds,
                             too_long="split it into shorter files", parse=form.parse,
                             fields=FIELDS, field_limits=FIELD_LIMITS, voices=voices)
    job_id, timeout = submitted.job_id, settings.openai_timeout_seconds
    waiting = asyncio.ensure_future(finished_result(services, job_id, timeout))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task_ in (waiting, gone):
            task_.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
    if not waiting.done():
        log.info("job=%s client disconnected; the job runs on under /jobs/%s", job_id, job_id)
        return error_response(499, "the client disconnected")
    job, result = waiting.result()
    if result is not None:
        return answer(result, job.id, task, form.answer, settings)
    if job.status.terminal:  # completed, but the result has expired meanwhile
        return error_response(410, f"the result of job {job.id} is no longer stored; "
                                   "send the audio again")
    log.info("job=%s still %s after %gs: answering 504", job.id, job.status, timeout)
    # Retrying would upload the audio again for a second job: tell the SDK not to.
    return error_response(
        504, f"job {job.id} is still {job.status} after {timeout:g} s "
             f"(OPENAI_TIMEOUT_SECONDS) and runs on: GET /jobs/{job.id}?wait=60 until it "
             f"completes, then GET /jobs/{job.id}/result",
        {"x-should-retry": "false", "x-request-id": job.id, "Location": f"/jobs/{job.id}"},
        code="timeout")


#: In OpenAI's shape; a file that is not audio is a 400, as OpenAI answers it.
_ERRORS = errors(400, 410, 413, 422, 504, 507, body=Error)
_DESCRIPTION = (f"OpenAI's multipart form: `file` and optional {', '.join(FIELDS)}. Waits for "
                "the job up to OPENAI_TIMEOUT_SECONDS; the job is also under /jobs.")


@post("/audio/transcriptions", status_code=200, request_max_body_size=None,
      operation_class=multipart(FORM_SCHEMA), responses=_ERRORS,
      summary="Transcribe audio (OpenAI-compatible)", description=_DESCRIPTION)
async def transcriptions(request: Request[Any, Any, Any], services: Services,
                         owner: str | None) -> Response[Any]:
    return await _transcribe(request, services, owner, "transcribe")


@post("/audio/translations", status_code=200, request_max_body_size=None,
      operation_class=multipart(FORM_SCHEMA), responses=_ERRORS,
      summary="Translate audio into English (OpenAI-compatible)", description=_DESCRIPTION)
async def translations(request: Request[Any, Any, Any], services: Services,
                       owner: str | None) -> Response[Any]:
    return await _transcribe(request, services, owner, "translate")


@get("/models", summary="The models this server runs (OpenAI-compatible)",
     responses=errors(body=Error))
async def list_models(services: Services) -> ModelList:
    return ModelList(data=[Model(id=name) for name in served_models(services.settings)])


@get("/models/{model_id:str}", summary="One model this server runs (OpenAI-compatible)",
     responses=errors(400, 404, body=Error))
async def get_model(model_id: str, services: Services) -> Model:
    if model_id not in served_models(services.settings):
        raise NotFound(f"no model {model_id!r}; GET /v1/models lists them (any other name "
                       "given to /v1/audio runs the default, WHISPER_MODEL)")
    return Model(id=model_id)


def openai_router() -> Router:
    """The /v1 routes, for one application (a router belongs to the app it is part of)."""
    return Router(
        path="/v1", route_handlers=[transcriptions, translations, list_models, get_model],
        exception_handlers={ApiError: _in_openai_shape(api_error_handler),
                            HTTPException: _in_openai_shape(http_exception_handler),
                            Exception: _in_openai_shape(internal_error_handler)},
    )
