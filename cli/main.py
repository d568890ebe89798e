"""Entry point of the ``stt`` command.

Exit codes: 0 done, 1 the service refused or the job failed (or is unhealthy), 2 a usage
or local problem (a bad flag, a missing file, no server to talk to), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from cli import client as api
from pipeline import compat
from pipeline.connection import CONNECTION_ERRORS, connect
from pipeline.embedded import running_server, server_dir
from pipeline.errors import ApiError, ConfigError
from pipeline.keys import LIVE, lane_name
from pipeline.replay import ReplayReport, replay
from pipeline.store import JobStore
from stages.options import JobOptions
from stages.settings import Settings
from stages.table import STAGES, TABLE, WORKERS, JobStatus
from stages.types import FORMATS

DEFAULT_URL = "http://127.0.0.1:8000"
#: The API's default format (GET /jobs/{id}/result) is json; on a terminal, text reads better.
DEFAULT_FORMAT = "txt"


class Help(argparse.HelpFormatter):
    """Help that names every option's default (argparse's ArgumentDefaultsHelpFormatter
    would print "(default: None)" for the options that have none)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.option_strings and "%(default)" not in text
                and action.default not in (None, False, "", argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def _job_defaults() -> dict[str, str]:
    """What the service assumes for each job option a submission leaves out, as help text."""
    shown = {}
    for field in _option_fields():
        if field.default is True or field.default is False:
            flag = field.name.replace("_", "-")
            shown[field.name] = f"--{flag}" if field.default else f"--no-{flag}"
        elif field.default not in (None, msgspec.NODEFAULT):
            shown[field.name] = str(field.default).replace("%", "%%")
    return shown


class SubmitHelp(Help):
    """Help of `stt submit`: an option left out takes the service's default, named here."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action) or ""
        default = _job_defaults().get(action.dest)
        return f"{text} (default: {default})" if default else text


def _option_fields() -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(JobOptions)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per field of JobOptions, with its description as help and its values (a
    Literal's) as choices; a bool is a --flag/--no-flag pair. Flags left out are not sent:
    the server fills them in (and checks in full what is sent)."""
    for field in _option_fields():
        kind, help_text = field.type, None
        if isinstance(kind, msgspec.inspect.Metadata):
            help_text = (kind.extra_json_schema or {}).get("description")
            kind = kind.type
        if isinstance(kind, msgspec.inspect.UnionType):  # X | None: the flag is optional
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(kind, msgspec.inspect.BoolType):
            parser.add_argument(flag, dest=field.name, help=help_text,
                                action=argparse.BooleanOptionalAction)
            continue
        choices: tuple[str, ...] | None = None
        if isinstance(kind, msgspec.inspect.LiteralType):
            choices = tuple(map(str, kind.values))
        parser.add_argument(flag, dest=field.name, choices=choices, help=help_text,
                            type=int if isinstance(kind, msgspec.inspect.IntType) else str)


def chosen_options(args: argparse.Namespace) -> dict[str, Any]:
    """The job options given on the command line."""
    return {k: getattr(args, k) for k in JobOptions.__struct_fields__
            if getattr(args, k) is not None}


def _form(options: dict[str, Any]) -> dict[str, str]:
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in options.items()}


