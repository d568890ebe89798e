"""Input handling at submission: every refused option names the field, the value and what
is allowed; the form is parsed strictly; `model` and `language` are checked against what
the server can run, and `model` never reveals the server's files; an Idempotency-Key
reused for another request is refused; long polls above the maximum are cut to it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from pipeline.store import JobStore
from stages import catalog
from stages.options import shown
from stages.settings import Settings
from tests.support.audio import silent_wav
from tests.support.gateway import completed_job, serve, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.workers import running_workers

BOUNDARY = "messagestestboundary"


def refusal(response: httpx.Response, field: str | None) -> str:
    """The message of a 400 that names ``field``."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == 400 and error.get("field") == field, error
    message: str = error["message"]
    return message


def job_folders(settings: Settings) -> list[str]:
    root = settings.jobs_path
    return sorted(p.name for p in root.iterdir() if len(p.name) == 32) if root.exists() else []


async def post_form(client: httpx.AsyncClient, parts: list[tuple[str, str]]) -> httpx.Response:
    """A multipart body of (Content-Disposition, content) parts, the file part first."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + silent_wav()
    for disposition, content in parts:
        body += (f"\r\n--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
                 f"{content}").encode()
    body += f"\r\n--{BOUNDARY}--\r\n".encode()
    return await client.post(
        "/jobs", content=body,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})


# -- messages ---------------------------------------------------------------------------

async def test_each_option_error_names_field_value_and_what_is_allowed(
        client: httpx.AsyncClient, settings: Settings) -> None:
    cases: list[tuple[dict[str, str], str, list[str]]] = [
        ({"num_speakers": "two"}, "num_speakers",
         ["num_speakers must be a whole number from 1 to 64", "'two'"]),
        ({"max_speakers": "100"}, "max_speakers",
         ["max_speakers must be a whole number from 1 to 64", "'100'"]),
        ({"task": "dance"}, "task", ["task must be", "transcribe", "translate", "'dance'"]),
        ({"diarize": "no"}, "diarize", ["diarize must be true or false", "'no'"]),
        ({"language": "English"}, "language", ["language must be", "ISO 639", "'English'"]),
        ({"min_speakers": "3", "max_speakers": "2"}, "min_speakers",
         ["min_speakers (3) must not be more than max_speakers (2)"]),
        ({"num_speakers": "2", "max_speakers": "3"}, "num_speakers",
         ["num_speakers", "max_speakers=3", "not both"]),
    ]
    for fields, field, expected in cases:
        message = refusal(await submit(client, **fields), field)
        for text in expected:
            assert text in message, (fields, message)
        # msgspec's own wording never reaches a client.
        assert "Expected" not in message and "`" not in message, message
    assert job_folders(settings) == []


async def test_a_file_under_another_name_says_it_goes_in_file(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", files={"audio": ("a.wav", silent_wav(), "audio/wav")})
    message = refusal(response, "audio")
    assert "'file'" in message and "'audio'" in message and "curl -F file=@" in message


async def test_an_unknown_field_lists_the_fields(client: httpx.AsyncClient) -> None:
    message = refusal(await submit(client, colour="blue"), "colour")
    assert "'colour'" in message and "'file'" in message
    assert all(name in message for name in ("language", "num_speakers", "diarize"))


# -- stricter parsing -------------------------------------------------------------------

async def test_numbers_are_whole_numbers_written_as_such(client: httpx.AsyncClient) -> None:
    for text in ("1e1", "2.0", "0x10", "-1", "0", "65"):
        message = refusal(await submit(client, num_speakers=text), "num_speakers")
        assert f"'{text}'" in message and "from 1 to 64" in message
    accepted = await submit(client, num_speakers=" 10 ")
    assert accepted.status_code == 202, accepted.text
    stored = (await client.get(accepted.headers["location"])).json()["options"]
    assert stored["num_speakers"] == 10


async def test_a_field_sent_twice_is_refused(client: httpx.AsyncClient,
                                             settings: Settings) -> None:
    response = await client.post("/jobs", data={"num_speakers": ["2", "3"]},
                                 files={"file": ("a.wav", silent_wav(), "audio/wav")})
    message = refusal(response, "num_speakers")
    assert "'num_speakers'" in message and "more than once" in message
    twice = await client.post("/jobs", files=[("file", ("a.wav", silent_wav(), "audio/wav")),
                                              ("file", ("b.wav", silent_wav(), "audio/wav"))])
    assert "more than once" in refusal(twice, "file")
    assert job_folders(settings) == []


async def test_a_part_without_a_name_says_so(client: httpx.AsyncClient) -> None:
    for disposition in ("form-data", 'form-data; name=""'):
        response = await post_form(client, [(disposition, "x" * 2000)])
        message = refusal(response, None)
        assert "has no name" in message and "longer than" not in message


# -- model and language -----------------------------------------------------------------

async def test_an_unknown_model_is_refused_with_the_choices(client: httpx.AsyncClient) -> None:
    message = refusal(await submit(client, model="large-v9"), "model")
    assert "'large-v9'" in message
    # The bundled models, and the folders of MODELS_DIR by name.
    assert all(name in message for name in ("tiny.en", "base", "fail", "wait", "slow"))
    for name in ("tiny.en", "base", "fail"):
        assert (await submit(client, model=name)).status_code == 202, name


@pytest.fixture
def no_hub_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The hub neither cached here nor asked before: each test finds out for itself."""
    monkeypatch.setattr(catalog, "_hub_answer", None)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    yield
    catalog._hub_answer = None


