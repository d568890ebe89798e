"""The `stt` command: the client against a real gateway, and `stt up` as a new user runs it."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from cli.main import parser
from gateway.formats import RENDERERS
from pipeline.embedded import ensure_server, free_port, running_server, server_dir, stop_server
from pipeline.store import JobStore
from stages.options import JobOptions
from stages.settings import Settings
from stages.types import FORMATS
from tests.support.audio import sample_wav, silent_wav
from tests.support.gateway import finished, serve
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import REPO, running_workers, until


async def stt(*args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, cwd=REPO, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
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
        code, out, _ = await stt("status", job_id, "--url", url, "--json")
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
    env = {**os.environ, "JOBS_DIR": str(tmp_path / "jobs"), "PYTHONPATH": str(REPO)}
    env.pop("REDIS_URL", None)
    up = subprocess.Popen([sys.executable, "-m", "cli", "up", "--port", str(port)],
                          cwd=tmp_path, env=env,
                          stdout=open(tmp_path / "up.log", "wb"), stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def healthy() -> bool:
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(healthy, timeout=180, what="stt up to be healthy")
        # The real models on a 52 s conversation: a bound for a loaded 2-core machine.
        code, out, err = await stt("submit", str(tmp_path / "meeting.wav"), "--wait",
                                   "--format", "srt", "--url", f"http://127.0.0.1:{port}",
                                   timeout=600)
        assert code == 0, err
        assert "SPEAKER_00" in out and "SPEAKER_01" in out
        ready = f"ready: every stage has a worker; the API is at http://127.0.0.1:{port}"
        await until(lambda: ready in (tmp_path / "up.log").read_text(), what="the ready line")
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
    assert isinstance(flags["diarize"], argparse.BooleanOptionalAction)
    assert flags["diarize"].option_strings == ["--diarize", "--no-diarize"]
    assert flags["num_speakers"].type is int
    assert flags["format"].choices == FORMATS == tuple(RENDERERS)


def test_every_option_says_its_default() -> None:
    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]

    def shown(command: str) -> str:
        return " ".join(commands.choices[command].format_help().split())

    up = shown("up")
    assert "--host HOST" in up and "--port PORT" in up
    assert f"(default: {Settings.from_env().port})" in up
    submit = shown("submit")
    assert "--diarize, --no-diarize" in submit and "(default: --diarize)" in submit
    assert "(default: transcribe)" in submit
    result = shown("result")
    assert "(default: txt)" in result and "API's own default is json" in result


async def test_submit_names_a_missing_file(tmp_path: Path) -> None:
    code, out, err = await stt("submit", str(tmp_path / "missing.mp3"),
                               "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 2 and out == ""
    assert "missing.mp3 does not exist" in err and "cannot reach" not in err
    code, _, err = await stt("submit", str(tmp_path), "--url", "http://127.0.0.1:1")
    assert code == 2 and "is a folder, not a file" in err


async def test_an_unreachable_service_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = await stt("status", "0" * 32, "--url", url)
    assert code == 2 and f"cannot reach the service at {url}" in err and "Traceback" not in err


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _read_until(fd: int, pattern: re.Pattern[str], seen: list[str], timeout: float) -> str:
    """What the terminal showed once ``pattern`` appears in it (ANSI codes removed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ANSI.sub("", "".join(seen))
        if pattern.search(text):
            return text
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen.append(os.read(fd, 65536).decode(errors="replace"))
            except OSError:  # the other end closed: the process is gone
                break
    raise AssertionError(f"{pattern.pattern!r} not shown; the terminal showed:\n"
                         + ANSI.sub("", "".join(seen))[-3000:])


async def test_ctrl_c_while_following_leaves_the_job_running(
        settings: Settings, store: JobStore, tmp_path: Path) -> None:
    """In a terminal: the bars show each stage's detail and time; Ctrl-C (SIGINT) stops
    following, not the job, and says how to pick it up again."""
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        url = str(client.base_url)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM", "COLUMNS")}
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "submit", str(audio), "--url", url, "--wait",
             "--model", "wait"], cwd=REPO, env={**env, "TERM": "xterm-256color"},
            stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        seen: list[str] = []
        try:
            shown = await asyncio.to_thread(
                _read_until, master, re.compile(r"decode.*%\s+\d+\.\ds\s+running: waiting for go"),
                seen, 60)
            job_id = re.search(r"job ([0-9a-f]{32})", shown).group(1)  # type: ignore[union-attr]
            process.send_signal(signal.SIGINT)
            code = await asyncio.to_thread(process.wait, 30)
            shown = await asyncio.to_thread(_read_until, master, re.compile(r"stt cancel"),
                                            seen, 10)
        finally:
            if process.poll() is None:
                process.kill()
            os.close(master)
        assert code == 130, shown
        assert "Traceback" not in shown and "KeyboardInterrupt" not in shown
        assert f"stopped following job {job_id}; it keeps running" in shown
        assert f"stt status {job_id} --wait" in shown
        assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "decoding"

        (store.files(job_id).root / "go").touch()
        code, out, err = await stt("status", job_id, "--url", url, "--wait")
        assert code == 0, err
        assert f"job {job_id}  completed  talk.wav" in out
        for stage in ("decode", "diarize", "transcribe"):
            assert re.search(rf"{stage} .* 100\.0%\s+\d+\.\ds\s+done", out), out


