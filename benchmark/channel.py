"""The reply channel of a child process: its real stdout, kept apart from everything else.

Libraries print to stdout (some from C); the parent reads replies from it line by line.
So the reply channel is a copy of file descriptor 1, and descriptor 1 itself is pointed at
stderr (the child's log).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO


def reply_channel() -> TextIO:
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel
