"""Scenario: a request that was not honoured says so in the result's warnings (issue 25 item
7), through the gateway and a real worker process per stage on the offline default models."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stages.table import STAGES, TABLE
from tests.support.media_gen import encode_streams, speak, tone, write_wav
from tests.system.conftest import Service, submit

pytestmark = [pytest.mark.models, pytest.mark.system]

REAL_STAGES = {stage: TABLE.spec(stage).stage for stage in STAGES}
RATE = 16_000


async def _finished(service: Service, audio: Path, **options: str) -> dict[str, Any]:
    accepted = await submit(service, audio.read_bytes(), name=audio.name, **options)
    assert accepted.status_code == 202, accepted.text
    job = await service.wait_finished(accepted.json()["job_id"], timeout=300)
    assert job["status"] == "completed", job["error"]
    result: dict[str, Any] = (await service.http.get(f"/jobs/{job['id']}/result")).json()
    return result


async def test_what_was_not_honoured_is_a_warning(deploy: Any, tmp_path: Path) -> None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox (apt-get install espeak-ng sox)")
    english = speak(tmp_path / "en.wav", ["-v", "en-us"], "Good morning everyone, thank you "
                    "for coming today. We will talk about the budget for next year.")
    german = speak(tmp_path / "de.wav", ["-v", "de"], "Guten Morgen zusammen, schön dass "
                   "ihr da seid. Heute sprechen wir über den Haushalt des nächsten Jahres.")
    with wave.open(str(english), "rb") as clip:
        pcm = np.frombuffer(clip.readframes(clip.getnframes()), "<i2")
    spoken = (pcm / 32768).astype(np.float32)[None, :]
    # A video's soundtracks: a short beep first, the speech second.
    tracks = encode_streams(tmp_path / "tracks.mkv", [tone(0.1, RATE), spoken],
                            RATE, "libopus", "matroska")
    silence = write_wav(tmp_path / "silence.wav", np.zeros((1, RATE * 3), np.float32), RATE)
    service = await deploy(stage_classes=REAL_STAGES)

    # The first stream is a 0.1 s tone, which Whisper once wrote as "you".
    beep = await _finished(service, tracks, model="base", diarize="false")
    assert beep["segments"] == []
    [streams, no_speech] = beep["warnings"]
    assert "2 audio streams" in streams and "audio_stream" in streams
    assert "no speech was detected" in no_speech

    chosen = await _finished(service, tracks, model="tiny.en", diarize="false", audio_stream="1")
    assert "budget" in " ".join(s["text"] for s in chosen["segments"]).lower()
    assert chosen["warnings"] == []

    foreign = await _finished(service, german, model="tiny.en", diarize="false")
    [warning] = foreign["warnings"]
    assert "understands English only" in warning and "language de" in warning

    nobody = await _finished(service, silence, num_speakers="2")
    assert nobody["speakers"] == []
    [warning] = nobody["warnings"]
    assert "num_speakers=2" in warning and "only 0 distinct voices" in warning
