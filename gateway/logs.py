"""What the gateway logs about requests: an access line per request (with the time, from
the one log format of pipeline.logs), routine ones at debug level, and the reason a
request was refused."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from litestar.types import Scope

log = logging.getLogger("gateway.requests")

ACCESS_LOGGER = "uvicorn.access"


def routine(method: str, target: str, status: int) -> bool:
    """Whether a request is one of those a client or a monitor repeats all day: health
    checks and metric scrapes (a failing health check too: its answer says why, and
    probes repeat it every few seconds while a service starts), and long polls of a job
    and event streams that succeed."""
    if method != "GET":
        return False
    url = urlsplit(target)
    if url.path in ("/health", "/metrics"):
        return True
    if status >= 400:
        return False
    wait = parse_qs(url.query).get("wait", ["0"])[-1]
    return url.path.endswith("/events") or (url.path.startswith("/jobs/")
                                            and wait not in ("", "0"))


class RoutineRequests(logging.Filter):
    """Moves the access lines of routine requests to debug level: at INFO they outnumbered
    every other line (a client following one job polls it every few seconds)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access line: (client, method, path with query, HTTP version, status).
        args = record.args
        if (isinstance(args, tuple) and len(args) == 5
                and routine(str(args[1]), str(args[2]), int(str(args[4])))):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_routine_requests() -> None:
    logging.getLogger(ACCESS_LOGGER).addFilter(RoutineRequests())


def log_refusal(scope: Scope, status: int, reason: str) -> None:
    """The reason a request was refused, with the request: the access line says only the
    status. Refused reads (a poll of a deleted job) at debug, writes (uploads) at info."""
    method = str(scope.get("method", "?"))
    query = bytes(scope.get("query_string", b"")).decode(errors="replace")
    target = str(scope.get("path", "?")) + (f"?{query}" if query else "")
    client = scope.get("client")
    headers = dict(scope.get("headers", []))
    size = headers.get(b"content-length", b"").decode(errors="replace")
    level = (logging.WARNING if status >= 500 else
             logging.DEBUG if method in ("GET", "HEAD") else logging.INFO)
    log.log(level, "refused %s %s from %s%s: %d %s", method, target,
            client[0] if client else "?", f" ({size} bytes)" if size else "", status, reason)
