"""One JSON error body for every 4xx and 5xx answer, whoever raised it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("gateway")


class ErrorDetail(msgspec.Struct, frozen=True):
    status: int
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class ApiError(HTTPException):
    """An error whose message is shown to the client as is: say what to do about it."""

    def __init__(self, status_code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail=message, status_code=status_code,
                         headers=dict(headers) if headers else None)


def error_response(status: int, message: str,
                   headers: Mapping[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(ErrorDetail(status, message)), status_code=status,
                    headers=dict(headers) if headers else None)


# Litestar's own errors carry terse details ("Not Found"); these say what to do instead.
_ADVICE: dict[int, str] = {
    401: "send `Authorization: Bearer <api key>`",
    404: "no such endpoint; see /schema for the API",
    405: "method not allowed on this endpoint; see /schema for the API",
    413: "the request body is too large",
}


def _validation_message(exc: ValidationException) -> str:
    # Litestar lists the offending parameters in `extra`; name them so the client can fix them.
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            source = getattr(item.get("source"), "value", item.get("source") or "request")
            where = f"{source} parameter '{item.get('key', '?')}'"
            problems.append(f"{where}: {item.get('message', 'invalid value')}")
    return "invalid request: " + ("; ".join(problems) or str(exc.detail))


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if isinstance(exc, ApiError):
        message = exc.detail
    elif isinstance(exc, ValidationException):
        message = _validation_message(exc)
    else:
        message = _ADVICE.get(exc.status_code, exc.detail)
    return error_response(exc.status_code, message, exc.headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR,
                          "internal error; try again later, and report it if it persists")
