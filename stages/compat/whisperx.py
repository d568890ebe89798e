"""What the transcribe stage relies on in whisperx beyond its public API.

whisperx is imported here only inside functions: the declarations are read when a worker
starts, before any model library is loaded.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.compat import Patch
from stages.compat import bundled

DISTRIBUTION = "whisperx"
SUPPORTED = ">=3.8.6,<3.9"

PATCHES = (
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="whisperx.vads.Pyannote, subclassed (stages/compat/vad.py): its "
          "vad_pipeline, preprocess_audio and call"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="FasterWhisperPipeline's tokenizer and preset_language, to forget a "
          "detected language between jobs"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="the print in whisperx.asr.load_model, silenced for its 'vad_method is "
          "ignored' line"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="the VAD model file the wheel ships, whisperx/assets/pytorch_model.bin"),
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="FasterWhisperPipeline.options, replaced per job for its initial_prompt "
          "and hotwords"),
)

#: whisperx's VAD model (an old pyannote segmentation model), as whisperx 3.8.6 ships it.
VAD_MODEL = bundled.Expected(
    size=17_719_103,
    sha256="0b5b3216d60a2d32fc086b47ea8c67589aaeb26b7e07fcbe620d6d0b83e209ea")
_VAD_MODEL_PATH = ("assets", "pytorch_model.bin")
# load_model prints this whenever it is handed a VAD model, as the stage always does.
_IGNORED_VAD_METHOD = "Use manually assigned vad_model. vad_method is ignored."


def vad_checkpoint() -> Path:
    """The VAD model file inside the whisperx wheel, verified."""
    requirement = f"{DISTRIBUTION}{SUPPORTED}"
    folder = bundled.package_dir("whisperx", requirement)
    return bundled.verified(folder.joinpath(*_VAD_MODEL_PATH), VAD_MODEL, requirement)


def _print(*args: Any, **kwargs: Any) -> None:
    if args != (_IGNORED_VAD_METHOD,):
        builtins.print(*args, **kwargs)


def load_model(source: str, **kwargs: Any) -> Any:
    """``whisperx.load_model(source, **kwargs)``, without the line it prints when handed a
    VAD model (its module's ``print`` is shadowed; nothing else it prints is lost)."""
    from whisperx import asr

    setattr(asr, "print", _print)  # noqa: B010 - a module global, not an attribute
    return asr.load_model(source, **kwargs)


def forget_detected_language(pipeline: Any) -> None:
    """Make a whisperx pipeline loaded without a language detect it again on its next
    transcription: it keeps the tokenizer of the language it detected until a transcription
    ends, and a later one reuses it instead of detecting."""
    if pipeline.preset_language is None:
        pipeline.tokenizer = None


@contextlib.contextmanager
def prompted(pipeline: Any, prompt: str | None, hotwords: str | None) -> Iterator[None]:
    """A job's initial prompt and hotwords on a whisperx pipeline while the block runs (hold
    its lock): whisperx 3.8 takes them only when loading (asr_options), and jobs share the
    pipeline."""
    defaults = pipeline.options
    pipeline.options = dataclasses.replace(defaults, initial_prompt=prompt or None,
                                           hotwords=hotwords or None)
    try:
        yield
    finally:
        pipeline.options = defaults
