"""What an operator reads: the real gateway's and a real worker's log output."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import httpx
import msgspec

from pipeline.embedded import free_port
from pipeline.stage import JobContext
from pipeline.store import JobStore
from stages.settings import Settings
from tests.support import option_stages
from tests.support.audio import silent_wav
from tests.support.gateway import finished, serve, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import REPO, running_workers, spawn_worker, until, worker_env

TIMESTAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "

# A library that logs through a handler of its own and keeps its lines from the root
# logger, as whisperx does; created on import, as whisperx's loggers are.
_stray = logging.getLogger("test.stray_library")
_stray.addHandler(logging.StreamHandler(sys.stdout))
_stray.propagate = False


class ChattyDecode(option_stages.Decode):
    """The test decode stage, logging as the model libraries do: through their own
    loggers, from the thread the stage computes in, without naming the job."""

    name: ClassVar[str] = "decode"

    def process(self, ctx: JobContext) -> None:
        logging.getLogger("test.library").info("library line")
        _stray.warning("stray library line")
        super().process(ctx)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


async def _run_gateway(settings: Settings, store: JobStore, log: Path,
                       **env: str) -> dict[str, Any]:
    """Starts the real gateway, sends it a few kinds of request and stops it; returns what
    was sent and answered."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO,
                               env=worker_env(settings, PORT=str(port), **env),
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            async def answers() -> bool:
                try:
                    await http.get("/health")
                except httpx.TransportError:
                    return False
                return True

            await until(answers, timeout=60, what="the gateway to answer")
            async with running_workers(store, GATEWAY_STAGES):
                await until(lambda: _healthy(http), what="every stage to have a worker")
                job_id = (await submit(http)).json()["job_id"]
                await finished(http, job_id)
                assert (await http.get("/health")).status_code == 200
                await http.get("/metrics")
                await http.get(f"/jobs/{job_id}")
                refused = await http.post("/jobs", files={"audio": ("a.wav", silent_wav())})
                assert refused.status_code >= 400
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn ends by raising the signal it stopped on again.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    return {"job_id": job_id, "refused": refused}


async def _healthy(http: httpx.AsyncClient) -> bool:
    return (await http.get("/health")).status_code == 200


async def test_access_lines_have_times_and_routine_requests_are_debug(
        settings: Settings, store: JobStore, tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    sent = await _run_gateway(settings, store, log, LOG_LEVEL="INFO")
    job_id, refused = sent["job_id"], sent["refused"]
    lines = _lines(log)
    access = [line for line in lines if "uvicorn.access" in line]
    assert any(re.match(TIMESTAMP + rf'INFO uvicorn.access: .*"GET /jobs/{job_id} HTTP/1.1" '
                        r"200$", line) for line in access), "\n".join(lines)
    assert any(f'"POST /jobs HTTP/1.1" {refused.status_code}' in line for line in access)
    # Health checks were answered 503 and 200 (before and after the workers were up).
    routine = [line for line in access
               if "wait=" in line or "GET /health" in line or "GET /metrics" in line]
    assert routine == []
    reason = refused.json()["error"]["message"]
    assert any(re.match(TIMESTAMP + r"INFO gateway.requests: refused POST /jobs from "
                        rf"127\.0\.0\.1 \(\d+ bytes\): {refused.status_code} ", line)
               and line.endswith(reason) for line in lines), "\n".join(lines)
    assert any(re.match(TIMESTAMP + f"INFO gateway.submit: job={job_id} queued", line)
               for line in lines), "\n".join(lines)


async def test_json_lines_for_log_collectors(settings: Settings, store: JobStore,
                                             tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    sent = await _run_gateway(settings, store, log, LOG_LEVEL="DEBUG", LOG_FORMAT="json")
    records = [msgspec.json.decode(line) for line in _lines(log)]
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"])
    polls = [r for r in records if r["logger"] == "uvicorn.access" and "wait=" in r["message"]]
    assert polls and {r["level"] for r in polls} == {"DEBUG"}
    queued = [r for r in records if r["message"].startswith(f"job={sent['job_id']} queued")]
    assert [r.get("job_id") for r in queued] == [sent["job_id"]]


async def test_every_worker_line_about_a_job_names_it(settings: Settings, store: JobStore,
                                                      tmp_path: Path) -> None:
    """Lines of libraries' loggers too, and in either format."""
    for log_format in ("text", "json"):
        log = tmp_path / f"decode-{log_format}.log"
        worker = spawn_worker(settings, "decode", f"decode-{log_format}",
                              stage_class="tests.test_logs:ChattyDecode", log=log,
                              LOG_FORMAT=log_format)
        try:
            others = {k: v for k, v in GATEWAY_STAGES.items() if k != "decode"}
            async with serve(settings) as client, running_workers(store, others):
                job_id = (await submit(client)).json()["job_id"]
                assert (await finished(client, job_id, timeout=60))["status"] == "completed"
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, log.read_text()[-3000:]
        lines = _lines(log)
        if log_format == "json":
            records = [msgspec.json.decode(line) for line in lines]
            about_job = [r for r in records if r.get("job_id") == job_id]
            assert {r["message"] for r in about_job} >= {"library line",
                                                         "stray library line"}
            assert {r["stage"] for r in about_job} == {"decode"}
            assert {r["logger"] for r in about_job} >= {"test.library", "test.stray_library",
                                                        "pipeline.runtime"}
        else:
            for message in ("library line", "stray library line", "started (entry"):
                shown = TIMESTAMP + rf".*: job={job_id} stage=decode {re.escape(message)}"
                assert any(re.match(shown, line) for line in lines), "\n".join(lines)
            assert not any(line.count(f"job={job_id}") > 1 for line in lines)
