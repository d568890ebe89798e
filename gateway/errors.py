"""One JSON error body for every 4xx and 5xx answer, whoever raised it.

The project's own errors (:class:`pipeline.errors.ApiError`) carry their status and message;
Litestar's own (an unknown route, a malformed query parameter) are reworded here.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError

from pipeline.connection import is_outage
from pipeline.errors import ApiError, ErrorBody, ErrorDetail, InsufficientStorage, Unavailable

log = logging.getLogger("gateway")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None,
                   field: str | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(ErrorDetail(status, message, field)), status_code=status,
                    headers=dict(headers) if headers else None)


def api_error_handler(request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    return error_response(exc.status, exc.message, exc.headers(), exc.field)


# Litestar's own errors carry terse details ("Not Found"); these say what to do instead.
_ADVICE: dict[int, str] = {
    404: "no such endpoint; see /schema for the API",
    405: "method not allowed on this endpoint; see /schema for the API",
    413: "the request body is too large",
}


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """The message, and the parameter at fault when there is one."""
    # Litestar lists the offending parameters in `extra`; name them so the client can fix them.
    problems, keys = [], []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            source = getattr(item.get("source"), "value", item.get("source") or "request")
            keys.append(str(item.get("key", "?")))
            problems.append(f"{source} parameter '{keys[-1]}': "
                            f"{item.get('message', 'invalid value')}")
    return ("invalid request: " + ("; ".join(problems) or str(exc.detail)),
            keys[0] if len(keys) == 1 else None)


def http_exception_handler(request: Request[Any, Any, Any],
                           exc: HTTPException) -> Response[ErrorBody]:
    field = None
    if isinstance(exc, ValidationException):
        message, field = _validation_message(exc)
    else:
        message = _ADVICE.get(exc.status_code, exc.detail)
    return error_response(exc.status_code, message, exc.headers, field)


#: Seconds a client is asked to wait while Redis is unreachable (a restart takes a few).
OUTAGE_RETRY_AFTER_SECONDS = 5
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def outage_error(request: Request[Any, Any, Any], exc: Exception) -> ApiError | None:
    """What an outage or a full disk, which reach the handlers as the library's exception,
    is to the client: 507 naming the disk, or 503 with Retry-After."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        jobs_dir = request.app.state.settings.jobs_path
        return InsufficientStorage(
            f"no space left on the disk of JOBS_DIR ({jobs_dir}) to store the upload; "
            "the operator must free space there; try again later")
    # Only the client's errors: any other OSError is no outage of Redis.
    if isinstance(exc, RedisError) and is_outage(exc):
        return Unavailable(
            f"the job store (Redis) cannot be reached or cannot write ({exc}); try again in "
            f"{OUTAGE_RETRY_AFTER_SECONDS} seconds", OUTAGE_RETRY_AFTER_SECONDS)
    return None


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    mapped = outage_error(request, exc)
    if mapped is not None:
        log.warning("%s %s answered %d: %s", request.method, request.url.path, mapped.status,
                    exc)
        return api_error_handler(request, mapped)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR,
                          "internal error; try again later, and report it if it persists")
