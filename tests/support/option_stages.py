"""Stages for tests through HTTP: they ignore the uploaded audio and obey the job's `model`
option, the one option that takes any name.

``model=fail`` makes diarize fail permanently; ``model=wait`` makes decode wait for a file
named ``go`` in the job's folder (reporting progress meanwhile); ``model=slow`` makes every
stage take about SLOW_SECONDS; ``model=exit`` kills the decode worker's process;
``model=flaky`` makes transcribe fail as a lost connection does (a transient error) and
``model=bug`` as a plain ValueError does (a permanent one). Anything else runs through at
once. The gateway accepts only models the server can run: serve it with MODELS_DIR at
:func:`models_dir`, where each of these names is a model's folder.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import ClassVar

import msgspec

from pipeline.errors import PermanentError
from pipeline.stage import JobContext, Stage
from stages import artifacts, identify
from stages.speakers import named
from stages.types import Result, Segment, Word

RESULT = Result(
    language="en", duration=3.0, speakers=["SPEAKER_00", "SPEAKER_01"],
    segments=[
        Segment(start=0.0, end=1.25, text="Hello there.", speaker="SPEAKER_00",
                words=[Word(word="Hello", start=0.0, end=0.5, speaker="SPEAKER_00")]),
        Segment(start=1.5, end=2.75, text="Hi <you> & me", speaker="SPEAKER_01"),
        Segment(start=2.75, end=3.0, text="Bye", speaker=None),
    ],
)


#: The speakers' embeddings of every job: far apart, so each matches only its own voiceprint.
EMBEDDINGS = {"SPEAKER_00": [1.0, 0.0, 0.0, 0.0], "SPEAKER_01": [0.0, 0.6, 0.8, 0.0]}

SLOW_SECONDS = 0.3
#: The `model` names the stages obey.
MODES = ("fail", "wait", "slow", "exit", "flaky", "bug")


def models_dir(root: Path) -> Path:
    """A MODELS_DIR under ``root`` holding a model folder for each of :data:`MODES`."""
    folder = root / "models"
    for mode in MODES:
        (folder / mode).mkdir(parents=True, exist_ok=True)
        (folder / mode / "model.bin").touch()
    return folder


class _Stage(Stage):
    def process(self, ctx: JobContext) -> None:
        mode = ctx.job.options.model
        ctx.progress(0.5, f"{self.name} halfway")
        if mode == "wait" and self.name == "decode":
            while not (ctx.files.root / "go").exists():
                ctx.progress(0.6, "waiting for go")
                time.sleep(0.02)
        if mode == "slow":
            for step in range(3):
                time.sleep(SLOW_SECONDS / 3)
                ctx.progress(0.5 + step / 6, f"{self.name} step {step}")
        if mode == "exit" and self.name == "decode":
            os._exit(3)
        if mode == "fail" and self.name == "diarize":
            raise PermanentError("diarize: the input is not usable")
        if mode == "flaky" and self.name == "transcribe":
            raise ConnectionRefusedError("transcribe: the model server refused the connection")
        if mode == "bug" and self.name == "transcribe":
            raise ValueError("transcribe: 'xx' is not a language the model knows")
        self.output(ctx)

    def output(self, ctx: JobContext) -> None:
        pass


class Decode(_Stage):
    name: ClassVar[str] = "decode"

    def output(self, ctx: JobContext) -> None:
        # What a rerun from a later stage starts from.
        shutil.copy(ctx.files.input, ctx.files.audio)


class Diarize(_Stage):
    name: ClassVar[str] = "diarize"

    def output(self, ctx: JobContext) -> None:
        # Each speaker's embedding as the real stage keeps it, and identified by the real
        # code, so that voiceprints work end to end through HTTP without a model.
        # As many voices as num_speakers asks for (an enrollment sample's job asks for one).
        speakers = RESULT.speakers[:ctx.job.options.num_speakers]
        found = artifacts.Diarization(
            turns=[], exclusive_turns=[], speakers=speakers,
            embeddings={s: EMBEDDINGS[s] for s in speakers},
            model=ctx.settings.diarization_identity)
        artifacts.write_atomically(ctx.files.diarization, identify.identified(ctx, found))


class Transcribe(_Stage):
    name: ClassVar[str] = "transcribe"

    def output(self, ctx: JobContext) -> None:
        result = RESULT
        if ctx.job.options.diarize:
            diarization = artifacts.read(ctx.files.diarization, artifacts.Diarization)
            result = msgspec.structs.replace(RESULT, warnings=diarization.warnings)
            if diarization.names:
                result = named(result, diarization.names)
        path = ctx.files.result(ctx.job.run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgspec.json.encode(result))


GATEWAY_STAGES: dict[str, type[Stage]] = {
    "decode": Decode, "diarize": Diarize, "transcribe": Transcribe}
