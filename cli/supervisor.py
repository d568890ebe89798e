"""``stt up``: the whole service on one machine, as child processes under one supervisor.

Starts the embedded Valkey (unless ``REDIS_URL`` is set), the gateway and N workers per
stage; prefixes every child's log lines with its name; restarts a child that dies, and the
embedded server when it dies (on the same port and data, so jobs resume; the children,
given its URL, wait for it meanwhile and never start one of their own); and on Ctrl-C or
SIGTERM asks every child to stop (workers finish their current job or leave it pending for
the next start), then stops the embedded server it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from pipeline.embedded import (
    ensure_server,
    running_server,
    server_alive,
    server_dir,
    start_server,
    stop_server,
)
from pipeline.errors import EmbeddedServerError
from stages.settings import Settings
from stages.table import WORKERS

#: A child that ran at least this long before dying is restarted at once.
HEALTHY_SECONDS = 30.0
#: How often the embedded server's lock is checked (a free lock: the server died).
SERVER_CHECK_SECONDS = 0.5


def parse_workers(text: str) -> dict[str, int]:
    """``decode=1,diarize=2`` -> counts per stage; stages not named keep one worker."""
    counts: dict[str, int] = {stage: 1 for stage in WORKERS}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition("=")
        if name not in counts or not number.isdigit():
            raise ValueError(f"--workers takes STAGE=N[,STAGE=N...] with STAGE one of "
                             f"{', '.join(WORKERS)}; got {part!r}")
        counts[name] = int(number)
    return counts


@dataclass
class Child:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


class Supervisor:
    def __init__(self, settings: Settings, workers: Mapping[str, int],
                 grace_seconds: float, server_port: int | None = None) -> None:
        self.settings = settings
        self.grace_seconds = grace_seconds
        self.stopping = asyncio.Event()
        # The embedded server this supervisor keeps running (None: REDIS_URL is set).
        self.server_port = server_port
        self.restarted_server = False  # then it is this supervisor's to stop
        self.env = dict(os.environ)
        if server_port is not None:
            # Children connect to it by URL: when it is down they wait, never start another.
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{server_port}/0"
        host = socket.gethostname()
        self.children = [Child("gateway", [sys.executable, "-m", "gateway"])]
        for stage, count in workers.items():
            for i in range(1, count + 1):
                # A stable consumer name: a restarted worker resumes its own pending entry.
                self.children.append(Child(f"{stage}-{i}", [
                    sys.executable, "-m", "pipeline.worker", stage,
                    "--consumer", f"{host}-{stage}-{i}"]))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        tasks = [self._announce_ready(), *(self._keep_running(child) for child in self.children)]
        if self.server_port is not None:
            tasks.append(self._keep_server(self.server_port))
        await asyncio.gather(*tasks)

    async def _announce_ready(self) -> None:
        """One line once the gateway answers and every stage has a worker (GET /health)."""
        host = self.settings.host
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{local}:{self.settings.port}"
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            while not self.stopping.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        self._say("supervisor", f"ready: every stage has a worker; the API "
                                  f"is at {url} (try: stt submit FILE --wait)")
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=0.5)

    async def _keep_server(self, port: int) -> None:
        """Restart the embedded server when it dies (its lock on the data comes free)."""
        folder = server_dir(self.settings.jobs_path)
        delay = 1.0
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=SERVER_CHECK_SECONDS)
            if self.stopping.is_set() or await asyncio.to_thread(server_alive, folder):
                continue
            self._say("supervisor", f"embedded Valkey is gone; restarting it on port {port}")
            try:
                await asyncio.to_thread(start_server, folder, port)
                delay = 1.0
                self.restarted_server = True
                self._say("supervisor", "embedded Valkey restarted; jobs resume")
            except (EmbeddedServerError, OSError) as exc:
                self._say("supervisor", f"embedded Valkey did not restart ({exc}); "
                          f"trying again in {delay:.0f}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                delay = min(delay * 2, 30.0)

    def _on_signal(self) -> None:
        if self.stopping.is_set():
            self._say("supervisor", "second signal: killing every child now")
            for child in self.children:
                if child.process and child.process.returncode is None:
                    child.process.kill()
            return
        self._say("supervisor", "stopping: workers finish their current job first "
                  "(press Ctrl-C again to stop at once)")
        self.stopping.set()

    async def _keep_running(self, child: Child) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            await self._start(child)
            assert child.process is not None
            exited = asyncio.create_task(child.process.wait())
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set():
                stop.cancel()
                await self._stop(child, exited)
                return
            stop.cancel()
            lived = time.monotonic() - child.started
            delay = 1.0 if lived > HEALTHY_SECONDS else min(delay * 2, 60.0)
            child.restarts += 1
            self._say("supervisor", f"{child.name} exited with {child.process.returncode}; "
                      f"restarting in {delay:.0f}s (restart {child.restarts})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def _start(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        child.started = time.monotonic()
        assert child.process.stdout is not None
        child.pumps = [asyncio.create_task(self._pump(child.name, child.process.stdout))]

    async def _stop(self, child: Child, exited: asyncio.Task[int]) -> None:
        assert child.process is not None
        if child.process.returncode is None:
            child.process.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout=self.grace_seconds)
            except TimeoutError:
                self._say("supervisor", f"{child.name} did not stop in "
                          f"{self.grace_seconds:.0f}s; killing it (its job stays pending)")
                child.process.kill()
                await exited
        await asyncio.gather(*child.pumps)

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self._say(name, line.decode(errors="replace").rstrip())

    @staticmethod
    def _say(name: str, line: str) -> None:
        print(f"{name:>12} | {line}", flush=True)


def up(settings: Settings, workers: Mapping[str, int], grace_seconds: float) -> int:
    started_server = False
    port = None
    if settings.redis_url is None:
        folder = server_dir(settings.jobs_path)
        started_server = running_server(folder) is None
        url = ensure_server(settings.jobs_path)
        port = urlsplit(url).port
        Supervisor._say("supervisor", f"embedded Valkey at {url} (data in {folder})")
    Supervisor._say("supervisor", f"gateway on http://{settings.host}:{settings.port}")
    supervisor = Supervisor(settings, workers, grace_seconds, port)
    try:
        asyncio.run(supervisor.run())
    finally:
        if started_server or supervisor.restarted_server:
            info = running_server(server_dir(settings.jobs_path))
            if info is not None:
                stop_server(info)
                Supervisor._say("supervisor", "embedded Valkey stopped")
    return 0