def _add_result_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("--format", default=DEFAULT_FORMAT, choices=FORMATS,
                   help="the result's format (the API's own default is json)")
    c.add_argument("--output", "-o", type=Path, help="save to this file instead of printing")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stt", formatter_class=Help,
                                description="Transcription and speaker diarization service: "
                                "run it (stt up), or use it.",
                                epilog="Exit codes: 0 done, 1 refused or failed, 2 usage or "
                                "local problem, 130 interrupted.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", formatter_class=Help,
                        help="run the whole service on this machine",
                        description="Run the whole service on this machine: the embedded "
                        "Valkey server (unless REDIS_URL is set), the gateway and workers "
                        "for every stage. Prints a line with the URL once every stage is "
                        "ready; Ctrl-C stops it (workers finish their current job first).")
    env = Settings.from_env() if _env_is_valid() else Settings()
    up.add_argument("--host", default=env.host,
                    help="address the gateway listens on (env HOST)")
    up.add_argument("--port", type=int, default=env.port,
                    help="port the gateway listens on (env PORT)")
    up.add_argument("--workers", default="", metavar="STAGE=N,...",
                    help=f"workers per stage, e.g. {','.join(f'{s}=2' for s in WORKERS)} "
                    "(default: 1 each)")
    up.add_argument("--grace", type=float, default=120.0, metavar="SECONDS",
                    help="how long a worker may take to finish its job on shutdown")

    rp = sub.add_parser("replay", formatter_class=Help,
                        help="rerun the jobs that passed through a stage in a range "
                        "(e.g. after a model upgrade)",
                        description="Rerun every job that passed through a stage's stream "
                        "in a range, once per job. Talks to Redis directly: REDIS_URL, or "
                        "the running embedded server of JOBS_DIR.")
    rp.add_argument("stage", choices=STAGES)
    rp.add_argument("--start", default="-", help="stream id or ISO 8601 time (-: the oldest "
                    "entry)")
    rp.add_argument("--end", default="+", help="stream id or ISO 8601 time (+: the newest "
                    "entry)")
    rp.add_argument("--lane", default=LIVE, type=lane_name, help="run the reruns on a lane of "
                    "their own, served by `stt-worker STAGE --lane NAME` workers")
    rp.add_argument("--dry-run", action="store_true", help="list the jobs, change nothing")

    url = os.environ.get("STT_URL") or DEFAULT_URL
    commands: list[tuple[str, str, type[Help]]] = [
        ("submit", "upload a file, or give a URL to fetch it from, and (with --wait) print "
                   "its transcript", SubmitHelp),
        ("status", "show a job's status: a bar per stage, times, error", Help),
        ("result", "print a finished job's result", Help),
        ("list", "list recent jobs, newest first", Help),
        ("cancel", "cancel a job wherever it is, and delete it with its files", Help),
        ("rerun", "recompute a finished job from a stage, with changed options", Help),
        ("health", "whether every stage has a worker, and the queues", Help),
        ("speakers", "enroll, list and delete voiceprints: the voices `submit --identify` "
                     "names", Help)]
    for name, help_text, formatter in commands:
        c = sub.add_parser(name, help=help_text, description=help_text[0].upper()
                           + help_text[1:] + ".", formatter_class=formatter)
        if name == "speakers":  # the flags go to its actions: they follow the action
            _add_speaker_commands(c, url)
            continue
        _add_client_flags(c, url)
        if name == "submit":
            c.add_argument("file", help="the audio (or video) file, or its http(s) URL, "
                           "which the service downloads")
            c.add_argument("--wait", action="store_true", help="follow progress, then print "
                           "the result")
            add_option_flags(c)
            _add_result_flags(c)
        elif name == "list":
            c.add_argument("--status", choices=[s.value for s in JobStatus],
                           help="only jobs in this status")
            c.add_argument("--limit", type=int, default=20, help="how many (at most 200)")
            c.add_argument("--cursor", help="the cursor a previous page printed")
            c.add_argument("--json", action="store_true", help="print the API's answer")
        elif name == "health":
            c.add_argument("--json", action="store_true", help="print the API's answer")
        else:
            c.add_argument("job_id", help="the id `stt submit` printed")
        if name == "status":
            c.add_argument("--wait", action="store_true", help="follow progress until the "
                           "job ends")
            c.add_argument("--json", action="store_true", help="print the whole job record "
                           "(without the result)")
        elif name == "result":
            _add_result_flags(c)
        elif name == "rerun":
            c.add_argument("--from", dest="from_stage", required=True, choices=STAGES,
                           help="the first stage to compute again")
            c.add_argument("--wait", action="store_true", help="follow progress, then print "
                           "the result")
            add_option_flags(c)
            _add_result_flags(c)
            c.epilog = "Options not given keep the job's values."
    return p


