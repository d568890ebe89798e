"""Housekeeping: removing what nothing refers to any more (expired jobs' folders and index
entries, stale uploads), and bringing jobs stored by an earlier version up to date.

A job's hash expires in Redis after JOB_TTL_SECONDS, but its folder stays on disk and its
id in the job indexes; and an upload cut short by a crashed gateway leaves its temp file
behind. Every worker (in its periodic maintenance) and every gateway offers to run a pass;
one process per key prefix runs it, at most once every INTERVAL_SECONDS, so a deployment of
only workers cleans its disk too and N processes do not all scan the same folder.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from pipeline.connection import CONNECTION_ERRORS
from pipeline.files import uploads_dir, valid_job_id
from pipeline.store import JobStore, _batches

log = logging.getLogger(__name__)

#: Younger files are left alone: a job being created has its folder before its hash.
MIN_AGE_SECONDS = 3600.0
INTERVAL_SECONDS = 300.0


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _old_files(root: Path, min_age: float) -> tuple[list[Path], list[Path]]:
    """Stale uploads, and job folders old enough to be checked (a scan of the disk: run it
    in a thread)."""
    now = time.time()
    uploads = uploads_dir(root)
    temps = [p for p in uploads.iterdir() if _age(p, now) > min_age] if uploads.is_dir() else []
    # Only job folders: the embedded server's and the uploads' folders are not.
    folders = [p for p in root.iterdir() if valid_job_id(p.name) and p.is_dir()
               and _age(p, now) > min_age] if root.is_dir() else []
    return temps, folders


async def sweep(store: JobStore, min_age: float = MIN_AGE_SECONDS) -> int:
    """One pass; returns how many folders and files were removed."""
    await store.migrate()
    pruned = await store.prune()
    if pruned:
        log.info("%d expired jobs dropped from the job indexes", pruned)
    temps, folders = await asyncio.to_thread(_old_files, store.settings.jobs_path, min_age)
    for temp in temps:
        temp.unlink(missing_ok=True)
    removed = len(temps)
    for batch in _batches([f.name for f in folders]):
        async with store.redis.pipeline(transaction=False) as pipe:
            for job_id in batch:
                pipe.exists(store.keys.job(job_id))
            found = await pipe.execute()
        for job_id, exists in zip(batch, found, strict=True):
            if not exists:
                await asyncio.to_thread(shutil.rmtree, store.files(job_id).root, True)
                log.info("job=%s files removed: the job expired", job_id)
                removed += 1
    return removed


async def sweep_if_due(store: JobStore, interval: float = INTERVAL_SECONDS) -> bool:
    """Run a pass unless another process ran one within ``interval`` seconds; returns
    whether this one did. Failures are logged: housekeeping never stops its host process.

    The lock is taken for the whole interval and never released, so it also says when the
    next pass is due; a holder that dies leaves it to expire.
    """
    try:
        if not await store.redis.set(store.keys.janitor, "1", nx=True,
                                     px=int(interval * 1000)):
            return False
        await sweep(store)
    except CONNECTION_ERRORS as exc:
        log.warning("housekeeping skipped, Redis unreachable: %s", exc)
        return False
    except Exception:
        log.exception("housekeeping failed")
    return True


async def run_janitor(store: JobStore, interval: float = INTERVAL_SECONDS) -> None:
    """Offer a pass every ``interval`` seconds, for good (a gateway's background task)."""
    while True:
        await sweep_if_due(store, interval)
        await asyncio.sleep(interval)
