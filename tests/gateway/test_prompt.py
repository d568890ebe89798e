"""The `prompt` and `hotwords` job options: through POST /jobs, /transcribe, reruns and
`stt submit` (tests/system/test_openai.py shows them reaching the model)."""

from __future__ import annotations

from pathlib import Path

import httpx

from pipeline.store import JobStore
from stages.options import MAX_PROMPT_CHARS
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.gateway import finished, serve, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers
from tests.test_cli import stt

PROMPT = "Katrin Osterhaus met Siobhan Nguyen in Wrocław."
HOTWORDS = "pgvector Qdrant"


async def test_kept_in_the_job_and_its_reruns(client: httpx.AsyncClient,
                                              store: JobStore) -> None:
    async with running_workers(store, GATEWAY_STAGES):
        response = await submit(client, prompt=PROMPT, hotwords=HOTWORDS)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        job = await finished(client, job_id)
        assert job["options"]["prompt"] == PROMPT and job["options"]["hotwords"] == HOTWORDS

        rerun = await client.post(f"/jobs/{job_id}/rerun",
                                  json={"from_stage": "transcribe", "prompt": "Katrin."})
        assert rerun.status_code == 202, rerun.text
        job = await finished(client, job_id)
        assert job["run"] == 2 and job["options"]["prompt"] == "Katrin."
        assert job["options"]["hotwords"] == HOTWORDS
        assert job["runs"][0]["options"]["prompt"] == PROMPT

        waited = await submit(client, "/transcribe", hotwords=HOTWORDS)
        assert waited.status_code == 200, waited.text
        assert waited.json()["options"]["hotwords"] == HOTWORDS
        assert waited.json()["options"]["prompt"] is None


async def test_too_long_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    too_long = "x" * (MAX_PROMPT_CHARS + 1)
    for name, response in (("prompt", await submit(client, prompt=too_long)),
                           ("hotwords", await submit(client, hotwords=too_long))):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["field"] == name
        assert error["message"].startswith(name) and str(MAX_PROMPT_CHARS) in error["message"]


async def test_stt_submit_takes_them_as_flags(settings: Settings, store: JobStore,
                                              tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with serve(settings) as client, running_workers(store, GATEWAY_STAGES):
        code, out, err = await stt("submit", str(audio), "--url", str(client.base_url),
                                   "--prompt", PROMPT, "--hotwords", HOTWORDS)
        assert code == 0, err
        job = await finished(client, out.strip())
    assert job["options"]["prompt"] == PROMPT and job["options"]["hotwords"] == HOTWORDS
