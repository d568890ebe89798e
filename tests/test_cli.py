"""The `stt` command: the client against a real gateway, and `stt up` as a new user runs it."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec
import pytest

from cli.main import parser
from gateway.formats import RENDERERS
from pipeline.embedded import free_port, running_server, server_dir
from pipeline.store import JobStore
from stages.options import JobOptions
from stages.settings import Settings
from stages.types import FORMATS
from tests.support.audio import sample_wav, silent_wav
from tests.support.gateway import serve
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import REPO, running_workers, until


async def stt(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, cwd=REPO, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_submit_wait_prints_the_result(settings: Settings, store: JobStore,
                                             tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        url = str(client.base_url)
        code, out, err = await stt("submit", str(audio), "--url", url, "--wait",
                                   "--format", "srt", "--num-speakers", "2")
        assert code == 0, err
        assert "SPEAKER_00: Hello there." in out
        job_id = err.split("job ", 1)[1].split()[0]
        code, out, _ = await stt("status", job_id, "--url", url)
        assert code == 0 and '"status": "completed"' in out and '"num_speakers": 2' in out
        code, out, _ = await stt("result", job_id, "--url", url, "--format", "txt")
        assert code == 0 and "SPEAKER_01" in out
        code, _, err = await stt("status", "0" * 32, "--url", url)
        assert code == 1 and "404" in err


@pytest.mark.system
@pytest.mark.models
async def test_stt_up_serves_a_diarized_transcript(tmp_path: Path) -> None:
    """What the README's quick start promises, on the offline default models."""
    shutil.copy(sample_wav(), tmp_path / "meeting.wav")
    port = free_port()
    env = {**os.environ, "JOBS_DIR": str(tmp_path / "jobs"), "PORT": str(port),
           "PYTHONPATH": str(REPO)}
    env.pop("REDIS_URL", None)
    up = subprocess.Popen([sys.executable, "-m", "cli", "up"], cwd=tmp_path, env=env,
                          stdout=open(tmp_path / "up.log", "wb"), stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def healthy() -> bool:
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(healthy, timeout=180, what="stt up to be healthy")
        code, out, err = await stt("submit", str(tmp_path / "meeting.wav"), "--wait",
                                   "--format", "srt", "--url", f"http://127.0.0.1:{port}")
        assert code == 0, err
        assert "SPEAKER_00" in out and "SPEAKER_01" in out
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=120) == 0, (tmp_path / "up.log").read_text()[-3000:]
    log = (tmp_path / "up.log").read_text()
    assert "embedded Valkey stopped" in log
    assert running_server(server_dir(tmp_path / "jobs")) is None


def test_submit_flags_follow_the_job_options() -> None:
    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {action.dest: action for action in commands.choices["submit"]._actions}
    for field in msgspec.inspect.type_info(JobOptions).fields:
        assert flags[field.name].help == field.type.extra_json_schema["description"]
    assert flags["task"].choices == ("transcribe", "translate")
    assert flags["diarize"].choices == ("true", "false")
    assert flags["num_speakers"].type is int
    assert flags["format"].choices == FORMATS == tuple(RENDERERS)
