"""The project's exceptions: one small explicit hierarchy, and the HTTP status of each.

Stages raise :class:`PermanentError` for bad input (the job fails with the message as its
readable reason) and :class:`TransientError` for conditions worth retrying (a device out of
memory, a lost connection). Of anything else a stage raises, what a retry cannot fix (a
ValueError, TypeError, LookupError...: a bug or unchecked input) fails the job at once too;
the rest counts as a failed attempt, retried after the job's own backoff until
``MAX_DELIVERIES``, then dead-lettered (:func:`pipeline.runtime.is_permanent`).

The HTTP API refuses a request with an :class:`ApiError`. :data:`HTTP_STATUS` is the one
table of their statuses: the gateway answers each error with its status and the body
:class:`ErrorBody`, and the command-line client turns such an answer back into the same
class with the same message (:func:`error_for`).
"""

from __future__ import annotations

import msgspec

#: Seconds a client refused because the queue is full is asked to wait before trying again.
RETRY_AFTER_SECONDS = 30


class PipelineError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(PipelineError):
    """A setting read from the environment is missing or malformed."""


class IncompatibleInstall(ConfigError):
    """An installed library is not a version the code was written for, or a file a package
    ships is not the one expected: the process refuses to start, with this message."""


class PermanentError(PipelineError):
    """The job cannot succeed, however often it is retried: the message is shown to users."""


class TransientError(PipelineError):
    """The job may succeed later: the entry stays pending and is retried after a backoff."""


class RetryLater(TransientError):
    """An observer's attempt failed and is worth repeating ``after_seconds`` from now: its
    entry is acknowledged and queued again for then, so that other entries go on meanwhile
    (see :class:`pipeline.runtime.ObserverWorker`)."""

    def __init__(self, message: str, after_seconds: float) -> None:
        super().__init__(message)
        self.after_seconds = after_seconds


class AddressRefused(PermanentError):
    """A URL names an address the service must not connect to on a client's behalf (see
    :mod:`pipeline.addresses`): the message says which and why."""


class JobGone(PipelineError):
    """The job was cancelled, deleted or expired while a stage was working on it."""


class OwnershipLost(PipelineError):
    """Another consumer claimed this entry (this worker stalled past the claim idle time)."""


class EmbeddedServerError(PipelineError):
    """The embedded Valkey server could not be started or reached."""


class ApiError(PipelineError):
    """A request the service refuses: the message is shown to the client as is, so it says
    what to do about it. ``status`` is the class's entry in :data:`HTTP_STATUS`."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the request's parameter or form field at fault, if one is
        self.status = status_of(type(self))

    def headers(self) -> dict[str, str]:
        """The response headers the answer carries besides the body."""
        return {}


class BadRequest(ApiError):
    """The request is malformed, or a parameter or form field is invalid."""


class Unauthorized(ApiError):
    """API keys are on and the request has none, or an unknown one."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class NotFound(ApiError):
    """No such job (or run) for this key."""


class Conflict(ApiError):
    """The job is not in a state that allows the request, or not yet."""


class Gone(ApiError):
    """What the request needs existed, but was deleted or has expired."""


class RangeNotSatisfiable(ApiError):
    """A Range header asks for bytes outside the file; ``size`` is the file's length
    (None where it is not known: the client's side, see :func:`error_for`)."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message, field="Range")
        self.size = size

    def headers(self) -> dict[str, str]:
        return {} if self.size is None else {"Content-Range": f"bytes */{self.size}"}


class TooLarge(ApiError):
    """The upload, or the audio in it, is longer than the limit."""


class UnsupportedMedia(ApiError):
    """The request body is not a multipart form, or the upload is not audio."""


class Unprocessable(ApiError):
    """The request is well formed but cannot be carried out as it stands."""


class JobFailed(Unprocessable):
    """The job ended without a result (an endpoint that waits for the job answers this)."""


class IdempotencyMismatch(Unprocessable):
    """An Idempotency-Key already made a job from a different request."""


class Unavailable(ApiError):
    """The service cannot take the request now; ``retry_after`` says when to try again."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class InsufficientStorage(ApiError):
    """The disk the request must write to is full."""


class QueueFull(Unavailable):
    """As many jobs as ``MAX_QUEUED_JOBS`` allows already wait for the first stage."""

    def __init__(self, waiting: int, limit: int) -> None:
        super().__init__(f"{waiting} jobs are waiting to be processed (limit {limit}); "
                         f"try again in {RETRY_AFTER_SECONDS} seconds", RETRY_AFTER_SECONDS)
        self.waiting = waiting
        self.limit = limit


#: The status each error is answered with; a subclass has its nearest listed base's.
#: One class per status, so that an answer's status names its class again.
HTTP_STATUS: dict[type[ApiError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    UnsupportedMedia: 415,
    RangeNotSatisfiable: 416,
    Unprocessable: 422,
    ApiError: 500,
    Unavailable: 503,
    InsufficientStorage: 507,
}
_CLASS_OF: dict[int, type[ApiError]] = {status: cls for cls, status in HTTP_STATUS.items()}


def status_of(cls: type[ApiError]) -> int:
    return next(HTTP_STATUS[c] for c in cls.__mro__ if c in HTTP_STATUS)


def error_for(status: int, message: str) -> ApiError:
    """The error an answer with this status and message stands for (the client's side).

    A status without a class of its own (a 405, a proxy's 502) gets the base class; the
    error keeps the answer's status either way.
    """
    error = _CLASS_OF.get(status, ApiError)(message)
    error.status = status
    return error


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    status: int
    message: str
    field: str | None = None  # the parameter or form field at fault, when there is one


class ErrorBody(msgspec.Struct, frozen=True):
    """The body of every 4xx and 5xx answer: ``{"error": {"status": N, "message": "..."}}``,
    with ``"field"`` naming the parameter or form field at fault when there is one."""

    error: ErrorDetail
