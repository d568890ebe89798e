"""The whole service as it runs in production: gateway + one worker per stage, as
separate processes on one Redis, driven over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmark.procs import Processes, child_env, wait_http
from pipeline.embedded import free_port
from stages.table import STAGES


class Service:
    def __init__(self, client: httpx.Client, jobs_dir: Path) -> None:
        self.client = client
        self.jobs_dir = jobs_dir

    def submit(self, path: Path) -> str:
        with path.open("rb") as audio:
            answer = self.client.post("/jobs", files={"file": (path.name, audio, "audio/wav")})
        answer.raise_for_status()
        job_id: str = answer.json()["job_id"]
        return job_id

    def wait(self, job_id: str, timeout: float = 3600.0) -> None:
        """Long-poll until the job completes (raises if it fails)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/jobs/{job_id}", params={"wait": 30}).json()
            if job["status"] == "completed":
                return
            if job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
        raise TimeoutError(f"job {job_id} did not complete in {timeout:.0f} s")

    def run(self, path: Path) -> tuple[str, float]:
        """One job end to end: seconds from the upload's start until completion is seen."""
        started = time.perf_counter()
        job_id = self.submit(path)
        self.wait(job_id)
        return job_id, time.perf_counter() - started


@contextmanager
def service(procs: Processes, redis_url: str, jobs_dir: Path, whisper_model: str,
            worker_env: Mapping[str, Mapping[str, str]] | None = None,
            **extra_env: str) -> Iterator[Service]:
    """The service on ``redis_url``; ``worker_env`` adds variables to one stage's worker
    (by stage name), ``extra_env`` to every process."""
    port = free_port()
    env = child_env(REDIS_URL=redis_url, JOBS_DIR=str(jobs_dir), KEY_PREFIX="bench",
                    WHISPER_MODEL=whisper_model, DEVICE="cpu", HOST="127.0.0.1",
                    PORT=str(port), LOG_LEVEL="WARNING", **extra_env)
    children = [procs.spawn("gateway", ["-m", "gateway"], env)]
    children += [procs.spawn(f"worker-{stage}", ["-m", "pipeline.worker", stage,
                                                 "--consumer", f"bench-{stage}"],
                             {**env, **(worker_env or {}).get(stage, {})})
                 for stage in STAGES]
    try:
        wait_http(f"http://127.0.0.1:{port}/health", children[0])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            yield Service(client, jobs_dir)
    finally:
        for child in children:
            procs.stop(child)
