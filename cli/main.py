"""Entry point of the ``stt`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import msgspec

from cli import client as api
from pipeline import compat
from pipeline.connection import connect
from pipeline.errors import ApiError, ConfigError
from pipeline.keys import LIVE, lane_name
from pipeline.replay import ReplayReport, replay
from pipeline.store import JobStore
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import STAGES, TABLE
from stages.types import FORMATS


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per field of JobOptions, with its description as help and its values (a
    Literal's, or true/false) as choices. The values go to the server as form fields, which
    it checks in full."""
    info = msgspec.inspect.type_info(JobOptions)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kind, help_text = field.type, None
        if isinstance(kind, msgspec.inspect.Metadata):
            help_text = (kind.extra_json_schema or {}).get("description")
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):  # X | None: the flag is optional
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        choices: tuple[str, ...] | None = None
        if isinstance(kind, msgspec.inspect.LiteralType):
            choices = tuple(map(str, kind.values))
        elif isinstance(kind, msgspec.inspect.BoolType):
            choices = ("true", "false")
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name,
                            choices=choices, help=help_text,
                            type=int if isinstance(kind, msgspec.inspect.IntType) else str)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stt", description="Transcription and speaker "
                                "diarization service: run it, or use it.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole service on this machine")
    up.add_argument("--workers", default="", metavar="STAGE=N,...",
                    help=f"workers per stage, e.g. {','.join(f'{s}=2' for s in STAGES)} "
                    "(default 1 each)")
    up.add_argument("--grace", type=float, default=120.0, metavar="SECONDS",
                    help="how long a worker may take to finish its job on shutdown")

    rp = sub.add_parser("replay", help="rerun the jobs that passed through a stage in a range "
                        "(e.g. after a model upgrade)")
    rp.add_argument("stage", choices=STAGES)
    rp.add_argument("--start", default="-", help="stream id or ISO 8601 time (default: the "
                    "oldest entry)")
    rp.add_argument("--end", default="+", help="stream id or ISO 8601 time (default: the "
                    "newest entry)")
    rp.add_argument("--lane", default=LIVE, type=lane_name, help="run the reruns on a lane of "
                    "their own, served by `stt-worker STAGE --lane NAME` workers")
    rp.add_argument("--dry-run", action="store_true", help="list the jobs, change nothing")

    url = os.environ.get("STT_URL", "http://127.0.0.1:8000")
    for name, help_text in (("submit", "upload a file and (with --wait) print its transcript"),
                            ("status", "show a job's status"),
                            ("result", "print a finished job's result")):
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--url", default=url, help="the service's address (env STT_URL)")
        c.add_argument("--api-key", default=os.environ.get("STT_API_KEY"),
                       help="API key, when the service requires one (env STT_API_KEY)")
        if name == "submit":
            c.add_argument("file", type=Path)
            c.add_argument("--wait", action="store_true", help="follow progress, then print "
                           "the result")
            add_option_flags(c)
        else:
            c.add_argument("job_id")
        if name != "status":
            c.add_argument("--format", default="txt", choices=FORMATS)
            c.add_argument("--output", "-o", type=Path, help="save to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "up":
        from cli.supervisor import parse_workers, up
        try:
            settings = Settings.from_env()
            workers = parse_workers(args.workers)
            compat.check_embedded_server(settings)
        except (ConfigError, ValueError) as exc:
            print(f"stt: {exc}", file=sys.stderr)
            return 2
        return up(settings, workers, args.grace)
    if args.command == "replay":
        return run_replay(args)
    client = api.Client(args.url, args.api_key)
    try:
        if args.command == "submit":
            options = {k: getattr(args, k) for k in JobOptions.__struct_fields__
                       if getattr(args, k)}
            return api.submit(client, args.file, options, args.wait, args.format, args.output)
        if args.command == "status":
            job = client.status(args.job_id)
            job.pop("result", None)
            print(msgspec.json.format(msgspec.json.encode(job)).decode())
            return 0
        return api.write_result(client, args.job_id, args.format, args.output)
    except ApiError as exc:
        print(f"stt: {exc.status}: {exc}", file=sys.stderr)
        return 1
    except (OSError, httpx.HTTPError) as exc:
        print(f"stt: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1


def run_replay(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"stt: {exc}", file=sys.stderr)
        return 2

    async def go() -> ReplayReport:
        redis = await connect(settings)
        try:
            return await replay(JobStore(redis, settings, TABLE), args.stage, args.start,
                                args.end, lane=args.lane, dry_run=args.dry_run)
        finally:
            await redis.aclose()

    report = asyncio.run(go())
    print(msgspec.json.format(msgspec.json.encode(report)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
