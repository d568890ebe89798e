"""The one settings object of the speech service: the core's (pipeline.settings), with the
sections of the models and of the HTTP gateway. The stage table names it, so every process
reads this one object, and ``python -m pipeline.settings`` documents it."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from pipeline import settings as core
from pipeline.settings import doc


class Settings(core.Settings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the gateway, the stage workers and the runtime."""

    # -- models ------------------------------------------------------------------------
    whisper_model: Annotated[str, doc(
        "Whisper model: a size name (tiny, base, small, medium, large-v3, ...; downloaded "
        "when online), a local CTranslate2 directory, or the bundled offline models "
        "`tiny.en` and `base`.", min_length=1)] = "base"
    whisper_batch_size: Annotated[Annotated[int, msgspec.Meta(ge=1, le=64)] | None, doc(
        "Whisper's 30 s chunks decoded together. Unset: 8 on a CUDA GPU; 2 on the CPU, "
        "where each chunk of a batch holds its own attention matrices in memory (72 MB "
        "with `base`) and bigger batches gain little speed.")] = None
    hf_token: Annotated[str | None, doc(
        "Hugging Face token. Set: the hub's diarization pipeline (DIARIZATION_MODEL) and "
        "whisperx's wav2vec2 word aligners are used. Unset: the bundled offline "
        "diarization pipeline, and words timed by the Whisper model itself.")] = None
    diarization_model: Annotated[str, doc(
        "Hub name of the pyannote pipeline used when HF_TOKEN is set.")] = (
        "pyannote/speaker-diarization-community-1")
    device: Annotated[Literal["auto", "cpu", "cuda", "mps"], doc(
        "Device for the models: auto picks CUDA, then Apple MPS, then the CPU.")] = "auto"
    cpu_threads: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, doc(
        "Threads a model stage computes with on the CPU (PyTorch's, and CTranslate2's in "
        "transcribe). Unset: one per core. Stages on one machine compete for its cores "
        "when jobs queue: there, 1 on the diarize worker, whose many small parallel steps "
        "wait for a thread the other stage has taken, nearly doubled the jobs finished "
        "per minute on 2 cores at the same speed per job (docs/performance.md).")] = None
    max_audio_seconds: Annotated[float, doc(
        "Longest audio accepted, checked before and during decoding.", gt=0)] = 4 * 3600.0

    # -- gateway -----------------------------------------------------------------------
    host: Annotated[str, doc("Address the gateway listens on.")] = "127.0.0.1"
    port: Annotated[int, doc("Port the gateway listens on.", ge=0, le=65535)] = 8000
    max_upload_bytes: Annotated[int, doc(
        "Largest upload accepted; larger ones get 413.", ge=1)] = 2 * 1024**3
    sync_timeout_seconds: Annotated[float, doc(
        "How long POST /transcribe waits for the result before answering 202.", gt=0)] = 60.0
    sync_max_seconds: Annotated[float, doc(
        "Longest audio POST /transcribe accepts; longer audio goes through /jobs.",
        gt=0)] = 300.0
    api_keys: Annotated[str, doc(
        "Comma-separated API keys. Set: every endpoint but /health needs "
        "`Authorization: Bearer <key>` and a job is visible only to the key that made "
        "it.")] = ""

    # -- subtitles (result formats srt and vtt) ----------------------------------------
    subtitle_max_line_chars: Annotated[int, doc(
        "Longest subtitle line, in characters (a full-width CJK character counts as two); "
        "42 is the limit of Netflix's style guide for Latin script.", ge=10, le=200)] = 42
    subtitle_max_lines: Annotated[int, doc(
        "Most lines in one subtitle cue.", ge=1, le=5)] = 2
    subtitle_max_cue_seconds: Annotated[float, doc(
        "Longest time one subtitle cue stays on screen (one word said for longer gets a "
        "cue of its own); 7 s is Netflix's limit.", ge=1)] = 7.0
    subtitle_min_cue_seconds: Annotated[float, doc(
        "Shortest time a subtitle cue stays on screen so it can be read: a shorter one is "
        "extended into the silence around it, never over the next cue.", ge=0)] = 1.0

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError("MAX_UPLOAD_BYTES must be at least 1024")
        if self.subtitle_min_cue_seconds >= self.subtitle_max_cue_seconds:
            raise ValueError("SUBTITLE_MIN_CUE_SECONDS must be less than "
                             "SUBTITLE_MAX_CUE_SECONDS")

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())
