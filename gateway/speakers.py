"""Speakers' names: renaming the speakers of a finished job."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
from litestar import patch

from gateway.apidocs import errors
from gateway.jobs import find_job, read_result, served_run
from gateway.services import Services
from gateway.voiceprints import add_sample, job_sample
from pipeline.errors import BadRequest, Gone
from stages import artifacts
from stages.speakers import NamingError, named, renamed, speaker_names
from stages.types import Result

log = logging.getLogger("gateway.speakers")


@patch("/jobs/{job_id:str}/speakers", status_code=200,
       summary="Rename the speakers of a finished job, without recomputing",
       description='A JSON object of a speaker\'s label (or current name) to its new name, '
                   'e.g. {"SPEAKER_01": "Alice"}. Rewrites the result served by '
                   "GET /jobs/{id}/result (every format) and answers it as JSON. With "
                   '"enroll": true, each renamed speaker\'s embedding is also added to the '
                   "voiceprint of its new name (made when there is none).",
       responses=errors(400, 404, 409, 410, 422))
async def rename_speakers(job_id: str, data: dict[str, Any], services: Services,
                          owner: str | None) -> Result:
    job = await find_job(services.store, job_id, owner)
    run, path = served_run(job)
    result = await read_result(job, path)
    if result is None:
        raise Gone(f"the result of job {job_id} is no longer stored; submit the audio again")
    renames = dict(data)
    enroll = renames.pop("enroll", False)
    if not isinstance(enroll, bool):
        raise BadRequest(f"enroll must be true or false, not {enroll!r}", field="enroll")
    try:
        updated = renamed(result, renames)
    except NamingError as exc:
        raise BadRequest(f"cannot rename the speakers of job {job_id}: {exc.message}",
                         field=exc.field) from None
    if enroll:
        updated = await _enrolled(services, owner, job_id, result, updated)
    # Written beside and renamed over the old one: a reader sees one result or the other.
    await asyncio.to_thread(artifacts.write_atomically, Path(path), updated)
    log.info("job=%s run %d speakers renamed: %s", job_id, run,
             ", ".join(f"{k} -> {v}" for k, v in renames.items()))
    return updated


async def _enrolled(services: Services, owner: str | None, job_id: str, before: Result,
                    after: Result) -> Result:
    """Each renamed speaker's embedding added to the voiceprint of its new name (made when
    there is none), and the result's names pointing at those voiceprints."""
    voiceprints = services.voiceprints
    old = {e.label: e.name for e in speaker_names(before)}
    changed = [e for e in after.speaker_names if old.get(e.label) != e.name]
    # Every embedding first: a speaker without one refuses the request before any change.
    samples = [await job_sample(services, owner, job_id, e.label) for e in changed]
    ids: dict[str, str] = {}
    for entry, sample in zip(changed, samples, strict=True):
        existing = await voiceprints.named(owner, entry.name)
        ids[entry.label] = (await add_sample(voiceprints, owner, entry.name, sample,
                                             existing=existing)).id
    return named(after, [msgspec.structs.replace(e, voiceprint=ids.get(e.label, e.voiceprint))
                         for e in after.speaker_names])
