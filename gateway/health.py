"""GET /health: is Redis reachable, and does every stage have a live worker?"""

from __future__ import annotations

import logging

import msgspec
from litestar import Response, get

from gateway.auth import PUBLIC
from gateway.services import Services
from gateway.streams import StageStats, stage_stats
from pipeline.connection import CONNECTION_ERRORS

log = logging.getLogger("gateway.health")


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "ok", or "unavailable" with the reasons in `problems`
    redis: bool
    stages: dict[str, StageStats]
    problems: list[str]


@get("/health", opt={PUBLIC: True}, summary="Redis and the stage workers",
     description="200 when Redis answers and every stage has a live worker, else 503.")
async def health(services: Services) -> Response[Health]:
    redis = services.store.redis
    stages: dict[str, StageStats] = {}
    problems: list[str] = []
    try:
        await redis.ping()
        for stage in services.store.table.names:
            stages[stage] = stats = await stage_stats(services.store, stage)
            if stats.consumers == 0:
                problems.append(f"no live {stage} worker: start one (stt-worker {stage})")
    except CONNECTION_ERRORS as exc:
        log.warning("health check: Redis unreachable: %s", exc)
        body = Health(status="unavailable", redis=False, stages={},
                      problems=[f"Redis unreachable ({exc}); check REDIS_URL"])
        return Response(body, status_code=503)
    body = Health(status="unavailable" if problems else "ok", redis=True, stages=stages,
                  problems=problems)
    return Response(body, status_code=503 if problems else 200)
