"""What the OpenAPI schema says beyond what Litestar derives from the handlers: the
multipart forms that the upload endpoints read themselves (they stream the body, so no
handler parameter describes it), and every error an endpoint answers, in its real shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema

from pipeline.errors import ErrorBody
from stages.options import JobOptions, allowed

#: When each status is answered (the body is ErrorBody, or OpenAI's shape under /v1).
ERRORS: dict[int, str] = {
    400: "A parameter or form field is invalid: `field` names it, the message says what it "
         "takes.",
    401: "API_KEYS is set and the request has no key, or an unknown one.",
    404: "No such job (or run, or model) for this key: unknown, expired, deleted, or "
         "another key's.",
    409: "The job is not in a state that allows this (not completed yet, or running).",
    410: "What the request needs has expired or was deleted.",
    413: "The upload is larger than MAX_UPLOAD_BYTES, or its audio longer than the limit.",
    415: "The body is not a multipart form, or the file is not audio.",
    416: "The Range header asks for bytes outside the audio (Content-Range: bytes */SIZE).",
    422: "The job failed, or the Idempotency-Key made a job from another request.",
    503: "The job store cannot be reached, or MAX_QUEUED_JOBS jobs wait (Retry-After says "
         "when to try again).",
    504: "The job took longer than OPENAI_TIMEOUT_SECONDS; it runs on under /jobs/{id}.",
    507: "No space left under JOBS_DIR for the upload.",
}


def errors(*statuses: int, body: type[msgspec.Struct] = ErrorBody,
           also: Mapping[int, ResponseSpec] | None = None) -> dict[int, ResponseSpec]:
    """An endpoint's answers besides its main one: ``also`` (another success), its error
    ``statuses``, and 401 and 503, which every endpoint may answer."""
    return {**(also or {}), **{
        status: ResponseSpec(body, description=ERRORS[status], generate_examples=False)
        for status in sorted({*statuses, 401, 503})}}


def _option_fields() -> dict[str, dict[str, Any]]:
    """Each job option as a form field: its JSON schema without null (a field left out is
    unset), and its description with what it takes."""
    schema = msgspec.json.schema(JobOptions)
    fields = {}
    for name, spec in schema["$defs"]["JobOptions"]["properties"].items():
        kinds = [b for b in spec.get("anyOf", [spec]) if b.get("type") != "null"]
        # Several kinds (identify: true or names) arrive in a form as one text field.
        kind = kinds[0] if len(kinds) == 1 else {"type": "string"}
        field = {key: value for key, value in kind.items() if key not in ("default", "description")}
        if "enum" in field and all(isinstance(v, str) for v in field["enum"]):
            field["type"] = "string"  # msgspec leaves it to the values; Swagger UI wants it
        field["description"] = f"{spec['description']} Takes {allowed(name)}."
        if spec.get("default") is not None:
            field["default"] = spec["default"]
        fields[name] = unset(field)
    return fields


def unset(field: dict[str, Any]) -> dict[str, Any]:
    """``field`` offered blank by Swagger UI's "Try it out" unless it has a default: else
    the form comes filled with made-up values (a URL besides the file, a model "string")."""
    blank: object = [] if field.get("type") == "array" else ""
    return field if "default" in field else {**field, "examples": [blank]}


AUDIO_FILE = {"type": "string", "format": "binary",
              "description": "The audio (or a video with audio), in any format FFmpeg reads."}
AUDIO_URL = unset({"type": "string", "format": "uri",
                   "description": "Instead of `file`: an http(s) URL the service downloads."})
#: The form of POST /jobs and POST /transcribe.
JOB_FORM = {"file": AUDIO_FILE, "url": AUDIO_URL, **_option_fields()}


def multipart(fields: dict[str, dict[str, Any]]) -> type[Operation]:
    """An operation whose request body is a multipart form of ``fields``."""
    schema = {"type": "object", "properties": fields}
    body = RequestBody(required=True, content={
        # A plain JSON schema: Schema objects cannot say `format: binary` any more plainly.
        "multipart/form-data": OpenAPIMediaType(schema=cast(Schema, schema))})

    @dataclass
    class MultipartOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return MultipartOperation
