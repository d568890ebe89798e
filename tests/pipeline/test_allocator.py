"""pipeline.allocator on this machine's real glibc."""

from __future__ import annotations

import ctypes

import pytest

from benchmark.memory import rss_mb
from pipeline import allocator

pytestmark = pytest.mark.skipif(allocator._LIBC is None, reason="needs glibc")

_BLOCK = 64 * 1024  # below glibc's mmap threshold: from the heap, not a mapping of its own


def test_give_back_returns_freed_memory_that_glibc_kept() -> None:
    # A handle of the test's own, so that setting signatures leaves the module's alone.
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # Every other block freed, as a job's buffers between what it keeps: glibc keeps the
    # holes, since the blocks still in use pin them.
    blocks = []
    for _ in range(1000):
        block = libc.malloc(_BLOCK)
        ctypes.memset(block, 1, _BLOCK)
        blocks.append(block)
    for block in blocks[::2]:
        libc.free(block)
    kept = rss_mb()
    allocator.give_back()
    returned = kept - rss_mb()
    for block in blocks[1::2]:
        libc.free(block)
    # Each hole loses at most a page at either end to the allocator's bookkeeping.
    assert returned > 0.8 * 500 * _BLOCK / 2**20
