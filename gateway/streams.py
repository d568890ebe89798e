"""What the stage streams say about the workers and the queue, read with XINFO."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pipeline.settings import Settings
from pipeline.store import JobStore
from pipeline.types import StageName


class StageStats(msgspec.Struct, frozen=True, kw_only=True):
    consumers: int  # live consumers of the stage's group
    pending: int  # delivered to a consumer, not yet acknowledged
    lag: int  # waiting for a consumer
    dead_letters: int


def live_idle_limit_ms(settings: Settings) -> float:
    """A consumer idle longer than this is taken for dead.

    Workers block on reads for at most BLOCK_SECONDS and heartbeat running jobs every
    quarter of CLAIM_IDLE_SECONDS, so a live one is never idle much longer than either.
    """
    return max(3 * settings.claim_idle_seconds, 3 * settings.block_seconds, 30.0) * 1000


async def _group_info(redis: Redis, stream: str, group: str) -> dict[str, Any] | None:
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: no job was ever queued for the stage
        return None
    return next((g for g in groups if g["name"] == group), None)


async def stage_stats(store: JobStore, stage: StageName) -> StageStats:
    redis, keys = store.redis, store.keys
    stream, group = keys.stream(stage), keys.group(stage)
    info = await _group_info(redis, stream, group)
    live = 0
    if info is not None:
        limit = live_idle_limit_ms(store.settings)
        for consumer in await redis.xinfo_consumers(stream, group):
            live += consumer["idle"] < limit
    return StageStats(
        consumers=live,
        pending=int(info["pending"]) if info else 0,
        lag=await store.queue_lag(stage),
        dead_letters=int(await redis.xlen(keys.dead_letters(stage))),
    )
