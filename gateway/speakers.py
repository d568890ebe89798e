"""Speakers' names: renaming the speakers of a finished job."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from litestar import patch

from gateway.apidocs import errors
from gateway.jobs import find_job, read_result, served_run
from gateway.services import Services
from pipeline.errors import BadRequest, Gone
from stages import artifacts
from stages.speakers import NamingError, renamed
from stages.types import Result

log = logging.getLogger("gateway.speakers")


@patch("/jobs/{job_id:str}/speakers", status_code=200,
       summary="Rename the speakers of a finished job, without recomputing",
       description='A JSON object of a speaker\'s label (or current name) to its new name, '
                   'e.g. {"SPEAKER_01": "Alice"}. Rewrites the result served by '
                   "GET /jobs/{id}/result (every format) and answers it as JSON.",
       responses=errors(400, 404, 409, 410))
async def rename_speakers(job_id: str, data: dict[str, Any], services: Services,
                          owner: str | None) -> Result:
    job = await find_job(services.store, job_id, owner)
    run, path = served_run(job)
    result = await read_result(job, path)
    if result is None:
        raise Gone(f"the result of job {job_id} is no longer stored; submit the audio again")
    try:
        updated = renamed(result, data)
    except NamingError as exc:
        raise BadRequest(f"cannot rename the speakers of job {job_id}: {exc.message}",
                         field=exc.field) from None
    # Written beside and renamed over the old one: a reader sees one result or the other.
    await asyncio.to_thread(artifacts.write_atomically, Path(path), updated)
    log.info("job=%s run %d speakers renamed: %s", job_id, run,
             ", ".join(f"{k} -> {v}" for k, v in data.items()))
    return updated
