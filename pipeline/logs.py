"""Logging set-up shared by every process, and the per-job logger."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


class JobLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the job id (and stage), so a job's story can be grepped."""

    def process(self, msg: Any,
                kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        return f"job={extra['job_id']} stage={extra['stage']} {msg}", kwargs


def job_log(logger: logging.Logger, job_id: str, stage: str) -> JobLog:
    return JobLog(logger, {"job_id": job_id, "stage": stage})
