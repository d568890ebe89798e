"""What the stage streams say about the workers and the queue, read with XINFO."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pipeline.runtime import consumer_is_dead
from pipeline.store import JobStore


class StageStats(msgspec.Struct, frozen=True, kw_only=True):
    consumers: int  # live consumers of the stage's group
    pending: int  # delivered to a consumer, not yet acknowledged
    lag: int  # waiting for a consumer
    dead_letters: int


async def _group_info(redis: Redis, stream: str, group: str) -> dict[str, Any] | None:
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: no job was ever queued for the stage
        return None
    return next((g for g in groups if g["name"] == group), None)


async def stage_stats(store: JobStore, stage: str) -> StageStats:
    redis, keys = store.redis, store.keys
    stream, group = keys.stream(stage), keys.group(stage)
    info = await _group_info(redis, stream, group)
    live = 0
    if info is not None:
        for consumer in await redis.xinfo_consumers(stream, group):
            live += not consumer_is_dead(consumer["idle"], store.settings)
    return StageStats(
        consumers=live,
        pending=int(info["pending"]) if info else 0,
        lag=await store.queue_lag(stage),
        dead_letters=int(await redis.xlen(keys.dead_letters(stage))),
    )
