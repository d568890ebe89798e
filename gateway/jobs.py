"""The job endpoints: submit, inspect, long-poll, fetch results, list, delete, transcribe."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from gateway.apidocs import JOB_FORM, errors, multipart
from gateway.auth import same_owner
from gateway.events import next_change, until_finished
from gateway.formats import RENDERERS
from gateway.models import (
    Deleted,
    JobAccepted,
    JobPage,
    JobView,
    RerunAccepted,
    job_summary,
    job_view,
)
from gateway.services import Services
from gateway.submit import (
    check_callback,
    check_runnable,
    give_candidates,
    identify_candidates,
    parse_options,
    submit,
)
from pipeline import metrics
from pipeline.errors import BadRequest, Conflict, Gone, JobFailed, NotFound
from pipeline.files import valid_job_id
from pipeline.store import JobStore, Outcome
from pipeline.types import Job, Options
from stages.artifacts import Files
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import STAGES, JobStatus
from stages.types import FORMATS, Format, Result

log = logging.getLogger("gateway.jobs")

MAX_WAIT_SECONDS = 60
#: The response header that says which run of the job a result is from.
RESULT_RUN_HEADER = "Result-Run"
_OPTIONS = ", ".join(JobOptions.__struct_fields__)
_FORMATS = ", ".join(FORMATS)


def _not_found(job_id: str) -> NotFound:
    # The same answer for another key's job as for an unknown id: ids are not disclosed.
    return NotFound(f"no job {job_id}: it never existed, expired or was deleted; "
                    "check the id returned by POST /jobs")


async def find_job(store: JobStore, job_id: str, owner: str | None) -> Job[Options]:
    if owner is not None:
        # Only the owner is read, and compared in constant time, before the job itself: an
        # unknown id and another key's job cost the same one command and comparison, so the
        # time of the 404 does not tell whether the id exists.
        stored: str | None = (await store.redis.hget(store.keys.job(job_id), "owner")  # type: ignore[assignment]
                              if valid_job_id(job_id) else None)
        if not same_owner(stored, owner):
            raise _not_found(job_id)
    job = await store.get(job_id)
    if job is None or (owner is not None and job.owner != owner):
        raise _not_found(job_id)
    return job


async def _result(job: Job[Options]) -> Result | None:
    if job.status != JobStatus.COMPLETED or not job.result_path:
        return None
    return await read_result(job, job.result_path)


async def read_result(job: Job[Options], path: str) -> Result | None:
    try:
        raw = await asyncio.to_thread(Path(path).read_bytes)
    except FileNotFoundError:
        log.warning("job=%s completed but its result file %s is missing", job.id, path)
        return None
    return msgspec.json.decode(raw, type=Result)


def _location(job_id: str) -> dict[str, str]:
    return {"Location": f"/jobs/{job_id}"}


@post("/jobs", status_code=202, request_max_body_size=None,
      operation_class=multipart(JOB_FORM), responses=errors(400, 413, 415, 422, 507),
      summary="Submit audio as a background job",
      description=f"multipart/form-data: `file` (the audio) and optional fields {_OPTIONS}. "
                  "Send `Idempotency-Key` to make retries safe.")
async def create_job(request: Request[Any, Any, Any], services: Services,
                     owner: str | None) -> Response[JobAccepted]:
    settings = services.settings
    submitted = await submit(request, services.store, settings, owner=owner,
                             max_seconds=settings.max_audio_seconds,
                             too_long="split it into shorter files")
    job = await find_job(services.store, submitted.job_id, owner)
    return Response(JobAccepted(job_id=job.id, status=JobStatus(job.status)), status_code=202,
                    headers=_location(job.id))


@get("/jobs/{job_id:str}", summary="A job's status, stages and (once completed) result",
     responses=errors(400, 404))
async def get_job(
    job_id: str, services: Services, owner: str | None,
    wait: Annotated[float, Parameter(
        ge=0,
        description="Long poll: answer as soon as the job changes, or after this many "
                    f"seconds (at most {MAX_WAIT_SECONDS}: a longer wait is cut to "
                    "that)")] = 0,
) -> JobView:
    job: Job[Options] | None = await find_job(services.store, job_id, owner)
    if wait > 0 and job is not None and not job.status.terminal:
        job = await next_change(services.events, job, min(wait, MAX_WAIT_SECONDS))
    if job is None:
        raise _not_found(job_id)
    return job_view(job, await _result(job))


@get("/jobs/{job_id:str}/result", summary="A completed job's result in one of several formats",
     responses=errors(400, 404, 409, 410),
     description="The result of the job's latest run; after a rerun that failed or was "
                 f"cancelled, that of the latest run that completed. The {RESULT_RUN_HEADER} "
                 "header says which run it is.")
async def get_result(
    job_id: str, services: Services, owner: str | None,
    format: Annotated[Format, Parameter(  # noqa: A002 - the query parameter's public name
        description=_FORMATS)] = "json",
) -> Response[str]:
    job = await find_job(services.store, job_id, owner)
    run, path = served_run(job)
    if run != job.run:
        log.info("job=%s run %d %s: serving the result of run %d", job.id, job.run,
                 job.status, run)
    return await _render(job, await read_result(job, path), format, run, services.settings)


def served_run(job: Job[Options]) -> tuple[int, str]:
    """The run whose result GET /jobs/{id}/result serves, and its result file: the latest
    run's, or after a rerun that failed or was cancelled, the latest completed run's.
    Raises Conflict when there is none (yet)."""
    if job.status.terminal and job.status != JobStatus.COMPLETED:
        earlier = next((r for r in reversed(job.runs)
                        if r.status == JobStatus.COMPLETED and r.result_path), None)
        if earlier is not None and earlier.result_path is not None:
            return earlier.run, earlier.result_path
    if job.status != JobStatus.COMPLETED or not job.result_path:
        raise _not_completed(job)
    return job.run, job.result_path


def _not_completed(job: Job[Options]) -> Conflict:
    reason = f" ({job.error})" if job.error else ""
    advice = ("it will not complete; submit the audio again" if job.status.terminal
              else f"poll GET /jobs/{job.id} until its status is completed")
    return Conflict(f"job {job.id} is {job.status}{reason}; {advice}")


async def _current_result(job: Job[Options], format: Format,  # noqa: A002
                          settings: Settings) -> Response[str]:
    if job.status != JobStatus.COMPLETED:
        raise _not_completed(job)
    return await _render(job, await _result(job), format, job.run, settings)


async def _render(job: Job[Options], result: Result | None, format: Format,  # noqa: A002
                  run: int, settings: Settings) -> Response[str]:
    if result is None:
        raise Gone(f"the result of job {job.id} is no longer stored; "
                   "submit the audio again")
    render, media_type = RENDERERS[format]
    # Off the event loop: laying out the cues of hours of speech takes a second or so.
    return Response(await asyncio.to_thread(render, result, job.id, settings),
                    media_type=media_type, headers={RESULT_RUN_HEADER: str(run)})


@get("/jobs/{job_id:str}/runs/{run:int}/result",
     summary="The result of one run of a job (earlier runs stay available)",
     responses=errors(400, 404, 409, 410))
async def get_run_result(
    job_id: str, run: int, services: Services, owner: str | None,
    format: Annotated[Format, Parameter(  # noqa: A002 - the query parameter's public name
        description=_FORMATS)] = "json",
) -> Response[str]:
    job = await find_job(services.store, job_id, owner)
    if run == job.run:
        return await _current_result(job, format, services.settings)
    earlier = next((r for r in job.runs if r.run == run), None)
    if earlier is None:
        raise NotFound(f"job {job_id} has no run {run}; its runs are 1 to {job.run}")
    if earlier.result_path is None:
        raise Conflict(f"run {run} of job {job_id} {earlier.status} without a result")
    return await _render(job, await read_result(job, earlier.result_path), format, run,
                         services.settings)


@post("/jobs/{job_id:str}/rerun", status_code=202, responses=errors(400, 404, 409, 410),
      summary="Recompute a finished job from one stage, with changed options",
      description=f"A JSON object: `from_stage` ({', '.join(STAGES)}) and any of the job "
                  f"options ({_OPTIONS}); each option given replaces the job's (e.g. "
                  "num_speakers re-diarizes without decoding again; model or language "
                  "re-transcribes without diarizing again). The new run is served by "
                  "GET /jobs/{id}; earlier runs stay listed under runs.")
async def rerun_job(job_id: str, data: dict[str, Any], services: Services,
                    owner: str | None) -> Response[RerunAccepted]:
    job = await find_job(services.store, job_id, owner)
    overrides = dict(data)
    from_stage = overrides.pop("from_stage", None)
    if not isinstance(from_stage, str):
        raise BadRequest(f"cannot rerun job {job_id}: give from_stage, one of "
                         f"{', '.join(STAGES)}")
    # The rerun's options as a whole, checked as a submission's are: plain-words errors
    # naming the field, and a model or language this server cannot run refused now.
    options = parse_options({**msgspec.structs.asdict(JobOptions.of(job.options)),
                             **overrides})
    await check_runnable(options, services.settings)
    await check_callback(options.callback_url, services.settings)
    candidates = await identify_candidates(services.store, owner, options)
    if job.status.terminal:  # a running job's diarize stage may be reading its copy
        await give_candidates(Files.of(services.settings.jobs_path, job_id), candidates)
    try:
        outcome = await services.store.rerun(job, from_stage, overrides)
    except (ValueError, msgspec.ValidationError) as exc:
        raise BadRequest(f"cannot rerun job {job_id}: {exc}") from None
    if outcome is Outcome.GONE:
        raise _not_found(job_id)
    if outcome is Outcome.EXPIRED:
        raise Gone(f"the files job {job_id} needs to restart from {from_stage} "
                   "have expired; rerun it from an earlier stage or submit the audio "
                   "again")
    if outcome is not Outcome.OK:
        state = job.status if outcome is Outcome.RUNNING else "changing"
        raise Conflict(f"job {job_id} is still {state}; wait until it has finished "
                       f"(GET /jobs/{job_id}?wait=60), then rerun it")
    await metrics.record(services.store, metrics.JOBS_RERUN.inc())
    log.info("job=%s rerun %d from %s with %s", job_id, job.run + 1, from_stage, overrides)
    return Response(RerunAccepted(job_id=job_id, run=job.run + 1, status=JobStatus.QUEUED),
                    status_code=202, headers=_location(job_id))


@get("/jobs", summary="Recent jobs, newest first", responses=errors(400))
async def list_jobs(
    services: Services, owner: str | None,
    status: Annotated[JobStatus | None, Parameter(description="only jobs in this status")] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Parameter(description="next_cursor of the previous page")] = None,
) -> JobPage:
    try:
        jobs, next_cursor = await services.store.list(status=status, owner=owner, cursor=cursor,
                                                      limit=limit)
    except ValueError:
        raise BadRequest("invalid query parameter 'cursor': pass the next_cursor of the "
                         "previous page as is") from None
    return JobPage(jobs=[job_summary(j) for j in jobs],
                   next_cursor=next_cursor)


@delete("/jobs/{job_id:str}", status_code=200, responses=errors(400, 404),
        summary="Cancel a job wherever it is and delete it with its files")
async def delete_job(job_id: str, services: Services, owner: str | None) -> Deleted:
    store = services.store
    await find_job(store, job_id, owner)
    # Cancelled here first (deleting cancels too) to learn whether this request ended the run.
    cancelled = await store.cancel(job_id) is Outcome.OK
    deleted = await store.delete(job_id)
    await metrics.record(store,
                         metrics.JOBS_FINISHED.inc(JobStatus.CANCELLED) if cancelled else [],
                         metrics.JOBS_DELETED.inc() if deleted else [])
    if not deleted:
        raise _not_found(job_id)
    log.info("job=%s deleted", job_id)
    return Deleted(deleted=job_id)


async def finished_result(services: Services, job_id: str,
                          timeout: float) -> tuple[Job[Options], Result | None]:
    """The job once completed and its result (None if no longer stored), or the job as it
    is after ``timeout`` seconds (the endpoints that wait for a job share this).

    Raises Gone when the job is deleted meanwhile, JobFailed when it fails or is cancelled.
    """
    job = await until_finished(services.events, job_id, timeout)
    if job is None:
        raise Gone(f"job {job_id} was deleted before it finished")
    if job.status == JobStatus.COMPLETED:
        return job, await _result(job)
    if job.status.terminal:
        raise JobFailed(f"job {job.id} {job.status}: {job.error or 'no reason given'}; "
                        "check the audio and submit it again")
    return job, None


@post("/transcribe", status_code=200, request_max_body_size=None,
      operation_class=multipart(JOB_FORM),
      responses=errors(400, 413, 415, 422, 507, also={
          200: ResponseSpec(JobView, description="The job, completed, with its result.",
                            generate_examples=False),
          202: ResponseSpec(JobAccepted, description="The job takes longer than "
                            "SYNC_TIMEOUT_SECONDS: poll GET /jobs/{id}.",
                            generate_examples=False)}),
      summary="Transcribe short audio and wait for the result",
      description="Like POST /jobs, but answers with the finished job (200). Audio longer "
                  "than SYNC_MAX_SECONDS is refused (413); if the job takes longer than "
                  "SYNC_TIMEOUT_SECONDS the answer is 202 with the job id to poll.")
async def transcribe(request: Request[Any, Any, Any], services: Services,
                     owner: str | None) -> Response[Any]:
    settings, store = services.settings, services.store
    submitted = await submit(
        request, store, settings, owner=owner,
        max_seconds=min(settings.sync_max_seconds, settings.max_audio_seconds),
        too_long="submit it with POST /jobs and poll GET /jobs/{id} instead")
    job, result = await finished_result(services, submitted.job_id,
                                        settings.sync_timeout_seconds)
    if job.status == JobStatus.COMPLETED:
        return Response(job_view(job, result), status_code=200)
    log.info("job=%s still %s after %gs: answering 202", job.id, job.status,
             settings.sync_timeout_seconds)
    return Response(JobAccepted(job_id=job.id, status=JobStatus(job.status)), status_code=202,
                    headers=_location(job.id))
