"""What the figures were measured on."""

from __future__ import annotations

import os
import platform

from benchmark.report import Machine


def describe() -> Machine:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return Machine(cpu=cpu, cores=os.cpu_count() or 1, memory_gb=round(memory, 1),
                   python=platform.python_version(), platform=platform.platform())