async def test_a_hub_size_offline_is_refused_unless_cached(
        client: httpx.AsyncClient, no_hub_answer: None, tmp_path: Path) -> None:
    message = refusal(await submit(client, model="small"), "model")
    assert "'small'" in message and "hub" in message and "tiny.en" in message
    assert "large-v3" not in message  # not offered: the hub cannot be reached
    snapshot = tmp_path / "hub-cache" / "models--Systran--faster-whisper-small" / "snapshots"
    (snapshot / "0123abc").mkdir(parents=True)
    (snapshot / "0123abc" / "model.bin").write_bytes(b"")
    assert (await submit(client, model="small")).status_code == 202
    assert "small" in refusal(await submit(client, model="large-v9"), "model")


async def test_a_hub_size_is_accepted_when_the_hub_answers(
        client: httpx.AsyncClient, no_hub_answer: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.create_server(("127.0.0.1", 0)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.getsockname()[1]}")
        assert (await submit(client, model="large-v3")).status_code == 202
        # Asked once, not per job: the answer is reused.
        hub.close()
        assert (await submit(client, model="medium")).status_code == 202
    catalog._hub_answer = None
    message = refusal(await submit(client, model="medium"), "model")
    assert "cannot reach" in message


async def test_the_language_must_be_one_the_model_speaks(client: httpx.AsyncClient,
                                                        settings: Settings) -> None:
    message = refusal(await submit(client, model="tiny.en", language="de"), "language")
    assert "'de'" in message and "tiny.en" in message and "en" in message
    assert (await submit(client, model="tiny.en", language="en")).status_code == 202
    assert (await submit(client, model="base", language="de")).status_code == 202
    # Unset, the job's model is WHISPER_MODEL: base speaks many languages, not "xx".
    message = refusal(await submit(client, language="xx"), "language")
    assert "'xx'" in message and "base" in message and all(
        code in message for code in ("de", "fr", "ja", "yue"))
    async with serve(msgspec.structs.replace(settings, whisper_model="tiny.en")) as english:
        assert "English" in refusal(await submit(english, language="fr"), "language")


def _model_folder(folder: Path, vocabulary: int) -> None:
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"")
    (folder / "vocabulary.txt").write_text("".join(f"t{i}\n" for i in range(vocabulary)))


