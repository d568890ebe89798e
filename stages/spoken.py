"""Checks of Whisper's text against the audio it came from.

Whisper writes text for any sound: a 0.1 s tone became "you", and silence at the end of a
recording often becomes "Thank you for watching". whisperx's own speech detection pads and
merges its regions for batching, so a second opinion decides what counts as speech:
faster-whisper's Silero voice activity detector (its ONNX model ships inside the
faster-whisper wheel: offline, about 3 ms per second of audio on a CPU core). A segment
that overlaps no speech it found is dropped, and the result says so.

An English-only model given other speech writes a made-up English transcript; the
language is then checked with a multilingual model and the result warns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stages import audio, models
from stages.artifacts import SAMPLE_RATE
from stages.table import Context

# The detector keeps state across its 32 ms windows; it reads the audio in pieces this long
# so that only one piece at a time is held as float32 (a cut costs at most one window).
_PIECE_SECONDS = 600
# Silero's probability above which a window is speech (faster-whisper's default, which it
# uses to skip silence before transcribing).
_THRESHOLD = 0.5
# How far outside a detected span a segment may lie and still be the words said in it:
# Whisper's segment times are those of its 30 s chunk's timestamp tokens, often a few
# hundred milliseconds off.
_SLACK_SECONDS = 0.5
# The multilingual model asked which language an English-only model's job was in, and how
# sure it must be (faster-whisper's own threshold for "detected") before the result says so.
_LANGUAGE_MODEL = "base"
_DETECTED_PROBABILITY = 0.5
# Whisper's window: the model reads a 30 s log-mel spectrogram, shorter audio padded with
# silence (unpadded, a 4 s clip's language came out wrong).
_WINDOW_SAMPLES = 30 * SAMPLE_RATE


def speech_spans(samples: audio.Pcm16Samples) -> list[tuple[float, float]]:
    """Where the detector hears speech, in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=_THRESHOLD, min_silence_duration_ms=500, speech_pad_ms=200)
    piece = _PIECE_SECONDS * SAMPLE_RATE
    spans: list[tuple[float, float]] = []
    for offset in range(0, len(samples), piece):
        chunk = samples[offset:offset + piece]
        spans += [((offset + s["start"]) / SAMPLE_RATE, (offset + s["end"]) / SAMPLE_RATE)
                  for s in get_speech_timestamps(chunk, options)]
    return spans


def keep_spoken(segments: list[dict[str, Any]],
                spans: list[tuple[float, float]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The segments that overlap speech, and the warning about any others."""
    def spoken(segment: dict[str, Any]) -> bool:
        start, end = float(segment["start"]), float(segment["end"])
        return any(a - _SLACK_SECONDS < end and start < b + _SLACK_SECONDS for a, b in spans)

    kept = [s for s in segments if spoken(s)]
    dropped = len(segments) - len(kept)
    if dropped and not kept:
        return [], ["no speech was detected in the audio: the text Whisper wrote for it was "
                    "left out (it writes text for noise and silence)"]
    if dropped:
        return kept, [f"{dropped} segment{'s' if dropped > 1 else ''} of text where no speech "
                      f"was detected {'were' if dropped > 1 else 'was'} left out (Whisper "
                      "writes text for noise and silence)"]
    return kept, []


def language_warning(ctx: Context, samples: audio.Pcm16Samples, model: str,
                     spans: list[tuple[float, float]]) -> list[str]:
    """The warning when an English-only ``model`` was given speech in another language
    (the job named none: a named one is checked against the model at submission)."""
    if not spans or ctx.job.options.language is not None:
        return []
    start = int(spans[0][0] * SAMPLE_RATE)
    chunk = samples[start:start + _WINDOW_SAMPLES]
    chunk = np.pad(chunk, (0, _WINDOW_SAMPLES - len(chunk)))
    checker = models.whisper(_LANGUAGE_MODEL, ctx.settings)
    with checker.lock:
        language, probability, _ = checker.model.model.detect_language(audio=chunk)
    ctx.log.info("language check of English-only %s: %s (%.2f)", model, language, probability)
    if language == "en" or probability <= _DETECTED_PROBABILITY:
        return []
    return [f"the model {model} understands English only, but the speech sounds like "
            f"language {language} ({probability:.0%} sure): "
            f"its text is not a transcript; use a multilingual model (e.g. "
            f"model={_LANGUAGE_MODEL}), which also detects the language"]
