"""pipeline.allocator on this machine's real glibc."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pytest

from pipeline import allocator
from tests.support.memory import rss_mb

pytestmark = pytest.mark.skipif(allocator._LIBC is None, reason="needs glibc")

_BLOCK = 64 * 1024  # below glibc's mmap threshold: from the heap, not a mapping of its own
_BLOCKS = 1000
# Each hole loses at most a page at either end to the allocator's bookkeeping.
_MOST_OF_THE_HOLES_MB = 0.8 * _BLOCKS / 2 * _BLOCK / 2**20


@pytest.fixture
def holes() -> Iterator[None]:
    """Every other heap block freed, as a job's buffers between what it keeps: glibc keeps
    the holes, since the blocks still in use pin them."""
    # A handle of the test's own, so that setting signatures leaves the module's alone.
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for _ in range(_BLOCKS):
        block = libc.malloc(_BLOCK)
        ctypes.memset(block, 1, _BLOCK)
        blocks.append(block)
    for block in blocks[::2]:
        libc.free(block)
    yield
    for block in blocks[1::2]:
        libc.free(block)


def test_give_back_returns_freed_memory_that_glibc_kept(holes: None) -> None:
    kept = rss_mb()
    allocator.give_back()
    assert kept - rss_mb() > _MOST_OF_THE_HOLES_MB


def test_give_back_every_waits_for_its_interval(holes: None) -> None:
    give_back = allocator.GiveBackEvery(60.0)
    kept = rss_mb()
    give_back()  # just made: too soon
    assert kept - rss_mb() < _MOST_OF_THE_HOLES_MB
    give_back._last -= give_back.seconds
    give_back()
    assert kept - rss_mb() > _MOST_OF_THE_HOLES_MB
