"""Logging set-up shared by every process, and the job every line is about.

Every line about a job carries its id (and stage): the worker runtime sets the job it is
processing in a context variable (:func:`job_context`), and a filter on the one handler
copies it into every record, whichever logger wrote it, the libraries' included, from the
event loop or from the thread the stage computes in (``asyncio.to_thread`` copies the
context). ``LOG_FORMAT=json`` writes one JSON object per line for log collectors.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import msgspec

LogFormat = Literal["text", "json"]

#: The job (id, stage) the code running in this context works on, if any.
_current_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "current_job", default=None)

# Lines written outside a job's context that name the job themselves ("job=<id> ...").
_NAMED_JOB = re.compile(r"^job=(\w+)")


@contextmanager
def job_context(job_id: str | None, stage: str) -> Iterator[None]:
    """Every line logged inside the block, by any logger, is about ``job_id`` in ``stage``."""
    if job_id is None:
        yield
        return
    # A library that created its logger since the last job (on import, on its first
    # model load) may have given it a handler of its own: bring it under the root's.
    adopt_stray_loggers()
    token = _current_job.set((job_id, stage))
    try:
        yield
    finally:
        _current_job.reset(token)


class JobFilter(logging.Filter):
    """Gives every record ``job_id`` and ``stage`` (None outside a job), and ``job_prefix``,
    the ``job=... stage=... `` the text format puts before the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id: str | None = getattr(record, "job_id", None)
        stage: str | None = getattr(record, "stage", None)
        if job_id is None and (current := _current_job.get()) is not None:
            job_id, stage = current
        named = _NAMED_JOB.match(record.getMessage())
        if job_id is None and named:
            job_id = named.group(1)
        record.job_id, record.stage = job_id, stage
        if job_id is None or named:
            record.job_prefix = ""
        else:
            record.job_prefix = f"job={job_id} " + (f"stage={stage} " if stage else "")
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(job_prefix)s%(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and
    job_id, stage and exception where there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("job_id", "stage"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


_set_up = False


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    global _set_up
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Warnings too become lines in the one format, with the job they were raised in.
    logging.captureWarnings(True)
    _set_up = True
    adopt_stray_loggers()


def adopt_stray_loggers() -> None:
    """Loggers that write to the console through a handler of their own (some libraries
    also stop passing their lines on, others then show each line twice) are made to pass
    them to the root's handler instead: one format for every line, and the job id on each."""
    if not _set_up:
        return  # logging is not ours to arrange (pipeline used as a library, a test)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue
        console = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                   and getattr(h, "stream", None) in (sys.stdout, sys.stderr)]
        if console:
            for handler in console:
                logger.removeHandler(handler)
            # Kept non-empty: some libraries install their handler again when they find none.
            logger.addHandler(logging.NullHandler())
            logger.propagate = True


class JobLog(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every line is about one job (and stage), so a job's story can be
    grepped: the handler's filter puts ``job=... stage=...`` before the message."""

    def process(self, msg: Any,
                kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def job_log(logger: logging.Logger, job_id: str, stage: str) -> JobLog:
    return JobLog(logger, {"job_id": job_id, "stage": stage})
