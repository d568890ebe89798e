"""From an upload to a queued job: the path shared by POST /jobs and POST /transcribe."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request

from gateway.uploads import Upload, receive_upload
from pipeline import metrics
from pipeline.errors import BadRequest, PermanentError, QueueFull, TooLarge, UnsupportedMedia
from pipeline.store import JobStore, new_job_id
from stages.media import probe
from stages.options import JobOptions
from stages.settings import Settings

log = logging.getLogger("gateway.submit")


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False: an earlier upload with the same Idempotency-Key made the job


def parse_options(fields: dict[str, str]) -> JobOptions:
    """Form fields -> JobOptions; a bad value gets a 400 naming the field."""
    known = set(JobOptions.__struct_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BadRequest(f"unknown form field '{unknown[0]}'; accepted fields: file, "
                         + ", ".join(JobOptions.__struct_fields__))
    raw = {name: value.strip() for name, value in fields.items() if value.strip()}
    try:
        return msgspec.convert(raw, JobOptions, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        text, _, where = message.rpartition(" - at `$.")
        if where:
            raise BadRequest(f"invalid form field '{where.rstrip('`')}': {text}") from None
        raise BadRequest(f"invalid options: {message}") from None


async def check_backpressure(store: JobStore, settings: Settings) -> None:
    """Refuse at once when the queue is full, before an upload streams in for nothing.

    Only a first check: many requests can pass it while their uploads stream. The limit
    itself holds where the job is queued (:meth:`JobStore.create`).
    """
    lag = await store.queue_lag(store.table.names[0], cap=settings.max_queued_jobs)
    if lag >= settings.max_queued_jobs:
        raise QueueFull(lag, settings.max_queued_jobs)


async def _check_audio(upload: Upload, max_seconds: float, too_long: str) -> None:
    try:
        info = await asyncio.to_thread(probe, upload.path)
    except PermanentError as exc:
        raise UnsupportedMedia(f"{exc}; upload an audio file (wav, mp3, m4a, flac, ogg, "
                               "webm, ...)") from None
    if info.duration is not None and info.duration > max_seconds:
        raise TooLarge(f"the audio lasts {info.duration:.0f} s, longer than the limit "
                       f"of {max_seconds:g} s; {too_long}")


async def submit(request: Request[Any, Any, Any], store: JobStore, settings: Settings, *,
                 owner: str | None, max_seconds: float, too_long: str) -> Submitted:
    """Receive, check and store the upload, then create and queue its job.

    ``max_seconds`` is the longest audio accepted; ``too_long`` tells the client what to do
    with longer audio.
    """
    await check_backpressure(store, settings)
    idempotency_key = request.headers.get("idempotency-key") or None
    if idempotency_key is not None and len(idempotency_key) > 200:
        raise BadRequest("Idempotency-Key is longer than 200 characters; send a shorter key")
    upload = await receive_upload(request, settings.jobs_path, settings.max_upload_bytes)
    try:
        options = parse_options(upload.fields)
        await _check_audio(upload, max_seconds, too_long)
        job_id = new_job_id()
        files = store.files(job_id)
        files.create()
        os.replace(upload.path, files.input)
    finally:
        upload.path.unlink(missing_ok=True)
    try:
        existing, created = await store.create(job_id, options, input_name=upload.filename,
                                               owner=owner, idempotency_key=idempotency_key,
                                               max_seconds=max_seconds)
    except BaseException:
        files.remove()
        raise
    if created:
        await metrics.record(store, metrics.JOBS_CREATED.inc())
        log.info("job=%s queued: %s (%d bytes)", job_id, upload.filename, upload.size)
    else:
        files.remove()
        log.info("job=%s repeated upload (Idempotency-Key) discarded", existing)
    return Submitted(existing, created)
