"""Scenario 5: hostile uploads, through the real gateway and the real decode stage."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.media_gen import tone, write_wav
from tests.system.conftest import OPTION_STAGES, Service, submit
from tests.system.hostile import Kind, uploads

pytestmark = pytest.mark.system


def outside(service: Service, root: Path) -> set[Path]:
    """Files under ``root`` that are not the service's own (jobs, server data, logs)."""
    own = (service.settings.jobs_path, service.server_dir)
    return {p for p in root.rglob("*") if p.suffix != ".log"
            and not any(p == d or d in p.parents for d in own)}


async def test_hostile_uploads_are_refused_or_fail_cleanly(deploy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = f"CANARY-{uuid.uuid4().hex}"
    canary = tmp_path / "canary.wav"
    # A real audio file with a secret in a RIFF chunk: were a playlist followed, its audio
    # would be decoded (the job would complete with its 7.77 s) and the secret could leak.
    write_wav(canary, tone(7.77, 16000), 16000)
    with open(canary, "ab") as f:
        f.write(b"LIST" + len(secret).to_bytes(4, "little") + secret.encode())
    (tmp_path / "gen").mkdir()
    files = uploads(tmp_path / "gen", canary)
    assert len(files) >= 50
    stages = {**OPTION_STAGES, "decode": "stages.decode:DecodeStage"}
    service: Service = await deploy(stage_classes=stages)
    before = outside(service, tmp_path)

    answers = []
    for upload in files:
        response = await submit(service, upload.data, name=upload.name)
        assert response.status_code in (202, 400, 413, 415), (upload.name, response.text)
        body = response.json()
        if response.status_code != 202:
            assert body["error"]["message"], upload.name
            assert upload.kind is not Kind.AUDIO, (upload.name, body)
        answers.append((upload, response.status_code, body))

    for upload, status, body in answers:
        if status != 202:
            continue
        job = await service.wait_finished(body["job_id"])
        if upload.kind is Kind.AUDIO:
            assert job["status"] == "completed", (upload.name, job)
            assert "/" not in (job["input_name"] or "") and "\x00" not in (job["input_name"] or "")
        elif job["status"] == "failed":
            assert job["error"] and "Traceback" not in job["error"], (upload.name, job)
        else:
            assert upload.kind is Kind.DAMAGED and job["status"] == "completed", (upload.name, job)
            assert job["result"]["duration"] < 7.0, upload.name  # not the canary's audio
        assert secret not in str(job)

    # Nothing leaked, nothing died, nothing was written outside JOBS_DIR.
    outputs = service.logs() + "".join(
        p.read_text(errors="replace") for p in service.settings.jobs_path.rglob("*.json"))
    assert secret not in outputs
    for name, worker in service.workers.items():
        assert worker.poll() is None, f"worker {name} died"
    assert service.gateway.poll() is None
    assert outside(service, tmp_path) == before
    assert not Path("/tmp/escape.wav").exists()
    assert {upload.kind for upload, _, _ in answers} == set(Kind)  # every kind was exercised
