"""Small stages for testing the runtime without models.

Each job's input file is a :class:`Script` (JSON) saying what every stage should do, so a
test can make one job slow, another fail, another kill its worker. Every stage appends a
line to ``runs.log`` in the job's folder when it starts and when it ends its work, so tests
can count attempts. :func:`submit` puts such a job into a store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from pipeline.errors import PermanentError, TransientError
from pipeline.stage import JobContext, Stage
from pipeline.store import JobStore, new_job_id
from stages.options import JobOptions
from stages.types import Result, Segment


class Behaviour(msgspec.Struct, kw_only=True):
    seconds: float = 0.0  # how long the work takes
    steps: int = 2  # progress reports spread over it
    fail: str | None = None  # "permanent", "transient", "error", "bug" or "exit"
    wait_for: str | None = None  # path of a file to wait for before finishing


class Script(msgspec.Struct, kw_only=True):
    stages: dict[str, Behaviour] = {}
    text: str = "hello"


def write_script(path: Path, script: Script) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.encode(script))


def runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def stages_run(store: JobStore, job_id: str, run: int) -> list[str]:
    """The stages that started work on run ``run`` of the job, in order."""
    return [line.split()[1] for line in runs(store.files(job_id).root)
            if line.startswith(f"{run} ") and line.split()[2] == "start"]


async def submit(store: JobStore, script: Script | None = None, **options: object) -> str:
    """A new job in ``store`` whose upload is ``script``; returns its id."""
    job_id = new_job_id()
    write_script(store.files(job_id).input, script or Script())
    created_id, created = await store.create(job_id, JobOptions(**options))  # type: ignore[arg-type]
    assert created and created_id == job_id
    return job_id


async def finished(store: JobStore, job_id: str) -> bool:
    job = await store.get(job_id)
    return job is not None and job.status.terminal


class _ScriptedStage(Stage):
    def process(self, ctx: JobContext) -> None:
        script = msgspec.json.decode(ctx.files.input.read_bytes(), type=Script)
        b = script.stages.get(self.name, Behaviour())
        _note(ctx, self.name, "start")
        for step in range(b.steps):
            time.sleep(b.seconds / max(b.steps, 1))
            ctx.progress((step + 1) / (b.steps + 1), f"{self.name} step {step + 1}")
        if b.wait_for:
            while not Path(b.wait_for).exists():
                ctx.progress(0.9, f"{self.name} waiting")
                time.sleep(0.02)
        if b.fail == "permanent":
            raise PermanentError(f"{self.name}: the input is not usable")
        if b.fail == "transient":
            raise TransientError(f"{self.name}: device busy")
        if b.fail == "error":
            raise RuntimeError(f"{self.name}: unexpected bug")
        if b.fail == "bug":
            raise KeyError(f"{self.name}: no such option")
        if b.fail == "exit":
            os._exit(3)
        self.output(ctx, script)
        _note(ctx, self.name, "end")

    def output(self, ctx: JobContext, script: Script) -> None:
        (ctx.files.root / f"{self.name}.out").write_text(script.text)


def _note(ctx: JobContext, stage: str, what: str) -> None:
    with open(ctx.files.root / "runs.log", "a") as f:
        f.write(f"{ctx.job.run} {stage} {what} {os.getpid()}\n")


class Decode(_ScriptedStage):
    name: str = "decode"


class Diarize(_ScriptedStage):
    name: str = "diarize"


class Transcribe(_ScriptedStage):
    name: str = "transcribe"

    def output(self, ctx: JobContext, script: Script) -> None:
        result = Result(language="en", duration=1.0, speakers=["SPEAKER_00"],
                        segments=[Segment(start=0.0, end=1.0, text=script.text,
                                          speaker="SPEAKER_00")])
        path = ctx.files.result(ctx.job.run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgspec.json.encode(result))


TEST_STAGES: dict[str, type[Stage]] = {
    "decode": Decode, "diarize": Diarize, "transcribe": Transcribe}
