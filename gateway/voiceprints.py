"""Voiceprints: enrolling named voices, and the ones a job identifies its speakers against.

The gateway computes no embedding: an enrollment sample goes through the pipeline as a job
(its diarize stage embeds the one voice), and a job's speaker is enrolled from what its
diarize stage kept. With API_KEYS each key has its own voiceprints; without, all callers
share one library.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec

from gateway.apidocs import AUDIO_FILE, AUDIO_URL, errors, multipart
from gateway.jobs import find_job, finished_result, read_result, served_run
from gateway.models import JobAccepted
from gateway.services import Services
from gateway.submit import submit
from gateway.uploads import Upload
from pipeline.errors import BadRequest, Conflict, Gone, NotFound, Unavailable, Unprocessable
from pipeline.store import new_job_id, now_iso
from pipeline.voiceprints import (
    Candidate,
    Candidates,
    Voiceprint,
    VoiceprintStore,
    new_id,
    unit,
)
from stages import artifacts
from stages.options import JobOptions, shown
from stages.speakers import NamingError, check_name, speaker_names
from stages.table import JobStatus

log = logging.getLogger("gateway.voiceprints")

_ENROLL_FIELDS = ("name",)


class VoiceprintView(msgspec.Struct, frozen=True, kw_only=True):
    """A voiceprint as the API shows it (its embeddings stay inside)."""

    id: str
    name: str
    model: str  # the diarization pipeline whose embedding model made it
    samples: int  # how many samples its embedding is the mean of
    created_at: str
    updated_at: str


class Deleted(msgspec.Struct, frozen=True):
    deleted: str


class Sample(msgspec.Struct, frozen=True):
    """One speaker's embedding, as the diarize stage of a job computed it."""

    embedding: list[float]
    model: str
    job_id: str
    label: str


def view(voiceprint: Voiceprint) -> VoiceprintView:
    return VoiceprintView(id=voiceprint.id, name=voiceprint.name, model=voiceprint.model,
                          samples=len(voiceprint.samples), created_at=voiceprint.created_at,
                          updated_at=voiceprint.updated_at)


def _name(value: object, field: str = "name") -> str:
    try:
        return check_name(value, field)
    except NamingError as exc:
        raise BadRequest(exc.message, field=field) from None


def _not_found(voiceprint_id: str) -> NotFound:
    # Another key's voiceprint gets an unknown id's answer: ids are not disclosed.
    return NotFound(f"no voiceprint {voiceprint_id}; GET /speakers lists yours")


async def job_sample(services: Services, owner: str | None, job_id: object,
                     speaker: object) -> Sample:
    """The embedding the diarize stage computed for ``speaker`` (a label or the name it
    shows; None: the job's one speaker) of the caller's finished job ``job_id``."""
    if not isinstance(job_id, str) or not job_id:
        raise BadRequest(f"from_job must be a job id, not {shown(job_id)}", field="from_job")
    job = await find_job(services.store, job_id, owner)
    _, path = served_run(job)
    result = await read_result(job, path)
    files = artifacts.Files.of(services.settings.jobs_path, job.id)
    if result is None or not files.diarization.exists():
        raise Gone(f"the speakers of job {job_id} are no longer stored; enroll a sample "
                   "instead (POST /speakers with a file)")
    diarization = await asyncio.to_thread(artifacts.read, files.diarization,
                                          artifacts.Diarization)
    # A speaker diarization found may have no words, and so no entry in the result.
    labels = {s: s for s in diarization.speakers} | {
        key: e.label for e in speaker_names(result) for key in (e.label, e.name)}
    if speaker is None and len(diarization.speakers) == 1:
        speaker = diarization.speakers[0]
    label = labels.get(speaker) if isinstance(speaker, str) else None
    if label is None:
        if speaker is None:
            raise Unprocessable(f"no voice was found in the sample (job {job_id}); send a "
                                "few seconds or more of one person speaking")
        raise BadRequest(f"{shown(speaker)} is not a speaker of job {job_id}; its speakers "
                         f"are {', '.join(diarization.speakers) or 'none'}", field="speaker")
    if diarization.model is None:
        raise Gone(f"job {job_id} was diarized by an earlier version, which kept no "
                   "embedding model: rerun it from diarize, then enroll again")
    embedding = diarization.embeddings.get(label)
    if embedding is None:
        raise Unprocessable(f"{label} of job {job_id} spoke too little to have an "
                            "embedding; enroll a longer sample of this voice")
    return Sample(embedding=unit(embedding), model=diarization.model, job_id=job.id,
                  label=label)


