"""Connecting to Redis: the configured server, or the embedded one."""

from __future__ import annotations

import asyncio

from redis import exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from pipeline.embedded import ensure_server
from pipeline.settings import Settings

#: Errors after which a command may simply be retried on a new connection.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    exceptions.ConnectionError, exceptions.TimeoutError, OSError)
#: Error replies of a server that is up but cannot serve for now: MISCONF (it refuses writes
#: because it cannot persist them, e.g. its disk is full), LOADING (reading its data at
#: start), READONLY and MASTERDOWN (a replica without its primary).
_OUTAGE_REPLIES = ("MISCONF", "LOADING", "READONLY", "MASTERDOWN")


#: What may be an outage: catch these, then ask :func:`is_outage`.
MAYBE_OUTAGE: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, exceptions.ResponseError)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the server is unreachable or cannot serve for now, so that the
    same command may succeed later: a lost connection, or one of the replies above."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    return (isinstance(exc, exceptions.ResponseError)
            and str(exc).startswith(_OUTAGE_REPLIES))


class Backoff:
    """Exponential backoff with a cap, reset after a success."""

    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self) -> None:
        await asyncio.sleep(min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1


async def connect(settings: Settings) -> Redis:
    """A client for ``REDIS_URL``, or for the embedded server of ``JOBS_DIR``."""
    url = settings.redis_url
    if url is None:
        url = await asyncio.to_thread(ensure_server, settings.jobs_path)
    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        # Longer than the runtime's blocking reads, which would otherwise time out (the
        # client's default follows the connect timeout).
        socket_timeout=settings.block_seconds + 10,
        # Single commands ride out short blips; the runtime's loops handle longer outages.
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
        retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
    )
