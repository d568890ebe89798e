"""Scenarios 9-: one bad job never stalls a stage; lying headers, failed reruns, outages."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.connection import connect
from pipeline.embedded import (
    free_port,
    running_server,
    server_alive,
    server_dir,
    start_server,
    stop_server,
)
from pipeline.errors import EmbeddedServerError
from pipeline.store import JobStore
from stages.settings import Settings
from stages.table import STAGES, TABLE
from tests.support.audio import silent_wav
from tests.support.media_gen import encode, tone
from tests.support.option_stages import models_dir
from tests.support.workers import REPO, spawn_worker, until
from tests.system.conftest import OPTION_STAGES, Service, submit

RATE = 16_000

pytestmark = pytest.mark.system


def seconds_taken(job: dict[str, object]) -> float:
    """From the job's creation to its last change (its completion), on the server's clock."""
    def parse(stamp: object) -> datetime:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))

    return (parse(job["updated_at"]) - parse(job["created_at"])).total_seconds()


async def good_jobs(service: Service, count: int) -> float:
    """Submit ``count`` slow jobs that succeed; the longest any of them took."""
    ids = [(await submit(service, model="slow")).json()["job_id"] for _ in range(count)]
    jobs = [await service.wait_finished(job_id, timeout=120) for job_id in ids]
    assert all(job["status"] == "completed" for job in jobs), jobs
    return max(map(seconds_taken, jobs))


async def test_a_burst_of_bad_jobs_costs_only_those_jobs(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    solo = await good_jobs(service, 2)
    # In front of the good ones: jobs whose transcription fails as a lost connection does
    # (retried later, with a backoff of their own) and as a bug does (a plain ValueError,
    # which no retry fixes).
    flaky = [(await submit(service, model="flaky")).json()["job_id"] for _ in range(3)]
    buggy = [(await submit(service, model="bug")).json()["job_id"] for _ in range(3)]
    behind = await good_jobs(service, 2)
    print(f"good jobs took {solo:.2f} s alone, {behind:.2f} s behind 6 bad jobs")
    assert behind <= 2 * solo

    for job_id in buggy:
        job = await service.wait_finished(job_id)
        assert job["status"] == "failed"
        assert job["error"] == ("transcribe failed: ValueError: transcribe: 'xx' is not a "
                                "language the model knows")
        assert "error" not in job["stages"]["transcribe"]  # never retried
    for job_id in flaky:
        job = await service.wait_finished(job_id, timeout=60)
        assert job["status"] == "failed"
        assert "gave up after 3 attempts" in job["error"]
        assert "ConnectionRefusedError" in job["error"]
    dead = await service.store.redis.xrange(service.store.keys.dead_letters("transcribe"))
    assert sorted(fields["job_id"] for _, fields in dead) == sorted(flaky)
    assert await service.store.waiting_retries("transcribe") == 0
    assert all(worker.poll() is None for worker in service.workers.values())


def lying_flac(path: Path, seconds: float, claimed: float) -> bytes:
    """A real FLAC file of ``seconds`` whose header (STREAMINFO's count of samples) claims
    ``claimed``: decoders read every frame, whatever the header says."""
    encode(path, tone(seconds, RATE), RATE, "flac")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    # Bytes 18-25: sample rate (20 bits), channels (3), bits per sample (5), samples (36).
    packed = int.from_bytes(data[18:26], "big")
    low36 = (1 << 36) - 1
    assert packed & low36 == int(seconds * RATE)
    data[18:26] = ((packed & ~low36) | int(claimed * RATE)).to_bytes(8, "big")
    return bytes(data)


async def test_the_jobs_own_limit_holds_when_the_header_lies(deploy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stage_classes = {**OPTION_STAGES, "decode": "stages.decode:DecodeStage"}
    service: Service = await deploy(stage_classes=stage_classes, sync_max_seconds=30)
    audio = lying_flac(tmp_path / "long.flac", seconds=600, claimed=10)
    files = {"file": ("long.flac", audio, "audio/flac")}
    response = await service.http.post("/transcribe", files=files)
    # The header passed the gateway's check; the decoded length did not pass decode's.
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "longer than this job's limit of 30 s" in message
    assert "POST /jobs" in message
    # Through POST /jobs the same file is within the service's limit, and is decoded whole.
    job_id = (await service.http.post("/jobs", files=files)).json()["job_id"]
    assert (await service.wait_finished(job_id, timeout=120))["status"] == "completed"
    with wave.open(str(service.store.files(job_id).audio)) as decoded:
        assert decoded.getnframes() / decoded.getframerate() == pytest.approx(600, abs=1)


async def test_after_a_failed_rerun_the_last_result_is_served(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    job_id = (await submit(service)).json()["job_id"]
    assert (await service.wait_finished(job_id))["status"] == "completed"
    first = await service.http.get(f"/jobs/{job_id}/result")
    assert first.status_code == 200 and first.headers["result-run"] == "1"

    rerun = await service.http.post(f"/jobs/{job_id}/rerun",
                                    json={"from_stage": "transcribe", "model": "bug"})
    assert rerun.status_code == 202, rerun.text
    failed = await service.wait_finished(job_id)
    assert failed["status"] == "failed" and failed["run"] == 2
    # The failed run has no result: run 1's is served, and the header says so.
    served = await service.http.get(f"/jobs/{job_id}/result")
    assert served.status_code == 200, served.text
    assert served.headers["result-run"] == "1" and served.json() == first.json()
    assert (await service.http.get(f"/jobs/{job_id}/runs/2/result")).status_code == 409

    # The next rerun starts from run 1's options, not from the failed run's.
    again = await service.http.post(f"/jobs/{job_id}/rerun", json={"from_stage": "transcribe"})
    assert again.status_code == 202, again.text
    job = await service.wait_finished(job_id)
    assert job["status"] == "completed" and job["run"] == 3
    assert job["options"]["model"] is None
    latest = await service.http.get(f"/jobs/{job_id}/result", params={"format": "srt"})
    assert latest.status_code == 200 and latest.headers["result-run"] == "3"


async def test_a_stopped_server_answers_503_with_retry_after(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    job_id = (await submit(service)).json()["job_id"]
    await service.wait_finished(job_id)
    stop_server(running_server(service.server_dir) or service.server)
    for method, path in (("POST", "/jobs"), ("GET", f"/jobs/{job_id}"), ("GET", "/jobs"),
                         ("GET", f"/jobs/{job_id}/result"), ("DELETE", f"/jobs/{job_id}"),
                         ("POST", f"/jobs/{job_id}/rerun"), ("GET", "/metrics")):
        if method == "POST" and path == "/jobs":
            response = await submit(service)
        else:
            kwargs = {"json": {"from_stage": "decode"}} if method == "POST" else {}
            response = await service.http.request(method, path, **kwargs)
        assert response.status_code == 503, (method, path, response.text)
        assert int(response.headers["retry-after"]) > 0
        assert "Redis" in response.json()["error"]["message"]
    health = await service.http.get("/health")
    assert health.status_code == 503 and health.json()["redis"] is False
    start_server(service.server_dir, service.server.port)

    async def accepted() -> bool:
        return (await submit(service)).status_code == 202

    await until(accepted, timeout=60, what="the gateway to accept jobs again")
    assert all(worker.poll() is None for worker in service.workers.values())


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted on ``path``: a disk that really fills up (needs root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


async def test_a_full_jobs_dir_answers_507_and_health_says_so(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    jobs = service.settings.jobs_path
    with small_disk(jobs, "1m"):
        response = await submit(service, silent_wav(seconds=60))  # 1.9 MB
        assert response.status_code == 507, response.text
        message = response.json()["error"]["message"]
        assert str(jobs) in message and "no space left" in message
        health = await service.http.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["storage"]["free_bytes"] <= 1024**2
        assert body["storage"]["persistence"] == "ok"
        assert any("JOBS_DIR" in problem for problem in body["problems"])
        metrics = (await service.http.get("/metrics")).text
        samples = {s.name: s.value for f in text_string_to_metric_families(metrics)
                   for s in f.samples}
        assert samples["stt_jobs_dir_free_bytes"] <= 1024**2
        assert samples["stt_redis_persistence_ok"] == 1
        assert not list((jobs / ".uploads").glob("*"))  # the partial upload is gone
        # A small upload still fits, and its job completes.
        small = await submit(service)
        assert small.status_code == 202, small.text
        job = await service.wait_finished(small.json()["job_id"])
        assert job["status"] == "completed", job


async def test_stt_up_restarts_its_killed_server_and_jobs_resume(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    folder = server_dir(jobs)
    port = free_port()
    env = {**os.environ, "JOBS_DIR": str(jobs), "PORT": str(port), "PYTHONPATH": str(REPO),
           "MODELS_DIR": str(models_dir(tmp_path))}  # the option stages' models
    env.pop("REDIS_URL", None)
    log = tmp_path / "up.log"
    # The gateway and the server only: the workers run the test stages, started here.
    up = subprocess.Popen(
        [sys.executable, "-m", "cli", "up", "--workers", "decode=0,diarize=0,transcribe=0"],
        cwd=tmp_path, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    workers: list[subprocess.Popen[bytes]] = []
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        async def answering() -> bool:
            try:
                await http.get("/health")
            except httpx.TransportError:
                assert up.poll() is None, log.read_text()
                return False
            return True

        await until(answering, timeout=120, what="stt up to answer")
        first = running_server(folder)
        assert first is not None
        settings = Settings.from_env({}, redis_url=first.url, jobs_dir=str(jobs),
                                     claim_idle_seconds=2.0, block_seconds=0.5)
        workers = [spawn_worker(settings, stage, f"{stage}-0", OPTION_STAGES[stage],
                                log=tmp_path / "workers.log") for stage in STAGES]
        store = JobStore(await connect(settings), settings, TABLE)
        files = {"file": ("talk.wav", silent_wav(), "audio/wav")}
        job_id = (await http.post("/jobs", files=files, data={"model": "wait"})).json()["job_id"]

        async def decoding() -> bool:
            job = await store.get(job_id)
            return job is not None and job.stages["decode"].status == "running"

        await until(decoding, what="the job to be decoding")
        # Everything so far on disk (fsync is every second), then kill -9 the server.
        await store.redis.bgrewriteaof()

        async def rewritten() -> bool:
            info = await store.redis.info("persistence")
            return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]

        await until(rewritten, what="the AOF rewrite")
        os.kill(first.pid, signal.SIGKILL)

        def restarted() -> bool:
            info = running_server(folder)
            return info is not None and info.pid != first.pid

        await until(restarted, timeout=60, what="stt up to restart the server")
        assert running_server(folder).port == first.port  # type: ignore[union-attr]
        # One server per data directory: no second one starts beside it.
        with pytest.raises(EmbeddedServerError, match="already runs"):
            start_server(folder, free_port())
        (store.files(job_id).root / "go").touch()

        async def completed() -> bool:
            response = await http.get(f"/jobs/{job_id}", params={"wait": 5})
            return response.status_code == 200 and response.json()["status"] == "completed"

        await until(completed, timeout=60, what="the job to complete after the restart")
        assert all(worker.poll() is None for worker in workers)
        await store.redis.aclose()
    finally:
        await http.aclose()
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "restarting it on port" in text and "embedded Valkey stopped" in text
    assert running_server(folder) is None and not server_alive(folder)


def fill(path: Path) -> Path:
    """Write a file into ``path`` until its disk is full."""
    filler = path / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def test_a_server_that_cannot_persist_is_an_outage(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy()
    stop_server(running_server(service.server_dir) or service.server)
    # The server's data on a small disk of its own (a fresh server: the workers recreate
    # their groups), which then fills up: it answers writes with MISCONF.
    with small_disk(service.server_dir, "8m"):
        start_server(service.server_dir, service.server.port)

        async def accepted() -> bool:
            return (await submit(service)).status_code == 202

        await until(accepted, timeout=60, what="the gateway to accept jobs again")
        filler = fill(service.server_dir)

        async def refusing() -> bool:
            response = await submit(service)
            return response.status_code == 503

        await until(refusing, timeout=30, what="the server to refuse writes")
        refused = await submit(service)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        assert "MISCONF" in refused.json()["error"]["message"]
        health = (await service.http.get("/health")).json()
        assert health["storage"]["persistence"] != "ok"
        assert any("cannot write its data to disk" in p for p in health["problems"])
        filler.unlink()
        # Space again: the server writes its AOF again, and the workers, which took MISCONF
        # for an outage and waited, go on.
        await until(accepted, timeout=60, what="the server to accept writes again")
        job_id = (await submit(service)).json()["job_id"]
        assert (await service.wait_finished(job_id))["status"] == "completed"
        assert all(worker.poll() is None for worker in service.workers.values())
        stop_server(running_server(service.server_dir) or service.server)
