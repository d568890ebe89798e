"""All configuration, in one typed object read from the environment.

Each field is read from the environment variable of the same name in upper case
(``jobs_dir`` <- ``JOBS_DIR``). The field's description is the documentation: the README's
configuration table is generated from it and a test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

import msgspec

from pipeline.errors import ConfigError

def _doc(text: str, **constraints: Any) -> msgspec.Meta:
    meta: msgspec.Meta = msgspec.Meta(description=text, **constraints)
    return meta


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the gateway, the stage workers and the runtime."""

    # -- storage -----------------------------------------------------------------------
    redis_url: Annotated[str | None, _doc(
        "Redis connection URL. Unset: an embedded Valkey server is started under JOBS_DIR "
        "(one per JOBS_DIR, shared by every process on the machine).")] = None
    jobs_dir: Annotated[str, _doc(
        "Directory for uploaded audio, stage artifacts and results (shared by all workers).",
        min_length=1)] = "./jobs"
    job_ttl_seconds: Annotated[int, _doc(
        "How long a job, its files and its result are kept after creation, and a dead "
        "letter after it was given up on.", ge=60)] = 86400
    key_prefix: Annotated[str, _doc(
        "Prefix of every Redis key and stream this service uses.",
        pattern=r"^[A-Za-z0-9_.-]+$")] = "stt"

    # -- models ------------------------------------------------------------------------
    whisper_model: Annotated[str, _doc(
        "Whisper model: a size name (tiny, base, small, medium, large-v3, ...; downloaded "
        "when online), a local CTranslate2 directory, or the bundled offline models "
        "`tiny.en` and `base`.", min_length=1)] = "base"
    whisper_batch_size: Annotated[Annotated[int, msgspec.Meta(ge=1, le=64)] | None, _doc(
        "Whisper's 30 s chunks decoded together. Unset: 8 on a CUDA GPU; 2 on the CPU, "
        "where each chunk of a batch holds its own attention matrices in memory (72 MB "
        "with `base`) and bigger batches gain little speed.")] = None
    hf_token: Annotated[str | None, _doc(
        "Hugging Face token. Set: the hub's diarization pipeline (DIARIZATION_MODEL) and "
        "whisperx's wav2vec2 word aligners are used. Unset: the bundled offline "
        "diarization pipeline, and words timed by the Whisper model itself.")] = None
    diarization_model: Annotated[str, _doc(
        "Hub name of the pyannote pipeline used when HF_TOKEN is set.")] = (
        "pyannote/speaker-diarization-community-1")
    device: Annotated[Literal["auto", "cpu", "cuda", "mps"], _doc(
        "Device for the models: auto picks CUDA, then Apple MPS, then the CPU.")] = "auto"
    cpu_threads: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, _doc(
        "Threads a model stage computes with on the CPU (PyTorch's, and CTranslate2's in "
        "transcribe). Unset: one per core. Stages on one machine compete for its cores "
        "when jobs queue: there, 1 on the diarize worker, whose many small parallel steps "
        "wait for a thread the other stage has taken, nearly doubled the jobs finished "
        "per minute on 2 cores at the same speed per job (docs/performance.md).")] = None
    max_audio_seconds: Annotated[float, _doc(
        "Longest audio accepted, checked before and during decoding.", gt=0)] = 4 * 3600.0

    # -- gateway -----------------------------------------------------------------------
    host: Annotated[str, _doc("Address the gateway listens on.")] = "127.0.0.1"
    port: Annotated[int, _doc("Port the gateway listens on.", ge=0, le=65535)] = 8000
    max_upload_bytes: Annotated[int, _doc(
        "Largest upload accepted; larger ones get 413.", ge=1)] = 2 * 1024**3
    max_queued_jobs: Annotated[int, _doc(
        "Most jobs that may wait for the decode stage; while that many wait, POST /jobs "
        "answers 503.",
        ge=1)] = 1000
    sync_timeout_seconds: Annotated[float, _doc(
        "How long POST /transcribe waits for the result before answering 202.", gt=0)] = 60.0
    sync_max_seconds: Annotated[float, _doc(
        "Longest audio POST /transcribe accepts; longer audio goes through /jobs.",
        gt=0)] = 300.0
    api_keys: Annotated[str, _doc(
        "Comma-separated API keys. Set: every endpoint but /health needs "
        "`Authorization: Bearer <key>` and a job is visible only to the key that made "
        "it.")] = ""

    # -- stream runtime ----------------------------------------------------------------
    claim_idle_seconds: Annotated[float, _doc(
        "A pending entry idle this long belongs to a dead consumer and is reclaimed. "
        "Running jobs heartbeat at a quarter of it, so it need not exceed the longest job.",
        ge=1)] = 60.0
    max_deliveries: Annotated[int, _doc(
        "An entry delivered more often than this goes to the dead-letter stream and its "
        "job fails.", ge=1)] = 3
    block_seconds: Annotated[float, _doc(
        "How long one blocking stream read waits for new work.", gt=0, le=60)] = 5.0
    stream_retention_seconds: Annotated[int, _doc(
        "Acknowledged stream entries younger than this are kept for replay.",
        ge=0)] = 86400
    consumer_name: Annotated[str | None, _doc(
        "Consumer name of a worker in its group. Unset: host name, process id and a "
        "random suffix. Set it to a stable name (e.g. the pod name) so that a restarted "
        "worker resumes its own pending entries at once.")] = None
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], _doc(
        "Log level of every process.")] = "INFO"

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError("MAX_UPLOAD_BYTES must be at least 1024")

    @property
    def jobs_path(self) -> Path:
        return Path(self.jobs_dir).resolve()

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every field from ``environ`` (default ``os.environ``); ``overrides`` win.

        An empty variable counts as unset. A malformed value raises :class:`ConfigError`
        naming the variable and what it accepts.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(name.upper(), "")
            if value != "":
                raw[name] = value
        raw.update(overrides)
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(_explain(exc)) from None


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`": name the variable instead.
    message = str(exc)
    if " - at `$." in message:
        text, _, path = message.rpartition(" - at `$.")
        return f"invalid {path.rstrip('`').upper()}: {text}"
    return f"invalid settings: {message}"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in declaration order."""
    hints = get_type_hints(Settings, include_extras=True)
    defaults = dict(zip(Settings.__struct_fields__, Settings.__struct_defaults__))
    rows = []
    for name in Settings.__struct_fields__:
        meaning = next(
            (m.description for m in get_args(hints[name])[1:]
             if isinstance(m, msgspec.Meta) and m.description),
            "",
        )
        default = defaults.get(name)
        rows.append((name.upper(), "" if default in (None, "") else str(default), meaning))
    return rows


def markdown_table() -> str:
    """The README's configuration table (``python -m pipeline.settings`` prints it)."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, default, meaning in describe():
        lines.append(f"| `{name}` | {f'`{default}`' if default else '—'} | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
