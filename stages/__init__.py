"""The model stages of the speech service: decode, diarize, transcribe.

Importing any stage module imports this package first, so what must be settled before the
model libraries start is settled here: pyannote's telemetry is switched off (pyannote reads
its setting at import time), and the memory allocators are told to give memory back (see
:func:`_tune_allocators`).
"""

import ctypes
import os
import sys

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

# glibc's mallopt(M_ARENA_MAX, n)
_M_ARENA_MAX = -8


def _tune_allocators() -> None:
    """Have the allocators give freed memory back, so that a worker's resident memory
    grows less with the length of the audio it runs.

    Two allocator defaults keep freed memory for reuse instead of returning it, and hold
    on to more of it the longer the audio is: MKL's fast memory manager (CTranslate2 and
    PyTorch get their buffers from MKL), and glibc's one arena per allocating thread
    (PyTorch and CTranslate2 run thread pools). Measured on 5 min of audio with both
    off: diarize's peak grew 16 MB over a 30 s job instead of 100 MB, at the same speed.
    glibc still keeps some freed memory, more the longer the job (see the README's
    Performance section). An operator's own MKL_DISABLE_FAST_MM or MALLOC_ARENA_MAX wins.
    """
    os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...): its allocator has no per-thread arenas
        return
    libc.mallopt(_M_ARENA_MAX, 2)


_tune_allocators()
