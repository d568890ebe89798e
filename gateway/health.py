"""GET /health: is Redis reachable and able to persist, is there room under JOBS_DIR, and
does every stage have a live worker?"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.auth import PUBLIC, is_admin
from gateway.services import Services
from gateway.streams import StageStats, stage_stats
from pipeline.connection import CONNECTION_ERRORS, MAYBE_OUTAGE, is_outage

log = logging.getLogger("gateway.health")

#: Below this much free space under JOBS_DIR the service is reported unhealthy: uploads and
#: stage outputs are about to fail (uploads get 507).
LOW_DISK_BYTES = 64 * 1024**2
#: INFO persistence fields that say whether the server's last writes to disk worked.
_PERSISTENCE_STATUS = ("aof_last_write_status", "aof_last_bgrewrite_status",
                       "rdb_last_bgsave_status")


class Storage(msgspec.Struct, frozen=True, kw_only=True):
    jobs_dir: str
    free_bytes: int  # free space on the disk of JOBS_DIR
    # "ok"; "unknown" when the server does not tell (INFO disabled); else what failed, e.g.
    # "aof_last_write_status: err" (the server then refuses writes: MISCONF).
    persistence: str


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "ok", or "unavailable" with the reasons in `problems`
    redis: bool
    stages: dict[str, StageStats]
    problems: list[str]
    storage: Storage | None = None


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """/health without an operator key while API keys are on: up or down, no details."""

    status: str  # "ok" or "unavailable"


def _free_bytes(path: Path) -> int:
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


async def free_bytes(path: Path) -> int:
    """Free space on the disk holding ``path`` (or the nearest folder above it that exists)."""
    return await asyncio.to_thread(_free_bytes, path)


async def persistence_state(redis: Redis) -> str:
    try:
        info = await redis.info("persistence")
    except ResponseError:
        return "unknown"
    failed = [f"{name}: {info[name]}" for name in _PERSISTENCE_STATUS
              if info.get(name, "ok") != "ok"]
    return ", ".join(failed) or "ok"


async def storage_state(services: Services) -> Storage:
    """Free space under JOBS_DIR and the server's persistence (Redis must answer)."""
    jobs = services.settings.jobs_path
    return Storage(jobs_dir=str(jobs), free_bytes=await free_bytes(jobs),
                   persistence=await persistence_state(services.store.redis))


def storage_problems(storage: Storage) -> list[str]:
    problems = []
    if storage.free_bytes < LOW_DISK_BYTES:
        problems.append(f"the disk of JOBS_DIR ({storage.jobs_dir}) is nearly full "
                        f"({storage.free_bytes // 1024**2} MiB free): uploads get 507; "
                        "free space there")
    if storage.persistence not in ("ok", "unknown"):
        problems.append(f"Redis cannot write its data to disk ({storage.persistence}) and "
                        "refuses writes until it can; free space on its disk")
    return problems


@get("/health", opt={PUBLIC: True}, summary="Redis, the disk and the stage workers",
     responses={503: ResponseSpec(Health, generate_examples=False,
                                  description="Something is wrong: `problems` says what.")},
     description="200 when Redis answers and can persist, JOBS_DIR has room and every "
                 "stage has a live worker, else 503. With API_KEYS set, the details "
                 "(stages, problems, storage) need a key of ADMIN_API_KEYS; without one "
                 "the body is only the status.")
async def health(request: Request[Any, Any, Any], services: Services) -> Response[Health | Status]:
    report = await _check(services)
    body: Health | Status = report.content
    if not is_admin(services.settings, request.headers.get("authorization")):
        body = Status(status=report.content.status)
    return Response(body, status_code=report.status_code)


async def _check(services: Services) -> Response[Health]:
    redis = services.store.redis
    stages: dict[str, StageStats] = {}
    problems: list[str] = []
    storage: Storage | None = None
    try:
        await redis.ping()
        storage = await storage_state(services)
        problems += storage_problems(storage)
        for stage in services.store.table.names:
            stages[stage] = stats = await stage_stats(services.store, stage)
            if stats.consumers == 0:
                problems.append(f"no live {stage} worker: start one (stt-worker {stage})")
    except ResponseError as exc:
        if not is_outage(exc):
            raise
        # Up, but refusing (MISCONF while it cannot persist, PING included): INFO still
        # answers, and says why.
        problems.append(f"Redis refuses commands ({exc})")
        if storage is None:
            with contextlib.suppress(*MAYBE_OUTAGE):
                storage = await storage_state(services)
                problems += storage_problems(storage)
        return Response(Health(status="unavailable", redis=True, stages=stages,
                               problems=problems, storage=storage), status_code=503)
    except CONNECTION_ERRORS as exc:
        log.warning("health check: Redis unreachable: %s", exc)
        jobs = services.settings.jobs_path
        body = Health(status="unavailable", redis=False, stages={},
                      problems=[f"Redis unreachable ({exc}); check REDIS_URL"],
                      storage=Storage(jobs_dir=str(jobs), free_bytes=await free_bytes(jobs),
                                      persistence="unknown"))
        return Response(body, status_code=503)
    body = Health(status="unavailable" if problems else "ok", redis=True, stages=stages,
                  problems=problems, storage=storage)
    return Response(body, status_code=503 if problems else 200)