async def test_a_local_models_languages_come_from_its_vocabulary(
        client: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.models_path is not None
    _model_folder(settings.models_path / "english", 51864)
    _model_folder(settings.models_path / "multi", 51865)
    assert "English" in refusal(await submit(client, model="english", language="de"),
                                "language")
    assert (await submit(client, model="multi", language="de")).status_code == 202


# -- MODELS_DIR: by name, never by path -------------------------------------------------

async def test_paths_are_refused_alike_whether_they_exist_or_not(
        client: httpx.AsyncClient, settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = b"\x89SECRETBYTES"
    (outside / "model.bin").write_bytes(secret)
    assert settings.models_path is not None
    (settings.models_path / "empty").mkdir()  # a folder of MODELS_DIR without a model

    def message(model: str) -> str:
        return refusal(answers[model], "model").replace(shown(model), "<model>")

    probes = [str(outside), str(tmp_path / "no-such-folder"), "/etc", "/no/such/dir",
              f"{settings.models_path}/fail", "../models/fail", "fail/../fail", "~root"]
    answers = {m: await submit(client, model=m) for m in probes}
    texts = {message(m) for m in probes}
    assert len(texts) == 1, texts
    [text] = texts
    assert "never by a path" in text and "SECRET" not in text and "89" not in text
    # Names of MODELS_DIR with and without a model folder: alike too.
    answers |= {m: await submit(client, model=m) for m in ("empty", "missing")}
    assert message("empty") == message("missing")
    assert job_folders(settings) == []


async def test_the_operators_whisper_model_may_be_a_path(settings: Settings,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "operator-model"
    _model_folder(folder, 51864)
    operator = msgspec.structs.replace(settings, whisper_model=str(folder))
    async with serve(operator) as client:
        assert (await submit(client)).status_code == 202
        assert (await submit(client, model=str(folder))).status_code == 202
        # English-only by its vocabulary, so the default model refuses other languages.
        assert "English" in refusal(await submit(client, language="de"), "language")


# -- Idempotency-Key --------------------------------------------------------------------

async def test_an_idempotency_key_reused_for_another_request_is_422(
        client: httpx.AsyncClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "upload-7"}
    first = await submit(client, headers=key, num_speakers="2")
    assert first.status_code == 202, first.text
    job_id = first.json()["job_id"]
    again = await submit(client, headers=key, num_speakers="2")
    assert again.status_code == 202 and again.json()["job_id"] == job_id
    for changed in (await submit(client, headers=key, num_speakers="3"),
                    await submit(client, headers=key, audio=silent_wav(seconds=2),
                                 num_speakers="2")):
        assert changed.status_code == 422, changed.text
        message = changed.json()["error"]["message"]
        assert "Idempotency-Key" in message and "different upload or options" in message
    assert job_folders(settings) == [job_id]
    # The first request still gets its job back.
    assert (await submit(client, headers=key, num_speakers="2")).json()["job_id"] == job_id


async def test_concurrent_reuse_of_a_key_makes_one_job(client: httpx.AsyncClient,
                                                       settings: Settings) -> None:
    key = {"Idempotency-Key": "race"}
    audios = [silent_wav(seconds=1), silent_wav(seconds=2)] * 4
    answers = await asyncio.gather(*(submit(client, headers=key, audio=a) for a in audios))
    created = {r.json()["job_id"] for r in answers if r.status_code == 202}
    assert len(created) == 1, [r.text for r in answers]
    assert {r.status_code for r in answers} <= {202, 422}
    # Every request with the winner's audio got its job; every other one a 422.
    winner = next(a for a, r in zip(audios, answers, strict=True) if r.status_code == 202)
    for audio, response in zip(audios, answers, strict=True):
        assert response.status_code == (202 if audio == winner else 422)
    assert job_folders(settings) == sorted(created)


# -- ?wait= -----------------------------------------------------------------------------

async def test_a_wait_above_the_maximum_is_cut_not_refused(client: httpx.AsyncClient,
                                                          store: JobStore) -> None:
    done = await completed_job(client, store)
    answer = await client.get(f"/jobs/{done}", params={"wait": 10**9})
    assert answer.status_code == 200 and answer.json()["status"] == "completed"
    job_id = (await submit(client)).json()["job_id"]
    poll = asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 3600}))
    async with running_workers(store, GATEWAY_STAGES):
        answer = await poll
    assert answer.status_code == 200 and answer.json()["id"] == job_id
