"""Upkeep in the background: removing what nothing refers to any more (expired jobs'
folders and index entries, stale uploads), and bringing jobs stored by an earlier version
up to date.

A job's hash expires in Redis after JOB_TTL_SECONDS, but its folder stays on disk and its
id in the job indexes; and an upload cut short by a crashed gateway leaves its temp file
behind. A pass runs as the gateway starts and every INTERVAL_SECONDS after.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from gateway.uploads import uploads_dir
from pipeline.connection import CONNECTION_ERRORS
from pipeline.files import valid_job_id
from pipeline.store import JobStore

log = logging.getLogger("gateway.janitor")

#: Younger files are left alone: a job being created has its folder before its hash.
MIN_AGE_SECONDS = 3600.0
INTERVAL_SECONDS = 300.0


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


async def sweep(store: JobStore, min_age: float = MIN_AGE_SECONDS) -> int:
    """One pass; returns how many folders and files were removed."""
    await store.migrate()
    pruned = await store.prune()
    if pruned:
        log.info("%d expired jobs dropped from the job indexes", pruned)
    root = store.settings.jobs_path
    now = time.time()
    removed = 0
    uploads = uploads_dir(root)
    if uploads.is_dir():
        for temp in uploads.iterdir():
            if _age(temp, now) > min_age:
                temp.unlink(missing_ok=True)
                removed += 1
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        # Only job folders: the embedded server's and the uploads' folders are not.
        if not (valid_job_id(folder.name) and folder.is_dir()) or _age(folder, now) <= min_age:
            continue
        if not await store.redis.exists(store.keys.job(folder.name)):
            await asyncio.to_thread(shutil.rmtree, folder, True)
            log.info("job=%s files removed: the job expired", folder.name)
            removed += 1
    return removed


async def run_janitor(store: JobStore, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            await sweep(store)
        except CONNECTION_ERRORS as exc:
            log.warning("sweep skipped, Redis unreachable: %s", exc)
        except Exception:
            log.exception("sweep failed")
        await asyncio.sleep(interval)
