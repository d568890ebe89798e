"""The official `openai` package against the whole service on the offline default models:
a gateway process, a real worker process per stage, a conversation spoken by espeak-ng."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
import srt as srt_format
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)

from stages.table import STAGES, TABLE
from tests.support.media_gen import VOICES, Turn, conversation, speak

pytestmark = [pytest.mark.models, pytest.mark.system]

REAL_STAGES = {stage: TABLE.spec(stage).stage for stage in STAGES}
KEY = "key-a"
AUTH = {"Authorization": f"Bearer {KEY}"}
NAME = "Katrin Osterhaus"
NAME_LINE = f"Please say hello to {NAME}, our new colleague from Berlin."


@pytest.fixture
def speech(tmp_path: Path) -> tuple[Path, list[Turn], Path]:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox (apt-get install espeak-ng sox)")
    audio, turns = conversation(tmp_path)
    return audio, turns, speak(tmp_path / "name.wav", VOICES["alice"], NAME_LINE)


async def test_openai_clients_on_the_default_models(
        deploy: Any, speech: tuple[Path, list[Turn], Path]) -> None:
    audio, turns, name_clip = speech
    service = await deploy(stage_classes=REAL_STAGES, api_keys=KEY)
    base_url = f"{service.http.base_url}/v1"
    with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=600) as client:
        # Only diarized_json diarizes: it is a job of its own. Every other format comes
        # from one job: the same Idempotency-Key answers each request (each a real upload
        # with the same options) from the job the first one made.
        same = {"Idempotency-Key": "conversation"}
        transcriptions = client.audio.transcriptions
        diarized = transcriptions.create(file=audio, model="gpt-4o-transcribe-diarize",
                                         response_format="diarized_json",
                                         extra_headers={"Idempotency-Key": "diarized"})
        assert isinstance(diarized, TranscriptionDiarized)
        job_id = diarized._request_id
        _check_speakers(diarized, turns)
        assert "budget" in diarized.text.lower()

        verbose = transcriptions.create(file=audio, model="whisper-1",
                                        response_format="verbose_json",
                                        timestamp_granularities=["word", "segment"],
                                        extra_headers=same)
        assert isinstance(verbose, TranscriptionVerbose) and verbose._request_id != job_id
        plain_id = verbose._request_id
        assert verbose.language == "english" and _words(verbose.text) == _words(diarized.text)
        assert verbose.segments and verbose.words and len(verbose.words) >= 80
        starts = [w.start for w in verbose.words]
        assert starts == sorted(starts)
        assert all(0 <= w.start <= w.end <= verbose.duration for w in verbose.words)
        assert _words(" ".join(s.text for s in verbose.segments)) == _words(verbose.text)

        plain = transcriptions.create(file=audio, model="whisper-1", extra_headers=same)
        assert isinstance(plain, Transcription) and plain._request_id == plain_id
        assert plain.text == verbose.text
        text = transcriptions.create(file=audio, model="whisper-1", response_format="text",
                                     extra_headers=same)
        assert text == verbose.text + "\n"
        srt = transcriptions.create(file=audio, model="whisper-1", response_format="srt",
                                    extra_headers=same)
        vtt = transcriptions.create(file=audio, model="whisper-1", response_format="vtt",
                                    extra_headers=same)
        cues = list(srt_format.parse(srt))
        assert cues and srt.count(" --> ") == vtt.count(" --> ") == len(cues)
        assert _words(" ".join(c.content for c in cues)) == _words(verbose.text)
        assert vtt.startswith("WEBVTT")
        jobs = (await service.http.get("/jobs", headers=AUTH)).json()["jobs"]
        assert {job["id"] for job in jobs} == {job_id, plain_id}

        await _disconnect_then_translate(service, base_url, audio)
        _prompt_and_keywords_reach_the_model(transcriptions, name_clip)


def _words(text: str) -> list[str]:
    return text.split()


def _check_speakers(diarized: TranscriptionDiarized, turns: list[Turn]) -> None:
    """Speakers labelled A, B, C in order of appearance, each standing for one voice."""
    labels = list(dict.fromkeys(s.speaker for s in diarized.segments))
    assert labels == ["A", "B", "C"]

    def voice(t: float) -> str | None:
        return next((turn.speaker for turn in turns if turn.start <= t <= turn.end), None)

    pairs = Counter((s.speaker, voice((s.start + s.end) / 2)) for s in diarized.segments)
    mapping = {label: max((n, v) for (lab, v), n in pairs.items() if lab == label)[1]
               for label in labels}
    assert len(set(mapping.values())) == 3
    right = sum(n for (label, v), n in pairs.items() if mapping[label] == v)
    assert right / len(diarized.segments) >= 0.9


async def _disconnect_then_translate(service: Any, base_url: str, audio: Path) -> None:
    """A client that gives up leaves its job running under /jobs; asked again with its
    Idempotency-Key, the same job answers."""
    same = {"Idempotency-Key": "translation"}
    # Decoding and transcribing 50 s of speech on the CPU takes longer than a second.
    with (openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=1.0) as hasty,
          pytest.raises(openai.APITimeoutError)):
        hasty.audio.translations.create(file=audio, model="whisper-1", extra_headers=same)
    jobs = (await service.http.get("/jobs", headers=AUTH)).json()["jobs"]
    assert len(jobs) == 3  # the diarized and the plain transcriptions' jobs, and this one
    job = await service.wait_finished(jobs[0]["id"], timeout=300, headers=AUTH)
    assert job["status"] == "completed", job["error"]
    assert job["options"]["task"] == "translate" and job["options"]["diarize"] is False
    with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=600) as client:
        translation = client.audio.translations.create(file=audio, model="whisper-1",
                                                       extra_headers=same)
        assert isinstance(translation, Translation) and "budget" in translation.text.lower()
        verbose = client.audio.translations.create(file=audio, model="whisper-1",
                                                   response_format="verbose_json",
                                                   extra_headers=same)
        assert isinstance(verbose, TranslationVerbose) and verbose.language == "english"
        assert verbose._request_id == job["id"]


def _prompt_and_keywords_reach_the_model(transcriptions: Any, clip: Path) -> None:
    """Whisper misspells an unusual name; the prompt, or the name as a keyword (hotwords),
    puts it right."""
    def heard(**fields: Any) -> str:
        answer = transcriptions.create(file=clip, model="whisper-1", language="en", **fields)
        assert isinstance(answer, Transcription)
        text: str = answer.text
        return text

    assert NAME not in heard(), "the test needs a name Whisper misspells unprompted"
    assert NAME in heard(prompt=f"{NAME} joins the team.")
    assert NAME in heard(keywords=[NAME])