def _add_client_flags(c: argparse.ArgumentParser, url: str) -> None:
    c.add_argument("--url", default=url, help="the service's address (env STT_URL)")
    c.add_argument("--api-key", help="API key, when the service requires one (default: "
                   "env STT_API_KEY)")


def _add_speaker_commands(c: argparse.ArgumentParser, url: str) -> None:
    actions = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", formatter_class=Help, help="enroll a voice from a sample "
                             "of it (a few seconds to a minute of that one person speaking)")
    add.add_argument("name", help="the name jobs will show for this voice")
    add.add_argument("file", type=Path, help="the sample")
    listed = actions.add_parser("list", formatter_class=Help, help="list your voiceprints")
    listed.add_argument("--json", action="store_true", help="print the API's answer")
    remove = actions.add_parser("rm", formatter_class=Help,
                                help="delete a voiceprint and its embeddings")
    remove.add_argument("voiceprint_id", help="its id, as `stt speakers list` shows it")
    for action in (add, listed, remove):
        _add_client_flags(action, url)


def _env_is_valid() -> bool:
    try:
        Settings.from_env()
    except ConfigError:
        return False  # reported when a command reads the settings
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "up":
            return run_up(args)
        if args.command == "replay":
            return run_replay(args)
        return run_client(args)
    except KeyboardInterrupt:
        print("stt: interrupted", file=sys.stderr)
        return 130


def run_up(args: argparse.Namespace) -> int:
    from cli.supervisor import parse_workers, up
    try:
        settings = Settings.from_env(host=args.host, port=args.port)
        workers = parse_workers(args.workers)
        compat.check_embedded_server(settings)
    except (ConfigError, ValueError) as exc:
        print(f"stt: {exc}", file=sys.stderr)
        return 2
    # The gateway is a child process and reads its settings from the environment.
    os.environ.update(HOST=settings.host, PORT=str(settings.port))
    return up(settings, workers, args.grace)


def run_client(args: argparse.Namespace) -> int:
    client = api.Client(args.url, args.api_key or os.environ.get("STT_API_KEY"))
    try:
        return CLIENT_COMMANDS[args.command](client, args)
    except api.Interrupted as exc:
        print(f"\nstt: stopped following job {exc.job_id}; it keeps running on the server.\n"
              f"  follow it again: stt status {exc.job_id} --wait\n"
              f"  its result:      stt result {exc.job_id}\n"
              f"  stop it:         stt cancel {exc.job_id}", file=sys.stderr)
        return 130
    except ApiError as exc:
        print(f"stt: {exc.status}: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"stt: cannot reach the service at {args.url} ({exc}); is it running "
              "(stt up)? --url or STT_URL gives its address", file=sys.stderr)
        return 2


def _submit(client: api.Client, args: argparse.Namespace) -> int:
    if args.file.startswith(("http://", "https://")):
        job_id = client.submit_url(args.file, _form(chosen_options(args)))
    else:
        path = Path(args.file)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            print(f"stt: {path} {what}; give the audio file to upload, or its http(s) URL",
                  file=sys.stderr)
            return 2
        try:
            job_id = client.submit(path, _form(chosen_options(args)))
        except PermissionError as exc:
            print(f"stt: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
    api.err.print(f"job {job_id}")
    return api.finish(client, job_id, args.wait, args.format, args.output)


def _status(client: api.Client, args: argparse.Namespace) -> int:
    job = api.follow(client, args.job_id) if args.wait else client.status(args.job_id)
    if args.json:
        job.pop("result", None)
        print(msgspec.json.format(msgspec.json.encode(job)).decode())
    else:
        api.out.print(api.summary(job))
    # Followed to its end, the job's outcome is the command's, as with submit --wait.
    return 1 if args.wait and job["status"] != "completed" else 0


def _result(client: api.Client, args: argparse.Namespace) -> int:
    return api.write_result(client, args.job_id, args.format, args.output)


def _list(client: api.Client, args: argparse.Namespace) -> int:
    page = client.list(args.status, args.limit, args.cursor)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(page)).decode())
        return 0
    if page["jobs"]:
        api.out.print(api.job_table(page["jobs"]))
    else:
        api.err.print("no jobs" + (f" {args.status}" if args.status else ""))
    if page.get("next_cursor"):
        api.err.print(f"more: stt list --cursor {page['next_cursor']}")
    return 0


