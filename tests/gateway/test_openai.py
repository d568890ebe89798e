"""The OpenAI-compatible endpoints with the official `openai` package as the client, against
a real gateway on 127.0.0.1 (its jobs run by the option stages; tests/system/test_openai.py
runs them on the real models)."""

from __future__ import annotations

import ast
import base64
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest
from litestar import Litestar
from openai.types import Model
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)

from gateway import create_app
from gateway.formats import to_srt, to_vtt
from gateway.openai.languages import LANGUAGE_NAMES
from pipeline.store import JobStore
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.gateway import finished, job_events, serve_app, waiters
from tests.support.option_stages import GATEWAY_STAGES, RESULT
from tests.support.workers import running_workers, until

AUDIO = ("talk.wav", silent_wav(), "audio/wav")


def sdk(client: httpx.AsyncClient, api_key: str = "none", **options: Any) -> openai.AsyncOpenAI:
    """The SDK pointed at the gateway (no retries unless asked): use it in `async with`."""
    return openai.AsyncOpenAI(base_url=f"{client.base_url}/v1", api_key=api_key,
                              **{"max_retries": 0, **options})


async def job_options(client: httpx.AsyncClient, job_id: str,
                      headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(f"/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()["options"]
    return options


async def test_every_response_format_parses_into_the_sdk_types(
        client: httpx.AsyncClient, store: JobStore, settings: Settings) -> None:
    async with sdk(client) as ai, running_workers(store, GATEWAY_STAGES):
        transcriptions = ai.audio.transcriptions
        raw = await transcriptions.with_raw_response.create(file=AUDIO, model="whisper-1")
        plain = raw.parse()
        assert isinstance(plain, Transcription)
        assert plain.text == " ".join(s.text for s in RESULT.segments)
        assert plain.usage is not None and plain.usage.type == "duration"
        assert plain.usage.seconds == RESULT.duration
        job_id = raw.headers["x-request-id"]
        # An OpenAI model name runs WHISPER_MODEL, and only a diarized answer diarizes.
        options = await job_options(client, job_id)
        assert options["model"] is None and options["diarize"] is False
        assert options["task"] == "transcribe"

        verbose = await transcriptions.create(
            file=AUDIO, model="tiny.en", response_format="verbose_json",
            timestamp_granularities=["word", "segment"])
        assert isinstance(verbose, TranscriptionVerbose)
        assert verbose.language == "english" and verbose.duration == RESULT.duration
        assert verbose.segments is not None and verbose.words is not None
        assert [s.text for s in verbose.segments] == [s.text for s in RESULT.segments]
        assert [(s.start, s.end) for s in verbose.segments] == [
            (s.start, s.end) for s in RESULT.segments]
        assert [(w.word, w.start, w.end) for w in verbose.words] == [
            (w.word, w.start, w.end) for s in RESULT.segments for w in s.words]
        assert (await job_options(client, verbose._request_id or ""))["model"] == "tiny.en"

        words_only = await transcriptions.create(
            file=AUDIO, model="whisper-1", response_format="verbose_json",
            timestamp_granularities=["word"])
        assert words_only.segments is None and words_only.words

        diarized = await transcriptions.create(
            file=AUDIO, model="gpt-4o-transcribe-diarize", response_format="diarized_json",
            chunking_strategy="auto")
        assert isinstance(diarized, TranscriptionDiarized)
        assert [s.speaker for s in diarized.segments] == ["A", "B", "B"]
        assert [s.text for s in diarized.segments] == [s.text for s in RESULT.segments]
        assert all(s.type == "transcript.text.segment" for s in diarized.segments)
        assert diarized.text == plain.text and diarized.task == "transcribe"
        assert (await job_options(client, diarized._request_id or ""))["diarize"] is True

        srt = await transcriptions.create(file=AUDIO, model="whisper-1", response_format="srt")
        assert srt == to_srt(RESULT, "", settings)
        vtt = await transcriptions.create(file=AUDIO, model="whisper-1", response_format="vtt")
        assert vtt == to_vtt(RESULT, "", settings)
        text = await transcriptions.create(file=AUDIO, model="whisper-1",
                                           response_format="text")
        assert text == plain.text + "\n"

        translations = ai.audio.translations
        raw_translation = await translations.with_raw_response.create(
            file=AUDIO, model="whisper-1", prompt="Hello.")
        translation = raw_translation.parse()
        assert isinstance(translation, Translation) and translation.text == plain.text
        options = await job_options(client, raw_translation.headers["x-request-id"])
        assert options["task"] == "translate" and options["prompt"] == "Hello."
        verbose_translation = await translations.create(file=AUDIO, model="whisper-1",
                                                        response_format="verbose_json")
        assert isinstance(verbose_translation, TranslationVerbose)
        assert verbose_translation.language == "english" and verbose_translation.segments


async def test_prompt_language_and_keywords_become_job_options(
        client: httpx.AsyncClient, store: JobStore) -> None:
    async with sdk(client) as ai, running_workers(store, GATEWAY_STAGES):
        raw = await ai.audio.transcriptions.with_raw_response.create(
            file=AUDIO, model="base", language="de", prompt="Katrin Osterhaus", temperature=0,
            extra_body={"keywords": ["pgvector", "Qdrant"]})
    options = await job_options(client, raw.headers["x-request-id"])
    assert options["language"] == "de" and options["prompt"] == "Katrin Osterhaus"
    assert options["hotwords"] == "pgvector Qdrant"
    assert options["model"] is None  # base is WHISPER_MODEL


async def test_bad_requests_raise_the_sdk_errors(client: httpx.AsyncClient) -> None:
    async with sdk(client) as ai:
        with pytest.raises(openai.BadRequestError) as bad_file:
            await ai.audio.transcriptions.create(
                file=("notes.wav", b"just some text", "audio/wav"), model="whisper-1")
        assert bad_file.value.status_code == 400
        body = bad_file.value.body
        assert isinstance(body, dict) and body["type"] == "invalid_request_error"
        assert "audio" in body["message"]
        cases: list[dict[str, Any]] = [
            {"response_format": "mp3"},
            {"temperature": 3},
            {"timestamp_granularities": ["sentence"]},
            {"language": "english"},
            {"prompt": "x" * 1001},
            {"stream": True},
            {"extra_body": {"voice": "alloy"}},
        ]
        for fields in cases:
            with pytest.raises(openai.BadRequestError) as refused:
                await ai.audio.transcriptions.create(file=AUDIO, model="whisper-1", **fields)
            name = next(iter(fields.get("extra_body", fields)))
            assert name in refused.value.message, refused.value.message
        with pytest.raises(openai.BadRequestError, match="diarized_json"):
            # Diarized answers are for transcriptions only (the SDK's types know it).
            await ai.audio.translations.create(  # type: ignore[call-overload]
                file=AUDIO, model="whisper-1", response_format="diarized_json")
    assert (await client.get("/jobs")).json()["jobs"] == []


@asynccontextmanager
async def gateway(settings: Settings, **changes: Any) -> AsyncIterator[tuple[
        Litestar, httpx.AsyncClient]]:
    """A gateway whose settings differ from the test's by ``changes``."""
    app = create_app(msgspec.structs.replace(settings, **changes))
    async with serve_app(app) as client:
        yield app, client


async def test_audio_longer_than_the_limit_is_413(settings: Settings) -> None:
    async with gateway(settings, max_audio_seconds=0.5) as (_, client), sdk(client) as ai:
        with pytest.raises(openai.APIStatusError) as too_long:
            await ai.audio.transcriptions.create(file=AUDIO, model="whisper-1")
    assert too_long.value.status_code == 413
    assert "longer than the limit" in too_long.value.message


async def test_api_keys_and_isolation(settings: Settings, store: JobStore) -> None:
    async with (gateway(settings, api_keys="key-a,key-b") as (_, client),
                sdk(client, api_key="wrong") as stranger, sdk(client, api_key="key-a") as a):
        with pytest.raises(openai.AuthenticationError) as refused:
            await stranger.audio.transcriptions.create(file=AUDIO, model="whisper-1")
        body = refused.value.body
        assert isinstance(body, dict) and body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()
        no_key = await client.post("/v1/audio/transcriptions", files={"file": AUDIO})
        assert no_key.status_code == 401
        assert no_key.json()["error"]["type"] == "invalid_request_error"
        async with running_workers(store, GATEWAY_STAGES):
            raw = await a.audio.transcriptions.with_raw_response.create(file=AUDIO,
                                                                        model="whisper-1")
        job_id = raw.headers["x-request-id"]
        key_a, key_b = ({"Authorization": f"Bearer {key}"} for key in ("key-a", "key-b"))
        assert (await client.get(f"/jobs/{job_id}", headers=key_a)).status_code == 200
        assert (await client.get(f"/jobs/{job_id}", headers=key_b)).status_code == 404
        assert (await client.get("/jobs", headers=key_b)).json()["jobs"] == []


async def test_a_client_that_disconnects_leaves_the_job_running(
        client: httpx.AsyncClient, app: Litestar, store: JobStore) -> None:
    # No workers yet: the job cannot finish before the client gives up.
    async with sdk(client, timeout=1.0) as impatient:
        with pytest.raises(openai.APITimeoutError):
            await impatient.audio.transcriptions.create(
                file=("left.wav", silent_wav(), "audio/wav"), model="whisper-1")

    async def listed() -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = (await client.get("/jobs")).json()["jobs"]
        return jobs

    await until(listed, timeout=30, what="the job under /jobs")
    [job] = await listed()
    assert job["input_name"] == "left.wav" and job["status"] == "queued"
    # The gateway stopped waiting for the job when the client went.
    await until(lambda: waiters(job_events(app), job["id"]) == 0, timeout=30,
                what="the request to stop waiting")
    async with running_workers(store, GATEWAY_STAGES):
        done = await finished(client, job["id"])
    assert done["status"] == "completed" and done["result"]["segments"]


async def test_a_job_longer_than_the_timeout_answers_504_once(settings: Settings) -> None:
    # Retries allowed: the answer tells the SDK not to upload the audio again.
    async with (gateway(settings, openai_timeout_seconds=0.2) as (_, client),
                sdk(client, max_retries=2) as ai):
        with pytest.raises(openai.InternalServerError) as late:
            await ai.audio.transcriptions.create(file=AUDIO, model="whisper-1")
        assert late.value.status_code == 504
        [job] = (await client.get("/jobs")).json()["jobs"]
        assert job["id"] in late.value.message and job["status"] == "queued"
        assert late.value.response.headers["x-request-id"] == job["id"]


async def test_models_lists_what_the_server_runs(settings: Settings) -> None:
    async with gateway(settings, whisper_model="tiny.en") as (_, client), sdk(client) as ai:
        models = ai.models
        listed = [m async for m in models.list()]
        assert all(isinstance(m, Model) for m in listed)
        # WHISPER_MODEL, the bundled models, then MODELS_DIR's folders (the option stages').
        local = sorted(p.name for p in Path(settings.models_dir or "").iterdir())
        assert local and [m.id for m in listed] == ["tiny.en", "base", *local]
        assert (await models.retrieve("base")).id == "base"
        with pytest.raises(openai.NotFoundError):
            await models.retrieve("whisper-1")


def test_language_names_are_whispers() -> None:
    """The table equals the one whisperx ships (read from its source, not imported: that
    would load torch)."""
    spec = importlib.util.find_spec("whisperx")
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / "utils.py").read_text()
    tree = ast.parse(source)
    [languages] = [ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", None) == "LANGUAGES" for t in node.targets)]
    assert languages == LANGUAGE_NAMES


async def test_known_speakers_name_this_request_s_voices_only(client: httpx.AsyncClient,
                                                              store: JobStore) -> None:
    # The option stages embed a one-speaker job's voice as every job's SPEAKER_00.
    reference = "data:audio/wav;base64," + base64.b64encode(silent_wav()).decode()
    async with sdk(client) as ai, running_workers(store, GATEWAY_STAGES):
        diarized = await ai.audio.transcriptions.create(
            file=AUDIO, model="gpt-4o-transcribe-diarize", response_format="diarized_json",
            known_speaker_names=["Ann"], known_speaker_references=[reference])
        assert isinstance(diarized, TranscriptionDiarized)
        assert [s.speaker for s in diarized.segments] == ["Ann", "A", "A"]
        assert (await job_options(client, diarized._request_id or ""))["identify"] is True
        # Nothing of Ann is kept: no voiceprint, and no job of her reference.
        assert (await client.get("/speakers")).json() == []
        jobs = (await client.get("/jobs")).json()["jobs"]
        assert [j["id"] for j in jobs] == [diarized._request_id]
        # Without known speakers, the next request's speakers are letters again.
        plain = await ai.audio.transcriptions.create(
            file=AUDIO, model="whisper-1", response_format="diarized_json")
        assert [s.speaker for s in plain.segments] == ["A", "B", "B"]

        for names, references, field in ((["Ann", "Bob"], [reference], "known_speaker_names[]"),
                                         (["Ann"], ["data:text/plain;base64,aGk="],
                                          "known_speaker_references[]")):
            with pytest.raises(openai.BadRequestError, match=field.replace("[]", r"\[\]")):
                await ai.audio.transcriptions.create(
                    file=AUDIO, model="whisper-1", response_format="diarized_json",
                    known_speaker_names=names, known_speaker_references=references)
        with pytest.raises(openai.BadRequestError, match="diarized_json"):
            await ai.audio.transcriptions.create(
                file=AUDIO, model="whisper-1", known_speaker_names=["Ann"],
                known_speaker_references=[reference])
