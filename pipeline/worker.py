"""Entry point of a stage worker: ``stt-worker STAGE`` starts one consumer of that stage.

Run N of them, on one machine or many, and they share the stage's work through its
consumer group.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Sequence

from pipeline.connection import connect
from pipeline.errors import ConfigError
from pipeline.keys import LIVE, lane_name
from pipeline.logs import setup_logging
from pipeline.runtime import Worker
from pipeline.settings import Settings
from pipeline.stage import Stage
from pipeline.store import JobStore
from pipeline.types import STAGES

#: The stage class each stage name runs, as import paths: imported only when used, so a
#: worker loads the models of its own stage and no other.
DEFAULT_STAGES: dict[str, str] = {
    "decode": "stages.decode:DecodeStage",
    "diarize": "stages.diarize:DiarizeStage",
    "transcribe": "stages.transcribe:TranscribeStage",
}


def load_stage(path: str) -> Stage:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise TypeError(f"{path} is not a Stage class")
    return cls()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stt-worker", description=__doc__)
    parser.add_argument("stage", choices=STAGES, help="the stage this worker consumes")
    parser.add_argument("--stage-class", help="module:Class to run instead of the default")
    parser.add_argument("--lane", default=LIVE, type=lane_name,
                        help="which streams to consume: the live ones (default) or a "
                        "replay's lane (see `stt replay --lane`)")
    parser.add_argument("--consumer", help="consumer name (default: CONSUMER_NAME, else "
                        "host-pid-random)")
    return parser.parse_args(argv)


async def serve(stage: Stage, settings: Settings, lane: str, consumer: str | None) -> None:
    redis = await connect(settings)
    try:
        worker = Worker(stage, JobStore(redis, settings), lane=lane, consumer=consumer)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        await worker.run()
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"stt-worker: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    stage = load_stage(args.stage_class or DEFAULT_STAGES[args.stage])
    if stage.name != args.stage:
        print(f"stt-worker: {args.stage_class} is the {stage.name} stage, not {args.stage}",
              file=sys.stderr)
        return 2
    asyncio.run(serve(stage, settings, args.lane, args.consumer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
