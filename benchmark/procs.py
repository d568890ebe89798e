"""Child processes and the embedded Valkey server: started with the repo on PYTHONPATH,
and every one of them stopped when the run ends, however it ends (Ctrl-C included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx

from pipeline.embedded import ServerInfo, free_port, start_server, stop_server

REPO = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Models come from the installed packages only, and pyannote must not phone home.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYANNOTE_METRICS_ENABLED"] = "0"
    env.update(extra)
    return env


class Processes:
    """The children of this run. ``stop_all`` ends them: SIGTERM, then SIGKILL."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str], *,
              cpus: set[int] | None = None, stdin: int | None = None,
              stdout: int | None = None) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")
        preexec: Callable[[], None] | None = None
        if cpus is not None:
            pinned = set(cpus)

            def preexec() -> None:
                os.sched_setaffinity(0, pinned)
        # A session of its own: a Ctrl-C in the terminal reaches only us, and we stop the
        # children in order (a worker would otherwise finish its job before exiting).
        child = subprocess.Popen(
            [sys.executable, *argv], env=dict(env), cwd=REPO, stdin=stdin,
            stdout=log if stdout is None else stdout, stderr=log,
            start_new_session=True, preexec_fn=preexec)
        log.close()
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(self.children):
            self.stop(child)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the same cleanup runs for both."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def valkey(folder: Path) -> Iterator[str]:
    """REDIS_URL if set, else a fresh embedded Valkey on a free port (stopped on exit)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    info: ServerInfo = start_server(folder, free_port())
    try:
        yield info.url
    finally:
        stop_server(info)


def embedded_pid(folder: Path) -> int | None:
    """The pid of the embedded server started in ``folder`` (None with REDIS_URL)."""
    pidfile = folder / "valkey.pid"
    return int(pidfile.read_text().strip()) if pidfile.exists() else None


def wait_http(url: str, child: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until ``url`` answers (any status), or fail if ``child`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{child.args!r} exited with {child.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
