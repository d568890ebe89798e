"""The one settings object of the speech service: the core's (pipeline.settings), with the
sections of the models and of the HTTP gateway. The stage table names it, so every process
reads this one object, and ``python -m pipeline.settings`` documents it."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
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
    models_dir: Annotated[str | None, doc(
        "Folder of local CTranslate2 Whisper models: a job's `model` may name any of its "
        "subfolders that holds a model.bin, by the subfolder's name (never by a path). "
        "Unset: jobs choose among the bundled models and hub sizes only.")] = None
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
    diarization_onnx: Annotated[bool, doc(
        "Run the offline diarization's models (segmentation-3.0, CAM++) with ONNX Runtime "
        "on the CPU: exported into the cache folder at first use and checked against the "
        "torch models at every load, torch kept if they differ (docs/performance.md, "
        "Where diarize's time goes). No effect on a GPU or with HF_TOKEN.")] = True
    device: Annotated[Literal["auto", "cpu", "cuda", "mps"], doc(
        "Device for the models: auto picks CUDA, then Apple MPS, then the CPU.")] = "auto"
    cpu_threads: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, doc(
        "Threads a model stage computes with on the CPU (PyTorch's, and CTranslate2's in "
        "transcribe). Unset: one per core. Stages on one machine compete for its cores "
        "when jobs queue: there, 1 on the diarize worker, whose many small parallel steps "
        "wait for a thread the other stage has taken, nearly doubled the jobs finished "
        "per minute on 2 cores at the same speed per job (docs/performance.md).")] = None
    speaker_match_threshold: Annotated[float, doc(
        "Least cosine similarity between a speaker's embedding and a voiceprint for a job "
        "with `identify` to give the speaker the voiceprint's name (docs/speakers.md: "
        "calibrated for the offline CAM++ model).", ge=-1, le=1)] = 0.8
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
    openai_timeout_seconds: Annotated[float, doc(
        "How long the OpenAI-compatible endpoints (/v1/audio/...) wait for the job; then "
        "they answer 504 and the job keeps running under /jobs. The default covers an hour "
        "of audio on the default models on 2 CPU cores: diarize (RTF 0.27) and transcribe "
        "(0.11) take about 1350 s, doubled for a slower machine or a job queued ahead, and "
        "rounded up (docs/performance.md).", gt=0)] = 3600.0
    api_keys: Annotated[str, doc(
        "Comma-separated API keys. Set: every endpoint but /health needs "
        "`Authorization: Bearer <key>` and a job is visible only to the key that made "
        "it.")] = ""
    admin_api_keys: Annotated[str, doc(
        "Comma-separated operator keys, needed with API_KEYS for /metrics and for /health's "
        "details (stages, queues, storage): without one, /health answers only its status "
        "(ok or unavailable, and 200 or 503). An operator key is not a job key: list it in "
        "API_KEYS too to submit jobs with it. Needs API_KEYS (without them every endpoint "
        "is open to anyone).")] = ""
    header_timeout_seconds: Annotated[float, doc(
        "Longest a client may take to send a request's headers, counted from when the "
        "connection opens or the previous response ends; then the connection is closed. "
        "Request bodies are not timed (a slow upload is not cut off): behind a reverse "
        "proxy, bound them there (docs/troubleshooting.md).", gt=0, le=3600)] = 10.0
    keep_alive_timeout_seconds: Annotated[int, doc(
        "How long an idle keep-alive connection is kept open for the client's next "
        "request (the header timeout applies as well). Longer than the 5 s for which "
        "httpx (and so the openai package) reuses an idle connection: with equal times, a "
        "client's request can cross the server's close and get a reset.",
        ge=1, le=3600)] = 8
    max_connections: Annotated[int, doc(
        "Most connections the gateway serves at once; a request beyond them gets 503. "
        "Long polls (GET /jobs/{id}?wait=) and POST /transcribe each hold one while they "
        "wait.", ge=1)] = 1000

    public_url: Annotated[str | None, doc(
        "The gateway's address as clients reach it (e.g. https://stt.example.com): webhook "
        "events carry result URLs under it. Unset: http://HOST:PORT.")] = None

    # -- outbound requests and webhooks ------------------------------------------------
    allow_private_urls: Annotated[bool, doc(
        "Allow callback URLs and audio URLs (`url`) on loopback, private, link-local and "
        "other non-public addresses (tests, private deployments). Off: such URLs are "
        "refused (400, or the job fails when a name or a redirect leads there), and so "
        "are cloud metadata addresses.")] = False
    fetch_timeout_seconds: Annotated[float, doc(
        "Longest the decode stage waits for an audio URL's origin to connect, to answer, "
        "and for each further piece of the download; a slower origin fails the attempt "
        "(retried like other failed attempts).", gt=0, le=600)] = 30.0
    webhook_secret: Annotated[str | None, doc(
        "Key the webhook events are signed with (Standard Webhooks), as `whsec_` and the "
        "key in base64; receivers verify with the same value. Unset: callback_url is "
        "refused.")] = None
    webhook_max_attempts: Annotated[int, doc(
        "Attempts at delivering one event before it is given up on (its state: failed). "
        "With the default backoff, the last is about a day after the first.",
        ge=1, le=100)] = 15
    webhook_backoff_seconds: Annotated[float, doc(
        "Wait before the second attempt; each further wait doubles, up to "
        "WEBHOOK_BACKOFF_MAX_SECONDS, and every wait varies by up to a quarter (jitter).",
        gt=0)] = 30.0
    webhook_backoff_max_seconds: Annotated[float, doc(
        "Longest wait between two attempts.", gt=0)] = 4 * 3600.0
    webhook_timeout_seconds: Annotated[float, doc(
        "Longest an attempt may take, connecting and answering included.", gt=0,
        le=300)] = 10.0
    webhook_concurrency: Annotated[int, doc(
        "Events one notify worker delivers at once, so that a slow receiver does not hold "
        "up the others.", ge=1, le=256)] = 16
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
        if self.admin_key_set and not self.api_key_set:
            raise ValueError("ADMIN_API_KEYS needs API_KEYS: without API_KEYS every endpoint "
                             "is open to anyone")
        if self.webhook_secret is not None:
            try:
                key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"),
                                       validate=True)
            except binascii.Error:
                key = b""
            if not self.webhook_secret.startswith("whsec_") or len(key) < 16:
                raise ValueError("WEBHOOK_SECRET must be whsec_ and at least 16 bytes in "
                                 "base64")

    @property
    def diarization_identity(self) -> str:
        """Which diarization pipeline these settings select: the hub model's name, or
        "offline". It names the space of the speaker embeddings it computes, too."""
        return self.diarization_model if self.hf_token else "offline"

    @property
    def webhook_key(self) -> bytes | None:
        """WEBHOOK_SECRET's key, the bytes the events are signed with."""
        if self.webhook_secret is None:
            return None
        return base64.b64decode(self.webhook_secret.removeprefix("whsec_"))

    @property
    def result_base_url(self) -> str:
        """Where clients reach the gateway: PUBLIC_URL, else HOST and PORT."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def models_path(self) -> Path | None:
        return Path(self.models_dir) if self.models_dir else None

    @property
    def api_key_set(self) -> frozenset[str]:
        return _key_set(self.api_keys)

    @property
    def admin_key_set(self) -> frozenset[str]:
        return _key_set(self.admin_api_keys)


def _key_set(keys: str) -> frozenset[str]:
    return frozenset(k.strip() for k in keys.split(",") if k.strip())
