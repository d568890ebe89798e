"""How a worker process uses the C allocator (glibc's malloc, which PyTorch, CTranslate2
and MKL allocate from).

A model stage's working buffers are large and short-lived, and glibc keeps what they free
for reuse rather than returning it to the system. How much it keeps depends on where small
long-lived blocks happened to land between them: after 30 min of audio (before CAM++'s
front end ran in slices), the worker of the model stage that embeds speakers kept about
280 MB it no longer used, and would have kept it while idle.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

# glibc's mallopt(M_ARENA_MAX, n)
_M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...): no per-thread arenas, no malloc_trim
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def tune() -> None:
    """Have the allocators keep less freed memory; call before the model libraries load.

    MKL's fast memory manager keeps every buffer it ever handed out, and glibc gives each
    allocating thread (PyTorch and CTranslate2 run thread pools) an arena of its own that
    keeps freed memory. Measured with both off on the model stage that embeds speakers:
    its peak on 5 min of audio was 16 MB above that on 30 s instead of 100 MB, at the same
    speed. An operator's own MKL_DISABLE_FAST_MM or MALLOC_ARENA_MAX wins.
    """
    os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")
    if _LIBC is not None and "MALLOC_ARENA_MAX" not in os.environ:
        _LIBC.mallopt(_M_ARENA_MAX, 2)


def give_back() -> None:
    """Return the freed memory glibc keeps to the system (malloc_trim).

    The runtime calls it after every job, so that an idle worker holds its models and not
    the last job's buffers. It costs a few ms.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class GiveBackEvery:
    """Calls :func:`give_back` at most once every ``seconds``: for a loop over batches,
    between them. The default, once a second, keeps the cost (a few ms each time) under
    1 % of the run however short the batches are."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            give_back()
            self._last = now