async def add_sample(voiceprints: VoiceprintStore, owner: str | None, name: str,
                     sample: Sample, *, existing: Voiceprint | None) -> Voiceprint:
    """``existing`` with ``sample`` added, or a new voiceprint ``name`` of it."""
    now = now_iso()
    if existing is None:
        updated = Voiceprint(id=new_id(), name=name, model=sample.model,
                             samples=[sample.embedding], created_at=now, updated_at=now)
    elif existing.model != sample.model:
        raise BadRequest(f"voiceprint {existing.name!r} was made with the diarization model "
                         f"{existing.model!r}, the sample with {sample.model!r}: their "
                         "embeddings cannot be mixed; enroll it anew under another name",
                         field="from_job")
    else:
        updated = msgspec.structs.replace(existing, samples=[*existing.samples,
                                                             sample.embedding], updated_at=now)
    await voiceprints.put(owner, updated)
    log.info("job=%s %s enrolled as voiceprint %s (%s, %d samples)", sample.job_id,
             sample.label, updated.id, updated.name, len(updated.samples))
    return updated


async def _unused(voiceprints: VoiceprintStore, owner: str | None, name: str) -> None:
    taken = await voiceprints.named(owner, name)
    if taken is not None:
        raise Conflict(f"a voiceprint is already named {name!r} ({taken.id}): add a sample "
                       f"to it with PATCH /speakers/{taken.id}, or choose another name")


async def _enrollment_job(request: Request[Any, Any, Any], services: Services,
                          owner: str | None) -> tuple[str, str]:
    """Submit the uploaded sample as a job of one speaker; its job id and the name."""
    names: list[str] = []

    def parse(upload: Upload) -> JobOptions:
        names.append(_name(upload.fields.get("name")))
        return JobOptions(num_speakers=1)

    settings = services.settings
    submitted = await submit(
        request, services.store, settings, owner=owner,
        max_seconds=min(settings.sync_max_seconds, settings.max_audio_seconds),
        too_long="a sample of one voice needs a minute at most", parse=parse,
        fields=_ENROLL_FIELDS)
    return submitted.job_id, names[0]


#: POST /speakers's form (it also takes JSON: see its description).
SAMPLE_FORM: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "maxLength": 100,
             "description": "The name jobs will show for this voice."},
    "file": {**AUDIO_FILE, "description": "A few seconds to a minute of one person speaking."},
    "url": AUDIO_URL}


@post("/speakers", status_code=201, request_max_body_size=None,
      operation_class=multipart(SAMPLE_FORM),
      responses=errors(400, 404, 409, 410, 413, 415, 422, 507, also={
          202: ResponseSpec(JobAccepted, description="The sample's job outlasted "
                            "SYNC_TIMEOUT_SECONDS: enroll it later with from_job.")}),
      summary="Enroll a voiceprint: a named voice that jobs with `identify` recognise",
      description="Either multipart/form-data with `name` and an audio sample of one voice "
                  "(`file`, or `url`; a few seconds to a minute): the sample is diarized as "
                  "a job and the answer waits for it (up to SYNC_TIMEOUT_SECONDS; then 202 "
                  "with the job, to enroll later with from_job). Or JSON "
                  '{"name", "from_job", "speaker"}: a speaker (label or name) of a '
                  "finished job. 409 when the name is taken.")
async def create_voiceprint(request: Request[Any, Any, Any], services: Services,
                            owner: str | None) -> Response[Any]:
    voiceprints = services.voiceprints
    if request.headers.get("content-type", "").startswith("multipart/"):
        job_id, name = await _enrollment_job(request, services, owner)
        job, _ = await finished_result(services, job_id, services.settings.sync_timeout_seconds)
        if job.status != JobStatus.COMPLETED:
            log.info("job=%s enrollment still %s: answering 202", job_id, job.status)
            return Response(JobAccepted(job_id=job_id, status=JobStatus(job.status)),
                            status_code=202, headers={"Location": f"/jobs/{job_id}"})
        sample = await job_sample(services, owner, job_id, None)
    else:
        body = await _json(request)
        name = _name(body.get("name"))
        sample = await job_sample(services, owner, body.get("from_job"), body.get("speaker"))
    await _unused(voiceprints, owner, name)
    created = await add_sample(voiceprints, owner, name, sample, existing=None)
    return Response(view(created), status_code=201,
                    headers={"Location": f"/speakers/{created.id}"})


