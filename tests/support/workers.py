"""Running stage workers in tests: in-process tasks, or real worker processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from pipeline.keys import LIVE
from pipeline.runtime import Worker
from pipeline.stage import Stage
from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.stages import TEST_STAGES

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def running_workers(
    store: JobStore, stages: Mapping[str, type[Stage]] = TEST_STAGES, per_stage: int = 1,
    lane: str = LIVE,
) -> AsyncIterator[list[Worker]]:
    """Workers for every stage as tasks of this event loop; stopped gracefully on exit."""
    workers = [Worker(cls(), store, lane=lane, consumer=f"{name}-{lane}-{i}")
               for name, cls in stages.items() for i in range(per_stage)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for w in workers:
            w.request_stop()
        await asyncio.gather(*tasks)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in (("REDIS_URL", settings.redis_url), ("JOBS_DIR", settings.jobs_dir),
                        ("KEY_PREFIX", settings.key_prefix),
                        ("CLAIM_IDLE_SECONDS", str(settings.claim_idle_seconds)),
                        ("BLOCK_SECONDS", str(settings.block_seconds)),
                        ("MAX_DELIVERIES", str(settings.max_deliveries))):
        if value is not None:
            env[name] = value
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def spawn_worker(settings: Settings, stage: str, consumer: str,
                 stage_class: str | None = None, log: Path | None = None,
                 **env: str) -> subprocess.Popen[bytes]:
    """A real ``stt-worker`` process (by default running the test stage ``stage``)."""
    cls = stage_class or f"tests.support.stages:{TEST_STAGES[stage].__name__}"
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.worker", stage, "--stage-class", cls,
         "--consumer", consumer],
        env=worker_env(settings, **env), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


async def until(predicate: Callable[[], object], timeout: float = 30.0,
                what: str = "condition") -> None:
    """Wait until ``predicate()`` (sync or async) is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
