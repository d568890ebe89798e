"""Voiceprints: a named voice's speaker embeddings, per owner, in Redis.

A voiceprint is made from the embeddings a job's stages computed for one speaker (of an
enrollment job, or of any finished job), so the gateway never loads a model. Each records
the model that computed them: embeddings of different models live in different spaces,
and a job whose speakers another model embedded never matches it.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from pipeline.keys import Keys


class Voiceprint(msgspec.Struct, kw_only=True):
    """A named voice, as stored."""

    id: str
    name: str
    model: str  # the model (pipeline) that computed the sample embeddings
    # One unit-length embedding per sample: adding a sample keeps the others, so the mean
    # can be recomputed and a bad sample would stay visible in the count.
    samples: list[list[float]]
    created_at: str
    updated_at: str

    @property
    def embedding(self) -> list[float]:
        """The unit-length mean of the samples: what a job's speakers are compared with."""
        return unit([sum(column) / len(self.samples) for column in zip(*self.samples,
                                                                          strict=True)])


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A voiceprint as a job gets it to identify its speakers against (the job's
    ``voiceprints.json``, written when the job is queued)."""

    id: str
    name: str
    model: str
    embedding: list[float]


class Candidates(msgspec.Struct, kw_only=True):
    voiceprints: list[Candidate]


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (cosine similarity is then a dot product)."""
    norm = math.sqrt(sum(x * x for x in vector))
    if not norm or not math.isfinite(norm):
        raise ValueError("an embedding must be finite and not all zeros")
    return [x / norm for x in vector]


def new_id() -> str:
    return "vp_" + secrets.token_hex(8)


def candidate(voiceprint: Voiceprint) -> Candidate:
    return Candidate(id=voiceprint.id, name=voiceprint.name, model=voiceprint.model,
                     embedding=voiceprint.embedding)


class VoiceprintStore:
    """The voiceprints of each owner: one hash per owner, a JSON record per id."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def all(self, owner: str | None) -> list[Voiceprint]:
        raw = await self.redis.hgetall(self.keys.voiceprints(owner))
        found = [msgspec.json.decode(value, type=Voiceprint) for value in raw.values()]
        return sorted(found, key=lambda v: (v.name.casefold(), v.id))

    async def get(self, owner: str | None, voiceprint_id: str) -> Voiceprint | None:
        raw = await self.redis.hget(self.keys.voiceprints(owner), voiceprint_id)
        return None if raw is None else msgspec.json.decode(raw, type=Voiceprint)

    async def named(self, owner: str | None, name: str) -> Voiceprint | None:
        """The owner's voiceprint of that name (names are unique per owner, ignoring case)."""
        return next((v for v in await self.all(owner)
                     if v.name.casefold() == name.casefold()), None)

    async def put(self, owner: str | None, voiceprint: Voiceprint) -> None:
        await self.redis.hset(self.keys.voiceprints(owner), voiceprint.id,
                              msgspec.json.encode(voiceprint).decode())

    async def delete(self, owner: str | None, voiceprint_id: str) -> bool:
        removed = await self.redis.hdel(self.keys.voiceprints(owner), voiceprint_id)
        return bool(removed)
