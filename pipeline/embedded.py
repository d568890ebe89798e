"""The embedded Valkey server used when ``REDIS_URL`` is not set.

One server per ``JOBS_DIR``, shared by every process that uses that directory: the first
process to need it starts it (as a daemon, so it outlives that process) and records its
port; the others find it there. A file lock makes the check-and-start atomic between
processes. Its data (AOF, fsync every second) lives under ``JOBS_DIR/.valkey``, so jobs
survive restarts.

The server itself holds an exclusive lock on ``server.lock`` in its data directory for as
long as it lives (the starting process takes it and hands its descriptor to the server),
so there is never a second server on one directory, and a server that died, even by
kill -9, is seen as dead at once: the lock is free. A server that answers with an error
(MISCONF: it cannot persist) is running, not dead. ``stt up`` restarts its server when the
lock comes free (cli/supervisor.py); its children are given the server's URL and wait for
it like any client.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import redis

from pipeline import compat
from pipeline.errors import EmbeddedServerError

log = logging.getLogger(__name__)


class ServerInfo(msgspec.Struct, frozen=True):
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def server_dir(jobs_dir: Path) -> Path:
    return jobs_dir / ".valkey"


#: The lock the running server holds on its data directory.
SERVER_LOCK = "server.lock"


def ensure_server(jobs_dir: Path) -> str:
    """The URL of the embedded server for ``jobs_dir``, started if none holds the directory.

    A server that holds it but does not answer yet (starting, loading its data) is waited
    for by the caller's retries, never replaced.
    """
    folder = server_dir(jobs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / "lock"):
        info = running_server(folder)
        recorded = _read_info(folder)
        if info is None and recorded is not None and server_alive(folder):
            return recorded.url
        if info is None:
            previous = _read_info(folder)
            port = previous.port if previous and _port_free(previous.port) else free_port()
            info = start_server(folder, port)
            log.info("started embedded Valkey on port %d (data in %s)", port, folder)
        return info.url


def running_server(folder: Path) -> ServerInfo | None:
    info = _read_info(folder)
    return info if info is not None and _answers(info.port) else None


def server_alive(folder: Path) -> bool:
    """Whether a server holds ``folder`` (it runs, or is starting), by its lock."""
    try:
        fd = os.open(folder / SERVER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if it was free and this took it
    return False


def start_server(folder: Path, port: int, timeout: float = 10.0) -> ServerInfo:
    """Start a daemonised Valkey on 127.0.0.1:``port`` with its data in ``folder``, and
    record it in ``folder/server.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    pidfile = folder / "valkey.pid"
    command = [
        str(compat.valkey_server()), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(folder), "--daemonize", "yes", "--pidfile", str(pidfile),
        "--logfile", str(folder / "valkey.log"),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        # Job keys must never be evicted to make room: refuse writes instead.
        "--maxmemory-policy", "noeviction",
    ]
    fd = os.open(folder / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedServerError(
                f"a Valkey server already runs on {folder} (it holds {SERVER_LOCK}); one "
                "server per data directory") from None
        pidfile.unlink(missing_ok=True)  # a dead server's
        # The server inherits the locked descriptor and holds the lock until it exits.
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True,
                       pass_fds=(fd,))
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pidfile.exists() and _answers(port):
            info = ServerInfo(port=port, pid=int(pidfile.read_text().strip()))
            # Recorded so that other processes (and a later stop) find this server.
            (folder / "server.json").write_bytes(msgspec.json.encode(info))
            return info
        time.sleep(0.05)
    raise EmbeddedServerError(
        f"embedded Valkey did not start on port {port}; see {folder / 'valkey.log'}")


def stop_server(info: ServerInfo, timeout: float = 10.0) -> None:
    """Stop the server gracefully (it flushes its AOF) and wait until it is gone."""
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise EmbeddedServerError(f"embedded Valkey (pid {info.pid}) did not stop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.ResponseError:
        return True  # an error reply (MISCONF...) still comes from a running server
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _read_info(folder: Path) -> ServerInfo | None:
    try:
        return msgspec.json.decode((folder / "server.json").read_bytes(), type=ServerInfo)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