async def _json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001 - any malformed body gets the same answer
        body = None
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object, as {"name": "Alice", "from_job": "<job id>", '
                         '"speaker": "SPEAKER_00"}, or multipart/form-data with name and file')
    return body


@get("/speakers", summary="Your voiceprints, by name", responses=errors())
async def list_voiceprints(services: Services, owner: str | None) -> list[VoiceprintView]:
    return [view(v) for v in await services.voiceprints.all(owner)]


@get("/speakers/{voiceprint_id:str}", summary="One voiceprint", responses=errors(400, 404))
async def get_voiceprint(voiceprint_id: str, services: Services,
                         owner: str | None) -> VoiceprintView:
    found = await services.voiceprints.get(owner, voiceprint_id)
    if found is None:
        raise _not_found(voiceprint_id)
    return view(found)


@patch("/speakers/{voiceprint_id:str}", status_code=200,
       responses=errors(400, 404, 409, 410, 422),
       summary="Rename a voiceprint, or add a sample to it",
       description='JSON: "name" renames it; "from_job" and "speaker" add that speaker\'s '
                   "embedding as one more sample (the voiceprint is their mean).")
async def update_voiceprint(voiceprint_id: str, data: dict[str, Any], services: Services,
                            owner: str | None) -> VoiceprintView:
    voiceprints = services.voiceprints
    found = await voiceprints.get(owner, voiceprint_id)
    if found is None:
        raise _not_found(voiceprint_id)
    unknown = sorted(set(data) - {"name", "from_job", "speaker"})
    if unknown:
        raise BadRequest(f"unknown field {shown(unknown[0])}; give name, or from_job and "
                         "speaker", field=unknown[0])
    if not data:
        raise BadRequest("give name, or from_job and speaker")
    if "name" in data:
        name = _name(data["name"])
        if name.casefold() != found.name.casefold():
            await _unused(voiceprints, owner, name)
        found = msgspec.structs.replace(found, name=name, updated_at=now_iso())
    if "from_job" in data or "speaker" in data:
        sample = await job_sample(services, owner, data.get("from_job"), data.get("speaker"))
        return view(await add_sample(voiceprints, owner, found.name, sample, existing=found))
    await voiceprints.put(owner, found)
    log.info("voiceprint %s renamed %s", found.id, found.name)
    return view(found)


@delete("/speakers/{voiceprint_id:str}", status_code=200, responses=errors(400, 404),
        summary="Delete a voiceprint and its embeddings")
async def delete_voiceprint(voiceprint_id: str, services: Services,
                            owner: str | None) -> Deleted:
    if not await services.voiceprints.delete(owner, voiceprint_id):
        raise _not_found(voiceprint_id)
    log.info("voiceprint %s deleted", voiceprint_id)
    return Deleted(voiceprint_id)


async def known_voices(services: Services, owner: str | None,
                       known: Sequence[tuple[str, bytes]]) -> Candidates:
    """Voices named by one request only (OpenAI's known_speaker_references[]): each audio
    is diarized as a job of one speaker, as an enrollment sample is, and the job deleted
    once its embedding is read, so nothing of them is stored."""
    store, settings = services.store, services.settings
    job_ids = [new_job_id() for _ in known]
    try:
        for job_id, (name, audio) in zip(job_ids, known, strict=True):
            files = artifacts.Files.of(settings.jobs_path, job_id)
            files.create()
            await asyncio.to_thread(files.input.write_bytes, audio)
            await store.create(job_id, JobOptions(num_speakers=1), owner=owner,
                               input_name=f"known speaker {name}",
                               max_seconds=settings.sync_max_seconds)
        voices = []
        for job_id, (name, _) in zip(job_ids, known, strict=True):
            job, _ = await finished_result(services, job_id, settings.sync_timeout_seconds)
            if job.status != JobStatus.COMPLETED:
                raise Unavailable(f"the known speaker {name!r} took longer than "
                                  f"{settings.sync_timeout_seconds:g} s to embed; send a "
                                  "shorter reference or retry later", retry_after=30)
            sample = await job_sample(services, owner, job_id, None)
            voices.append(Candidate(id=f"known:{name}", name=name, model=sample.model,
                                    embedding=sample.embedding))
        return Candidates(voiceprints=voices)
    finally:
        for job_id in job_ids:  # deleting also cancels, and removes the files of any
            await store.delete(job_id)
