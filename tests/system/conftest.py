"""A whole service in processes: its own Valkey server, the gateway and stage workers.

The scenarios here kill and restart those processes and send them hostile input, so each
test gets a fresh deployment of its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.connection import connect
from pipeline.embedded import ServerInfo, free_port, running_server, start_server, stop_server
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import STAGES, TABLE
from tests.support.audio import silent_wav
from tests.support.option_stages import models_dir
from tests.support.workers import REPO, spawn_worker, until, worker_env

pytestmark = pytest.mark.system

#: The stage classes that obey the job's `model` option (see tests/support/option_stages.py).
OPTION_STAGES: dict[str, str] = {
    stage: f"tests.support.option_stages:{stage.capitalize()}" for stage in STAGES}


@dataclass
class Service:
    settings: Settings
    root: Path
    server: ServerInfo
    store: JobStore
    http: httpx.AsyncClient
    gateway: subprocess.Popen[bytes]
    stage_classes: Mapping[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, stage: str, name: str) -> subprocess.Popen[bytes]:
        worker = spawn_worker(self.settings, stage, name, self.stage_classes[stage],
                              log=self.root / "workers.log")
        self.workers[name] = worker
        return worker

    def restart_server(self) -> None:
        stop_server(running_server(self.server_dir) or self.server)
        start_server(self.server_dir, self.server.port)

    @property
    def server_dir(self) -> Path:
        return self.root / "valkey"

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.root.glob("*.log"))

    async def job(self, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = (await self.http.get(f"/jobs/{job_id}", headers=headers)).json()
        return body

    async def wait_finished(self, job_id: str, timeout: float = 60,
                            headers: dict[str, str] | None = None) -> dict[str, Any]:
        async def done() -> bool:
            response = await self.http.get(f"/jobs/{job_id}", params={"wait": 5},
                                           headers=headers)
            return response.json().get("status") in ("completed", "failed", "cancelled")

        await until(done, timeout=timeout, what=f"job {job_id} to finish")
        return await self.job(job_id, headers)


def gateway_process(settings: Settings, root: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings, HOST="127.0.0.1", PORT=str(settings.port),
                     MAX_UPLOAD_BYTES=str(settings.max_upload_bytes),
                     MAX_QUEUED_JOBS=str(settings.max_queued_jobs),
                     SYNC_MAX_SECONDS=str(settings.sync_max_seconds),
                     API_KEYS=settings.api_keys, ADMIN_API_KEYS=settings.admin_api_keys,
                     MODELS_DIR=settings.models_dir or "",
                     HEADER_TIMEOUT_SECONDS=str(settings.header_timeout_seconds),
                     KEEP_ALIVE_TIMEOUT_SECONDS=str(settings.keep_alive_timeout_seconds),
                     MAX_CONNECTIONS=str(settings.max_connections),
                     LOG_LEVEL="INFO")
    with open(root / "gateway.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
async def deploy(tmp_path: Path) -> AsyncIterator[Any]:
    """deploy(stage_classes=OPTION_STAGES, workers=1, **settings) -> a running Service."""
    started: list[Service] = []

    async def make(stage_classes: Mapping[str, str] = OPTION_STAGES, workers: int = 1,
                   **overrides: Any) -> Service:
        root = tmp_path / f"service{len(started)}"
        root.mkdir()
        server = start_server(root / "valkey", free_port())
        settings = Settings.from_env({}, **{
            "redis_url": server.url, "jobs_dir": str(root / "jobs"), "port": free_port(),
            "claim_idle_seconds": 2.0, "block_seconds": 0.5, "max_deliveries": 3,
            "models_dir": str(models_dir(root)), **overrides})
        store = JobStore(await connect(settings), settings, TABLE)
        gateway = gateway_process(settings, root)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=120)
        service = Service(settings, root, server, store, http, gateway, stage_classes)
        started.append(service)

        async def gateway_up() -> bool:
            try:
                await http.get("/health")
            except httpx.TransportError:
                assert gateway.poll() is None, service.logs()
                return False
            return True

        await until(gateway_up, timeout=60, what="the gateway to answer")
        for stage in STAGES:
            for i in range(workers):
                service.start_worker(stage, f"{stage}-{i}")
        return service

    yield make
    for service in started:
        await service.http.aclose()
        for process in [service.gateway, *service.workers.values()]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [service.gateway, *service.workers.values()]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await service.store.redis.aclose()
        info = running_server(service.server_dir)
        if info is not None:
            stop_server(info)


async def submit(service: Service, audio: bytes | None = None, name: str = "talk.wav",
                 headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    body = audio if audio is not None else silent_wav()
    files = {"file": (name, body, "application/octet-stream")}
    return await service.http.post("/jobs", files=files, data=fields, headers=headers)


async def stream_stats(service: Service) -> dict[str, dict[str, int]]:
    """Pending entries and lag of every stage's live group."""
    stats = {}
    for stage in STAGES:
        groups = await service.store.redis.xinfo_groups(service.store.keys.stream(stage))
        stats[stage] = {"pending": sum(g["pending"] for g in groups),
                        "lag": sum(g.get("lag") or 0 for g in groups)}
    return stats
