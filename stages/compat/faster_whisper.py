"""What the transcribe stage relies on in faster-whisper beyond its public API: the pieces of
``WhisperModel.transcribe`` that time words, run on a text whisperx already decoded.

faster-whisper is imported here only inside functions: the declarations are read when a
worker starts, before any model library is loaded.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from pipeline.compat import Patch

DISTRIBUTION = "faster-whisper"
SUPPORTED = ">=1.2.0,<1.3"

PATCHES = (
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="WhisperModel's feature_extractor, encode, find_alignment and hf_tokenizer, "
          "and faster_whisper.transcribe.merge_punctuations (word timings from the "
          "alignment heads for a text already decoded)"),
)

# faster-whisper's defaults for gluing punctuation to the neighbouring word.
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


def word_alignment(model: Any, chunk: npt.NDArray[Any], text: str, language: str,
                   task: str) -> list[dict[str, Any]]:
    """The words of ``text`` in ``chunk`` (up to 30 s of 16 kHz audio) with their times in
    seconds from its start, as ``WhisperModel.transcribe(word_timestamps=True)`` finds them:
    from the cross-attention alignment heads of ``model`` (a ``WhisperModel``) over the
    chunk's encoder output. Each word is faster-whisper's dict (word, start, end,
    probability, tokens), punctuation merged as it merges it."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import merge_punctuations

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                          task=task, language=language)
    features = model.feature_extractor(chunk)[..., :-1]
    num_frames = min(features.shape[-1], model.feature_extractor.nb_max_frames)
    encoded = model.encode(pad_or_trim(features))
    tokens = tokenizer.encode(" " + text.strip())
    alignment: list[dict[str, Any]] = model.find_alignment(
        tokenizer, [tokens], encoded, num_frames)[0]
    merge_punctuations(alignment, _PREPEND, _APPEND)
    return alignment
