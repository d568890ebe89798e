"""Entry point of a stage worker: ``stt-worker STAGE`` starts one consumer of that stage.

Run N of them, on one machine or many, and they share the stage's work through its
consumer group. The stages, and the class each one runs, are the application's stage
table's (pipeline.stage.APPLICATION_TABLE). A worker of an observer runs as many consumers
as its spec's concurrency says, named after its own (``NAME.1``, ``NAME.2``, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pipeline import allocator, compat
from pipeline.connection import connect
from pipeline.errors import ConfigError, IncompatibleInstall
from pipeline.keys import LIVE, lane_name
from pipeline.logs import setup_logging
from pipeline.runtime import Consumer, ObserverWorker, Worker, default_consumer_name
from pipeline.settings import Settings
from pipeline.stage import Observer, Stage, StageTable, load_stage, load_table
from pipeline.store import JobStore


def parse_args(argv: Sequence[str] | None, table: StageTable[Any]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stt-worker", description=__doc__)
    parser.add_argument("stage", choices=table.workers, help="the stage this worker consumes")
    parser.add_argument("--stage-class", help="module:Class to run instead of the table's")
    parser.add_argument("--lane", default=LIVE, type=lane_name,
                        help="which streams to consume: the live ones (default) or a "
                        "replay's lane (see `stt replay --lane`)")
    parser.add_argument("--consumer", help="consumer name (default: CONSUMER_NAME, else "
                        "host-pid-random)")
    return parser.parse_args(argv)


async def serve(stage: Stage[Any, Any, Any] | Observer[Any], settings: Settings,
                table: StageTable[Any], lane: str, consumer: str | None) -> None:
    redis = await connect(settings)
    try:
        store = JobStore(redis, settings, table)
        workers: list[Consumer]
        observer = table.observer(stage.name)
        if isinstance(stage, Observer) and observer is not None:
            name = consumer or settings.consumer_name or default_consumer_name()
            workers = [ObserverWorker(stage, store, lane=lane, consumer=f"{name}.{i}")
                       for i in range(1, observer.concurrency(settings) + 1)]
        elif isinstance(stage, Stage):
            workers = [Worker(stage, store, lane=lane, consumer=consumer)]
        else:
            raise TypeError(f"{type(stage).__name__} is not the {stage.name} stage's kind")
        def stop() -> None:
            for worker in workers:
                worker.request_stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        await asyncio.gather(*(w.run() for w in workers))
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    table = load_table()
    args = parse_args(argv, table)
    try:
        settings = table.settings.from_env()
    except ConfigError as exc:
        print(f"stt-worker: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    # Before the stage's module, and so any library it computes with, is imported.
    allocator.tune()
    try:
        spec = table.observer(args.stage) or table.spec(args.stage)
        stage = load_stage(spec, args.stage_class)
    except TypeError as exc:
        print(f"stt-worker: {exc}", file=sys.stderr)
        return 2
    try:
        compat.check_embedded_server(settings)
        stage.check(settings)
        asyncio.run(serve(stage, settings, table, args.lane, args.consumer))
    except IncompatibleInstall as exc:
        # A library outside its patches' range (before anything started), or a damaged
        # package file the stage's setup found: no traceback, and no job ever attempted.
        print(f"stt-worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
