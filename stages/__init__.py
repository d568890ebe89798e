"""The model stages of the speech service: decode, diarize, transcribe.

Importing any stage module imports this package first, so what must be settled before the
model libraries start is settled here: pyannote's telemetry is switched off (pyannote reads
its setting at import time), and the memory allocators are told to give memory back (see
:func:`pipeline.allocator.tune`).
"""

import os

from pipeline import allocator

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
allocator.tune()
