"""``python -m benchmark [PART ...] [--json FILE] [--markdown FILE] [--full]``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from benchmark import (
    diarization_part,
    e2e,
    gateway_part,
    machine,
    queue_part,
    report,
    stages_part,
)
from benchmark.procs import Processes, sigterm_as_interrupt, valkey

PARTS = ("overhead", "throughput", "stages", "diarization", "gateway", "queue", "accuracy")
#: Parts measured together on one running service (see benchmark/e2e.py).
E2E_PARTS = ("overhead", "throughput", "accuracy")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    parser.add_argument("parts", nargs="*", choices=[[], *PARTS], metavar="PART",
                        help=f"parts to run (default: all): {', '.join(PARTS)}")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--markdown", type=Path,
                        help="write a table of every figure for docs/performance.md to this file")
    parser.add_argument("--full", action="store_true",
                        help="the long sizes: 5 min overhead file, 20 throughput jobs (also "
                        "with CPU_THREADS=1 on diarize), 30 min stages and diarization "
                        "runs, 5 rounds of the diarization settings, the diarization "
                        "evaluation set")
    parser.add_argument("--whisper-model", default=os.environ.get("WHISPER_MODEL", "base"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (jobs, logs) for inspection")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [p for p in PARTS if p in (args.parts or PARTS)]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="stt-benchmark-"))
    (work / "logs").mkdir()
    print(f"work folder: {work} (child logs in logs/)", flush=True)
    procs = Processes(work / "logs")
    results: list[report.PartResult] = []

    def timed(step: Callable[[], list[report.PartResult]]) -> None:
        began = time.monotonic()
        done = step()
        for part in done:
            part.seconds = time.monotonic() - began
            print(report.table(part), flush=True)
        results.extend(done)

    try:
        with sigterm_as_interrupt(), valkey(work / "valkey") as redis_url:
            e2e_parts = [p for p in wanted if p in E2E_PARTS]
            if e2e_parts:
                timed(lambda: e2e.run(e2e_parts, work, procs, redis_url, args.whisper_model,
                                      args.full))
            if "stages" in wanted:
                timed(lambda: [stages_part.run(work, procs, args.whisper_model, args.full)])
            if "diarization" in wanted:
                timed(lambda: [diarization_part.run(work, procs, args.full)])
            if "gateway" in wanted:
                timed(lambda: [gateway_part.run(work, procs, redis_url, work / "valkey")])
            if "queue" in wanted:
                timed(lambda: [queue_part.run(work, procs, redis_url)])
    except KeyboardInterrupt:
        print("interrupted: stopping every process this run started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    results.sort(key=lambda part: PARTS.index(part.part))
    command = "python -m benchmark" + "".join(
        " " + shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    final = report.Report(machine=machine.describe(),
                          date=datetime.now(UTC).isoformat(timespec="seconds"),
                          command=command, full=args.full, parts=results,
                          wall_seconds=time.monotonic() - started)
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(final)))
    if args.markdown:
        args.markdown.write_text(report.markdown(final))
    print(f"done in {final.wall_seconds / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