async def test_status_list_rerun_cancel_and_health(settings: Settings, store: JobStore,
                                                  tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with serve(settings) as client:
        url = str(client.base_url)
        code, out, _ = await stt("health", "--url", url)
        assert code == 1 and "unavailable" in out and "no live decode worker" in out
        async with running_workers(store, GATEWAY_STAGES):
            code, out, err = await stt("health", "--url", url)
            assert code == 0 and out.startswith("ok"), out + err
            assert re.search(r"transcribe\s+1\s+0\s+0\s+0", out), out
            code, out, _ = await stt("health", "--url", url, "--json")
            assert code == 0 and msgspec.json.decode(out)["status"] == "ok"

            code, job_id, err = await stt("submit", str(audio), "--url", url, "--no-diarize")
            assert code == 0, err
            job_id = job_id.strip()
            await finished(client, job_id)
            code, out, _ = await stt("status", job_id, "--url", url, "--json")
            assert code == 0 and msgspec.json.decode(out)["options"]["diarize"] is False

            code, failing, _ = await stt("submit", str(audio), "--url", url, "--model", "fail")
            failing = failing.strip()
            await finished(client, failing)
            code, out, _ = await stt("status", failing, "--url", url)
            assert code == 0 and f"job {failing}  failed" in out
            assert "error: diarize: the input is not usable" in out
            assert re.search(r"decode .* 100\.0%\s+\d+\.\ds\s+done", out), out
            assert re.search(r"diarize .*\s+failed", out), out

            code, out, _ = await stt("list", "--url", url)
            assert code == 0 and job_id in out and failing in out
            code, out, _ = await stt("list", "--url", url, "--status", "failed", "--json")
            assert [j["id"] for j in msgspec.json.decode(out)["jobs"]] == [failing]

            code, out, err = await stt("rerun", job_id, "--url", url, "--from", "transcribe",
                                       "--model", "tiny.en", "--wait", "--format", "txt")
            assert code == 0, err
            assert f"job {job_id} run 2 queued from transcribe" in err
            assert "Hello there." in out
            code, out, _ = await stt("status", job_id, "--url", url, "--json")
            record = msgspec.json.decode(out)
            assert record["run"] == 2 and record["options"]["model"] == "tiny.en"
            code, _, err = await stt("rerun", job_id, "--url", url, "--from", "speak")
            assert code == 2 and "invalid choice: 'speak'" in err

            code, _, err = await stt("cancel", job_id, "--url", url)
            assert code == 0 and f"cancelled job {job_id}" in err
            code, _, err = await stt("status", job_id, "--url", url)
            assert code == 1 and "404" in err


async def test_speakers_add_list_rm_and_submit_identify(settings: Settings, store: JobStore,
                                                       tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        url = str(client.base_url)
        code, out, err = await stt("speakers", "add", "Alice", str(audio), "--url", url)
        assert code == 0, err
        voiceprint_id = out.strip()
        assert f"enrolled Alice as {voiceprint_id}" in err
        code, out, _ = await stt("speakers", "list", "--url", url)
        assert code == 0 and voiceprint_id in out and "Alice" in out
        code, out, err = await stt("submit", str(audio), "--url", url, "--identify", "--wait",
                                   "--format", "txt")
        assert code == 0, err
        # The option stages give every job the same voices: the sample's is SPEAKER_00's.
        assert out.startswith("Alice [00:00:00]") and "SPEAKER_01" in out
        code, _, err = await stt("speakers", "rm", voiceprint_id, "--url", url)
        assert code == 0 and f"deleted voiceprint {voiceprint_id}" in err
        code, out, _ = await stt("speakers", "list", "--url", url, "--json")
        assert code == 0 and msgspec.json.decode(out) == []
        code, _, err = await stt("speakers", "rm", voiceprint_id, "--url", url)
        assert code == 1 and "404" in err
        code, _, err = await stt("speakers", "add", "Bob", str(tmp_path / "none.wav"),
                                 "--url", url)
        assert code == 2 and "none.wav is not a file" in err


async def test_replay_uses_the_service_s_server_and_never_starts_one(
        settings: Settings, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    env = {"JOBS_DIR": str(fresh), "KEY_PREFIX": settings.key_prefix, "REDIS_URL": ""}
    code, out, err = await stt("replay", "decode", "--dry-run", env=env)
    assert code == 2 and out == ""
    assert f"no embedded server is running for JOBS_DIR {fresh}" in err
    assert running_server(server_dir(fresh)) is None and not fresh.exists()

    assert settings.redis_url is not None
    code, out, err = await stt("replay", "decode", "--dry-run",
                               env={**env, "REDIS_URL": settings.redis_url})
    assert code == 0, err
    assert f"replaying on REDIS_URL {settings.redis_url}" in err
    assert msgspec.json.decode(out)["entries"] == 0

    url = ensure_server(fresh)
    try:
        code, out, err = await stt("replay", "decode", "--dry-run", env=env)
        assert code == 0, err
        assert f"replaying on the embedded server of JOBS_DIR {fresh} ({url})" in err
    finally:
        info = running_server(server_dir(fresh))
        assert info is not None
        stop_server(info)
