"""The consumers of part ``queue``.

:class:`NoopDecode` is a decode stage that does nothing but note, on its first line, when
its work started (CLOCK_MONOTONIC, which every process on the machine shares) and push
that to a Redis list. ``python -m benchmark.noop URL STREAM LIST`` is the bare-Redis
reference: XREADGROUP in a loop, noting when each entry arrived, nothing else.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, cast

import redis

from stages.settings import Settings
from stages.table import Context, SpeechStage

STARTS = "bench:queue:starts"


class NoopDecode(SpeechStage):
    name = "decode"

    def setup(self, settings: Settings) -> None:
        if settings.redis_url is None:
            raise RuntimeError("the no-op stage needs REDIS_URL")
        self.redis = redis.Redis.from_url(settings.redis_url)

    def process(self, ctx: Context) -> None:
        started = time.monotonic_ns()
        self.redis.rpush(STARTS, f"{ctx.job_id} {started}")


def raw_consumer(url: str, stream: str, results: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by an earlier run
        client.xgroup_create(stream, "raw", id="0", mkstream=True)
    client.rpush(results, "ready")
    while True:
        reply = cast(list[Any], client.xreadgroup("raw", "raw-1", {stream: ">"}, count=1,
                                                  block=5000))
        arrived = time.monotonic_ns()
        for _, entries in reply or []:
            for entry_id, fields in entries:
                client.xack(stream, "raw", entry_id)
                client.rpush(results, f"{fields['sent']} {arrived}")


if __name__ == "__main__":
    raw_consumer(sys.argv[1], sys.argv[2], sys.argv[3])