def _cancel(client: api.Client, args: argparse.Namespace) -> int:
    client.cancel(args.job_id)
    api.err.print(f"cancelled job {args.job_id} and deleted it with its files")
    return 0


def _rerun(client: api.Client, args: argparse.Namespace) -> int:
    accepted = client.rerun(args.job_id, args.from_stage, chosen_options(args))
    api.err.print(f"job {args.job_id} run {accepted['run']} queued from {args.from_stage}")
    return api.finish(client, args.job_id, args.wait, args.format, args.output)


def _health(client: api.Client, args: argparse.Namespace) -> int:
    healthy, report = client.health()
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(report)).decode())
    else:
        api.out.print(api.health_table(report))
    return 0 if healthy else 1


def _speakers(client: api.Client, args: argparse.Namespace) -> int:
    if args.action == "add":
        if not args.file.is_file():
            print(f"stt: {args.file} is not a file; give a sample of the voice to enroll",
                  file=sys.stderr)
            return 2
        created = client.enroll(args.name, args.file)
        api.err.print(f"enrolled {created['name']} as {created['id']}")
        print(created["id"])
    elif args.action == "list":
        voiceprints = client.voiceprints()
        if args.json:
            print(msgspec.json.format(msgspec.json.encode(voiceprints)).decode())
        elif voiceprints:
            api.out.print(api.voiceprint_table(voiceprints))
        else:
            api.err.print("no voiceprints: enroll one with stt speakers add NAME FILE")
    else:
        client.forget(args.voiceprint_id)
        api.err.print(f"deleted voiceprint {args.voiceprint_id}")
    return 0


CLIENT_COMMANDS: dict[str, Callable[[api.Client, argparse.Namespace], int]] = {
    "submit": _submit, "status": _status, "result": _result, "list": _list,
    "cancel": _cancel, "rerun": _rerun, "health": _health, "speakers": _speakers}


def replay_settings(settings: Settings) -> tuple[Settings, str]:
    """The settings naming the server to replay on, and how to name it to the user: the
    REDIS_URL, or the embedded server already running for JOBS_DIR. Never a new embedded
    server: it would be empty, and the replay would find nothing."""
    if settings.redis_url is not None:
        return settings, f"REDIS_URL {_without_password(settings.redis_url)}"
    folder = server_dir(settings.jobs_path)
    info = running_server(folder)
    if info is None:
        raise ConfigError(
            f"REDIS_URL is unset and no embedded server is running for JOBS_DIR "
            f"{settings.jobs_path}: start the service there (stt up), run stt replay "
            "from the folder the service uses, or set JOBS_DIR or REDIS_URL")
    return (msgspec.structs.replace(settings, redis_url=info.url),
            f"the embedded server of JOBS_DIR {settings.jobs_path} ({info.url})")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def run_replay(args: argparse.Namespace) -> int:
    try:
        settings, server = replay_settings(Settings.from_env())
    except ConfigError as exc:
        print(f"stt: {exc}", file=sys.stderr)
        return 2
    print(f"stt: replaying on {server}", file=sys.stderr)

    async def go() -> ReplayReport:
        redis = await connect(settings)
        try:
            return await replay(JobStore(redis, settings, TABLE), args.stage, args.start,
                                args.end, lane=args.lane, dry_run=args.dry_run)
        finally:
            await redis.aclose()

    try:
        report = asyncio.run(go())
    except CONNECTION_ERRORS as exc:
        print(f"stt: cannot reach {server}: {exc}", file=sys.stderr)
        return 2
    print(msgspec.json.format(msgspec.json.encode(report)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
