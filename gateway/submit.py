"""From an upload to a queued job: the path shared by POST /jobs and POST /transcribe."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request

from gateway.uploads import Upload, receive_upload
from pipeline import metrics
from pipeline.addresses import precheck, resolve, shown_url
from pipeline.errors import (
    AddressRefused,
    BadRequest,
    PermanentError,
    QueueFull,
    TooLarge,
    TransientError,
    UnsupportedMedia,
)
from pipeline.store import JobStore, new_job_id
from pipeline.voiceprints import Candidates, Voiceprint, VoiceprintStore, candidate
from stages import catalog
from stages.artifacts import Files, write_atomically
from stages.media import NoSuchStream, probe
from stages.options import JobOptions, OptionError, shown
from stages.options import parse_options as options_from
from stages.settings import Settings

log = logging.getLogger("gateway.submit")


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False: an earlier upload with the same Idempotency-Key made the job


def parse_options(fields: Mapping[str, object]) -> JobOptions:
    """Form fields (or JSON values) -> JobOptions; a bad value gets a 400 naming the field,
    the value and what the field takes."""
    try:
        return options_from(fields)
    except OptionError as exc:
        raise BadRequest(exc.message, field=exc.field) from None


async def check_runnable(options: JobOptions, settings: Settings) -> None:
    """Refuse, with the choices, a model this server cannot run or a language its model
    does not speak: better now than as a failed job after the queue."""
    try:
        # Off the event loop: it reads MODELS_DIR, and may ask whether the hub is reachable.
        await asyncio.to_thread(catalog.check, options.model, options.language, settings)
    except OptionError as exc:
        raise BadRequest(exc.message, field=exc.field) from None


def fingerprint(upload: Upload, options: JobOptions) -> str:
    """What makes two requests the same for an Idempotency-Key: the audio (its URL, for
    audio by URL) and the options (not the file's name)."""
    audio = upload.sha256 if upload.url is None else f"url {upload.url}"
    return hashlib.sha256(f"{audio}\0".encode() + msgspec.json.encode(options)
                          ).hexdigest()


def check_url(url: str, settings: Settings) -> None:
    """Refuse at once an audio URL that can never be fetched: not http(s), with a user name
    or password, or a host spelled as a refused address. A host name is resolved and
    checked by the decode stage, which downloads it (the gateway does not)."""
    try:
        precheck(url, allow_private=settings.allow_private_urls)
    except AddressRefused as exc:
        raise BadRequest(f"invalid url '{shown_url(url)}': {exc}", field="url") from None


async def check_callback(url: str | None, settings: Settings) -> None:
    """A callback URL must be deliverable: signed, and to an address the policy allows
    (checked again at each delivery, when the name may resolve elsewhere)."""
    if url is None:
        return
    if settings.webhook_key is None:
        raise BadRequest("callback_url needs WEBHOOK_SECRET, which this server lacks: ask "
                         "its operator to set it, or leave callback_url out")
    try:
        await asyncio.to_thread(resolve, url, allow_private=settings.allow_private_urls)
    except (AddressRefused, TransientError) as exc:
        raise BadRequest(f"invalid callback_url '{url}': {exc}") from None


async def check_backpressure(store: JobStore, settings: Settings) -> None:
    """Refuse at once when the queue is full, before an upload streams in for nothing.

    Only a first check: many requests can pass it while their uploads stream. The limit
    itself holds where the job is queued (:meth:`JobStore.create`).
    """
    lag = await store.queue_lag(store.table.names[0], cap=settings.max_queued_jobs)
    if lag >= settings.max_queued_jobs:
        raise QueueFull(lag, settings.max_queued_jobs)


async def _check_audio(upload: Upload, options: JobOptions, max_seconds: float,
                       too_long: str) -> None:
    try:
        info = await asyncio.to_thread(probe, upload.path, None, options.audio_stream)
    except NoSuchStream as exc:
        raise BadRequest(str(exc), field="audio_stream") from None
    except PermanentError as exc:
        raise UnsupportedMedia(f"{exc}; upload an audio file (wav, mp3, m4a, flac, ogg, "
                               "webm, ...)") from None
    if info.duration is not None and info.duration > max_seconds:
        raise TooLarge(f"the audio lasts {info.duration:.0f} s, longer than the limit "
                       f"of {max_seconds:g} s; {too_long}")


async def identify_candidates(store: JobStore, owner: str | None,
                              options: JobOptions) -> Candidates | None:
    """The caller's voiceprints a job with these options identifies its speakers against
    (None when it does not identify); a 400 naming `identify` for a name or id the caller
    has no voiceprint of."""
    if options.identify is False:
        return None
    mine = await VoiceprintStore(store.redis, store.keys).all(owner)
    if not mine:
        raise BadRequest("identify needs voiceprints, and there are none yet: enroll voices "
                         "with POST /speakers first", field="identify")
    if options.identify is True:
        return Candidates(voiceprints=[candidate(v) for v in mine])
    chosen: dict[str, Voiceprint] = {}
    for wanted in options.identify:
        match = next((v for v in mine
                      if wanted == v.id or wanted.casefold() == v.name.casefold()), None)
        if match is None:
            raise BadRequest(f"identify: no voiceprint {shown(wanted)}; yours are "
                             + ", ".join(v.name for v in mine), field="identify")
        chosen[match.id] = match
    return Candidates(voiceprints=[candidate(v) for v in chosen.values()])


async def give_candidates(files: Files, candidates: Candidates | None) -> None:
    """Write a job's voiceprints into its folder, for its diarize stage (which reads no
    Redis of its own): a copy, so that a rerun identifies against the voiceprints as
    they are then."""
    if candidates is not None:
        await asyncio.to_thread(write_atomically, files.voiceprints, candidates)


async def submit(request: Request[Any, Any, Any], store: JobStore, settings: Settings, *,
                 owner: str | None, max_seconds: float, too_long: str,
                 parse: Callable[[Upload], JobOptions] | None = None,
                 fields: Collection[str] = JobOptions.__struct_fields__,
                 field_limits: Mapping[str, int] | None = None,
                 voices: Callable[[JobOptions], Awaitable[Candidates | None]] | None = None,
                 ) -> Submitted:
    """Receive, check and store the upload, then create and queue its job. With a ``url``
    instead of a file, the job is created at once and its decode stage downloads the audio
    (the duration limit ``max_seconds`` holds there).

    ``max_seconds`` is the longest audio accepted; ``too_long`` tells the client what to do
    with longer audio. ``parse`` reads the job's options from the form's ``fields`` (the
    only ones accepted besides the file; default: the options themselves, see
    :func:`parse_options`), each at most its ``field_limits`` bytes (default 1 KiB).
    ``voices`` gives the voiceprints a job with ``identify`` is matched against (default:
    the caller's, :func:`identify_candidates`).
    """
    await check_backpressure(store, settings)
    idempotency_key = request.headers.get("idempotency-key") or None
    if idempotency_key is not None and len(idempotency_key) > 200:
        raise BadRequest("Idempotency-Key is longer than 200 characters; send a shorter key")
    upload = await receive_upload(request, settings.jobs_path, settings.max_upload_bytes, fields,
                                  digest=idempotency_key is not None, field_limits=field_limits)
    try:
        if upload.url is not None:
            check_url(upload.url, settings)
        options = parse(upload) if parse else parse_options(upload.fields)
        await check_runnable(options, settings)
        await check_callback(options.callback_url, settings)
        candidates = await (voices(options) if voices is not None
                            else identify_candidates(store, owner, options))
        if upload.url is None:
            await _check_audio(upload, options, max_seconds, too_long)
        job_id = new_job_id()
        files = Files.of(settings.jobs_path, job_id)
        files.create()
        await give_candidates(files, candidates)
        if upload.url is None:
            os.replace(upload.path, files.input)
    finally:
        upload.path.unlink(missing_ok=True)
    try:
        # A URL job's input_name is its URL: the decode stage downloads it from there.
        existing, created = await store.create(
            job_id, options, input_name=upload.url or upload.filename, owner=owner,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(upload, options) if idempotency_key else "",
            max_seconds=max_seconds)
    except BaseException:
        files.remove()
        raise
    if created:
        await metrics.record(store, metrics.JOBS_CREATED.inc())
        if upload.url is None:
            log.info("job=%s queued: %s (%d bytes)", job_id, upload.filename, upload.size)
        else:
            log.info("job=%s queued: %s, to download", job_id, shown_url(upload.url))
    else:
        files.remove()
        log.info("job=%s repeated upload (Idempotency-Key) discarded", existing)
    return Submitted(existing, created)
