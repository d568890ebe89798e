"""The Whisper models this server can run, and the languages each speaks.

One answer for the gateway, which refuses a job's `model` or `language` at submission,
and for the transcribe stage, which loads the model: both look names up here. Light (no
model library), so the gateway image carries it.

A job names a model, never a path: the bundled ones, a subfolder of MODELS_DIR by its
name, or a hub size. Only the operator's WHISPER_MODEL may be a path. Whether a name is
refused depends on the name and the folder of the operator's choosing alone, so `model`
tells a client nothing of the server's other files.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from stages.options import OptionError, shown
from stages.settings import Settings

#: The models that ship in Python packages, and whether each knows only English.
BUNDLED: dict[str, bool] = {"tiny.en": True, "base": False}
#: faster-whisper's hub sizes and the repositories they download from (its
#: ``faster_whisper.utils._MODELS``; tests/stages check that the two agree).
HUB_SIZES: dict[str, str] = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
#: The languages a multilingual Whisper model speaks (faster_whisper.tokenizer's list).
LANGUAGES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
    "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
    "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)
#: How long the answer to "can the hub be reached?" is reused before asking again.
HUB_CHECK_SECONDS = 300.0
_HUB_CONNECT_SECONDS = 3.0
# Multilingual Whisper vocabularies have 51865 tokens or more (CTranslate2's own test).
_MULTILINGUAL_VOCABULARY = 51865
# A name under MODELS_DIR: one path component, never "." or "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

Kind = Literal["bundled", "local", "hub"]


@dataclass(frozen=True)
class Model:
    """A model this server can run."""

    name: str
    kind: Kind
    path: Path | None = None  # the folder of a local model
    english_only: bool = False

    @property
    def languages(self) -> tuple[str, ...]:
        return ("en",) if self.english_only else LANGUAGES


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def local_models(settings: Settings) -> dict[str, Path]:
    """The model folders under MODELS_DIR, by name."""
    root = settings.models_path
    if root is None or not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if _NAME.fullmatch(p.name) and (p / "model.bin").is_file()}


def _local(name: str, settings: Settings) -> Path | None:
    root = settings.models_path
    if root is None or not _NAME.fullmatch(name):
        return None
    folder = root / name
    return folder if (folder / "model.bin").is_file() else None


def _english_only(folder: Path) -> bool:
    """Whether a CTranslate2 Whisper model knows only English, by its vocabulary's size
    (False when that cannot be read: the stage then finds out)."""
    for vocabulary in (folder / "vocabulary.txt", folder / "vocabulary.json"):
        try:
            stat = vocabulary.stat()
        except OSError:
            continue
        try:
            size = _vocabulary_size(vocabulary, stat.st_mtime_ns, stat.st_size)
        except (OSError, ValueError):
            return False
        return size < _MULTILINGUAL_VOCABULARY
    return False


@lru_cache(maxsize=64)
def _vocabulary_size(path: Path, mtime_ns: int, size: int) -> int:
    # The file's time and size are part of the key: a replaced model is read again.
    text = path.read_text(errors="replace")
    if path.suffix == ".json":
        tokens = json.loads(text)
        return len(tokens) if isinstance(tokens, list) else 0
    return len(text.splitlines())


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "huggingface" / "hub"


def hub_cached(size: str) -> bool:
    """Whether a hub size was downloaded into this machine's Hugging Face cache."""
    folder = _hub_cache() / ("models--" + HUB_SIZES[size].replace("/", "--")) / "snapshots"
    return any(folder.glob("*/model.bin"))


_hub_lock = threading.Lock()
_hub_answer: tuple[float, bool] | None = None  # (when asked, reachable)


def hub_reachable() -> bool:
    """Whether the Hugging Face hub (HF_ENDPOINT) takes a connection: False offline
    (HF_HUB_OFFLINE); otherwise asked at most once per HUB_CHECK_SECONDS, never per job.
    Blocks for up to a few seconds when it asks."""
    global _hub_answer
    if offline():
        return False
    with _hub_lock:
        if _hub_answer is not None and time.monotonic() - _hub_answer[0] < HUB_CHECK_SECONDS:
            return _hub_answer[1]
        endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        try:
            socket.create_connection((endpoint.hostname or "", port),
                                     timeout=_HUB_CONNECT_SECONDS).close()
            reachable = True
        except OSError:
            reachable = False
        _hub_answer = (time.monotonic(), reachable)
        return reachable


def _is_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith((".", "~"))


def find(name: str, settings: Settings, *, hub: bool = True) -> Model | None:
    """The model ``name`` stands for, or None when this server cannot run it. A hub size
    counts only with ``hub`` (the caller knows the hub can be reached) or when cached.

    Order: the operator's WHISPER_MODEL when it is a path, the bundled models, MODELS_DIR,
    the hub.
    """
    if name == settings.whisper_model and name not in BUNDLED and (
            Path(name) / "model.bin").is_file():
        return Model(name, "local", Path(name), _english_only(Path(name)))
    if name in BUNDLED:
        return Model(name, "bundled", english_only=BUNDLED[name])
    folder = _local(name, settings)
    if folder is not None:
        return Model(name, "local", folder, _english_only(folder))
    if name in HUB_SIZES and (hub or hub_cached(name)):
        return Model(name, "hub", english_only=name.endswith(".en"))
    return None


def choices(settings: Settings, *, hub: bool) -> str:
    """The models a job may name, in words."""
    local = list(local_models(settings))
    parts = [", ".join(BUNDLED) + " (bundled)"]
    if local:
        parts.append(", ".join(local) + " (MODELS_DIR)")
    sizes = [s for s in HUB_SIZES if s not in BUNDLED and s not in local
             and (hub or hub_cached(s))]
    if sizes:
        parts.append(", ".join(sizes) + " (" + ("from the Hugging Face hub" if hub
                                               else "cached from the hub") + ")")
    return "; ".join(parts)


def check(model: str | None, language: str | None, settings: Settings) -> Model | None:
    """Refuse (:class:`OptionError`) a job's ``model`` this server cannot run, and a
    ``language`` its model (``model``, else WHISPER_MODEL) does not speak. Returns the
    job's model when known. May ask whether the hub can be reached (see
    :func:`hub_reachable`): call it off the event loop."""
    chosen = None
    if model is not None and model != settings.whisper_model:
        chosen = find(model, settings, hub=False)
        if chosen is None:
            hub = hub_reachable()
            chosen = find(model, settings, hub=hub)
            if chosen is None:
                raise OptionError("model", _refusal(model, settings, hub))
    else:
        # The operator's choice, named or not: refused by nobody here (the gateway may not
        # see the workers' files); its languages are checked when it can be found.
        chosen = find(settings.whisper_model, settings, hub=True)
    if language is not None and chosen is not None and language not in chosen.languages:
        if chosen.english_only:
            raise OptionError("language", (
                f"language must be en for model {chosen.name}, which knows only English, "
                f"not {shown(language)}; choose a multilingual model (such as base) for "
                "other languages, or leave language unset"))
        raise OptionError("language", (
            f"language must be one of the languages of model {chosen.name}, not "
            f"{shown(language)}: {', '.join(chosen.languages)}"))
    return chosen


def _refusal(model: str, settings: Settings, hub: bool) -> str:
    why = ""
    if _is_path(model):
        why = " (local models are named by their folder under MODELS_DIR, never by a path)"
    elif model in HUB_SIZES and not hub:
        why = (" (it is downloaded from the Hugging Face hub, which this server cannot "
               "reach now)")
    return (f"model must be one of the models this server can run, not {shown(model)}{why}: "
            f"{choices(settings, hub=hub)}")
