"""The core's settings, and how any settings object is read from the environment.

Each field is read from the environment variable of the same name in upper case
(``jobs_dir`` <- ``JOBS_DIR``). The field's description is the documentation: the README's
configuration table is generated from it and a test keeps the two in step.

An application extends :class:`Settings` with the sections its stages and front ends need,
into the one settings object its stage table names (``StageTable.settings``): every
process reads that one object, and ``python -m pipeline.settings`` documents it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_type_hints

import msgspec

from pipeline.errors import ConfigError


def doc(text: str, **constraints: Any) -> msgspec.Meta:
    """A setting's description (the documentation of its variable) and its constraints."""
    meta: msgspec.Meta = msgspec.Meta(description=text, **constraints)
    return meta


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The settings of the job store and the stream runtime."""

    # -- storage -----------------------------------------------------------------------
    redis_url: Annotated[str | None, doc(
        "Redis connection URL. Unset: an embedded Valkey server is started under JOBS_DIR "
        "(one per JOBS_DIR, shared by every process on the machine).")] = None
    jobs_dir: Annotated[str, doc(
        "Directory for uploaded audio, stage artifacts and results (shared by all workers).",
        min_length=1)] = "./jobs"
    job_ttl_seconds: Annotated[int, doc(
        "How long a job, its files and its result are kept after creation, and a dead "
        "letter after it was given up on.", ge=60)] = 86400
    key_prefix: Annotated[str, doc(
        "Prefix of every Redis key and stream this service uses.",
        pattern=r"^[A-Za-z0-9_.-]+$")] = "stt"
    max_queued_jobs: Annotated[int, doc(
        "Most jobs that may wait for the first stage; while that many wait, POST /jobs "
        "answers 503.",
        ge=1)] = 1000

    # -- stream runtime ----------------------------------------------------------------
    claim_idle_seconds: Annotated[float, doc(
        "A pending entry idle this long belongs to a dead consumer and is reclaimed. "
        "Running jobs heartbeat at a quarter of it, so it need not exceed the longest job.",
        ge=1)] = 60.0
    max_deliveries: Annotated[int, doc(
        "An entry delivered more often than this goes to the dead-letter stream and its "
        "job fails.", ge=1)] = 3
    block_seconds: Annotated[float, doc(
        "How long one blocking stream read waits for new work.", gt=0, le=60)] = 5.0
    stream_retention_seconds: Annotated[int, doc(
        "Acknowledged stream entries younger than this are kept for replay.",
        ge=0)] = 86400
    consumer_name: Annotated[str | None, doc(
        "Consumer name of a worker in its group. Unset: host name, process id and a "
        "random suffix. Set it to a stable name (e.g. the pod name) so that a restarted "
        "worker resumes its own pending entries at once.")] = None
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], doc(
        "Log level of every process.")] = "INFO"
    log_format: Annotated[Literal["text", "json"], doc(
        "How every process writes its log lines: text (time, level, logger, the job and "
        "stage, message), or json: one object per line with time, level, logger, message "
        "and, where known, job_id and stage, for log collectors.")] = "text"

    @property
    def jobs_path(self) -> Path:
        return Path(self.jobs_dir).resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Self:
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


def describe(kind: type[Settings] | None = None) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting of ``kind`` (default: the one
    settings object of the application's stage table), in declaration order."""
    kind = kind or _application_settings()
    hints = get_type_hints(kind, include_extras=True)
    fields = kind.__struct_fields__
    # msgspec keeps defaults for the trailing fields only.
    defaults = dict(zip(fields[len(fields) - len(kind.__struct_defaults__):],
                        kind.__struct_defaults__, strict=True))
    rows = []
    for name in kind.__struct_fields__:
        meaning = next(
            (m.description for m in get_args(hints[name])[1:]
             if isinstance(m, msgspec.Meta) and m.description),
            "",
        )
        default = defaults.get(name)
        rows.append((name.upper(), "" if default in (None, "") else str(default), meaning))
    return rows


def markdown_table(kind: type[Settings] | None = None) -> str:
    """The README's configuration table (``python -m pipeline.settings`` prints it)."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, default, meaning in describe(kind):
        lines.append(f"| `{name}` | {f'`{default}`' if default else '—'} | {meaning} |")
    return "\n".join(lines)


def _application_settings() -> type[Settings]:
    # Imported here: the stage table's module imports this one.
    from pipeline.stage import load_table

    return load_table().settings


if __name__ == "__main__":
    print(markdown_table())
