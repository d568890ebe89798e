"""The core is a generic job pipeline: every stage fact comes from the stage table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from pipeline.files import INPUT
from pipeline.stage import Observer, ObserverSpec, StageSpec, StageTable, load_stage, load_table
from pipeline.store import _lua
from pipeline.types import TERMINAL, Options, Status
from stages.options import JobOptions
from stages.table import STAGES, TABLE, JobStatus

CORE = Path(__file__).resolve().parents[2] / "pipeline"
SOURCES = sorted([*CORE.glob("*.py"), *(CORE / "lua").glob("*.lua")])


def speech_words(text: str) -> list[str]:
    """The stage names (as words: not `.decode(` of a codec, nor `decode_responses`) and
    the model libraries' names in ``text``."""
    names = "|".join(map(re.escape, STAGES))
    found = re.findall(rf"(?<![.\w])(?:{names})\b(?!\()", text)
    return found + re.findall(r"whisper|pyannote", text, flags=re.IGNORECASE)


def test_the_check_finds_what_it_looks_for() -> None:
    assert speech_words('run("diarize") # whisperX, Pyannote') == ["diarize", "whisper",
                                                                  "Pyannote"]
    assert speech_words("msgspec.json.decode(raw) cjson.decode(ARGV[1]) "
                        "decode_responses=True DecodeError") == []


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_the_core_names_no_stage_and_no_model(source: Path) -> None:
    assert speech_words(source.read_text()) == []


def test_no_script_builds_a_key_name() -> None:
    # Every key a script touches is passed in KEYS: none is derived inside Lua.
    for script in (CORE / "lua").glob("*.lua"):
        text = script.read_text()
        assert not re.search(r"KEYS\[[^]]+\]\s*\.\.|string\.match\(KEYS", text), script


def test_the_scripts_know_the_terminal_statuses_from_python() -> None:
    constants = _lua("cancel").split("\n", 3)
    terminal = next(line for line in constants if line.startswith("local TERMINAL"))
    assert sorted(re.findall(r"(\w+) = true", terminal)) == sorted(TERMINAL)


def test_the_worker_loads_the_application_table() -> None:
    assert load_table() is TABLE
    assert TABLE.names == ("decode", "diarize", "transcribe")


def test_the_plan_and_what_a_rerun_needs_come_from_the_specs() -> None:
    assert TABLE.plan(JobOptions()) == STAGES
    assert TABLE.plan(JobOptions(diarize=False)) == ("decode", "transcribe")
    audio, diarization = TABLE.spec("diarize").reads[0], TABLE.spec("diarize").writes[0]
    assert TABLE.needs("decode", JobOptions()) == (INPUT,)
    assert TABLE.needs("transcribe", JobOptions()) == (audio, diarization)
    # Without diarization, transcribe does not read one.
    assert TABLE.needs("transcribe", JobOptions(diarize=False)) == (audio,)
    with pytest.raises(ValueError, match="skipped diarize"):
        TABLE.rerun_plan("transcribe", JobOptions(), before=JobOptions(diarize=False))
    with pytest.raises(ValueError, match="no stage 'align'"):
        TABLE.rerun_plan("align", JobOptions(), before=JobOptions())
    assert TABLE.progress(STAGES, "transcribe", 0.0) == 40.0


def test_the_status_enum_must_match_the_specs() -> None:
    class Partial(Status):
        QUEUED = "queued"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    decode = TABLE.spec("decode")
    with pytest.raises(ValueError, match="must be exactly"):
        StageTable(stages=(decode,), options=JobOptions, status=Partial)
    with pytest.raises(ValueError, match="unique"):
        StageTable(stages=(decode, decode), options=JobOptions, status=JobStatus)


def test_a_table_of_other_stages_needs_no_change_to_the_core() -> None:
    class Flags(Options):
        notify: bool = False

    class Status2(Status):
        QUEUED = "queued"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        FETCHING = "fetching"
        NOTIFYING = "notifying"

    table = StageTable(options=Flags, status=Status2, stages=(
        StageSpec(name="fetch", stage="m:Fetch", running=Status2.FETCHING, weight=1.0,
                  reads=(INPUT,), writes=("page",)),
        StageSpec(name="notify", stage="m:Notify", running=Status2.NOTIFYING, weight=1.0,
                  reads=("page",), runs=lambda flags: flags.notify)))
    assert table.plan(Flags()) == ("fetch",)
    assert table.plan(msgspec.convert({"notify": True}, Flags)) == ("fetch", "notify")


def test_observers_follow_jobs_without_being_part_of_their_plan() -> None:
    class Flags(Options):
        watch: bool = False
        every: bool = False

    class Status3(Status):
        QUEUED = "queued"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        FETCHING = "fetching"
        PARSING = "parsing"

    table = StageTable(options=Flags, status=Status3, stages=(
        StageSpec(name="fetch", stage="m:Fetch", running=Status3.FETCHING, weight=1.0),
        StageSpec(name="parse", stage="m:Parse", running=Status3.PARSING, weight=1.0)),
        observers=(ObserverSpec(name="audit", stage="m:Audit",
                                observes=lambda flags: flags.watch,
                                each_stage=lambda flags: flags.every),))
    assert table.plan(Flags(watch=True)) == table.names == ("fetch", "parse")
    assert table.workers == ("fetch", "parse", "audit")
    assert table.events(Flags(), "parse", "completed") == ()
    assert [(e.observer, e.event, e.status) for e in table.events(
        Flags(watch=True), "parse", "completed")] == [("audit", "completed", "completed")]
    assert table.events(Flags(watch=True), "fetch", "parsing") == ()
    every = Flags(watch=True, every=True)
    assert [(e.event, e.status) for e in table.events(every, "fetch", "parsing")] == [
        ("fetch", "parsing")]
    assert [(e.event, e.status) for e in table.events(every, "parse", "completed")] == [
        ("parse", "completed"), ("completed", "completed")]
    # A failed stage did not finish: only the job's end is an event.
    assert [e.event for e in table.events(every, "fetch", "failed")] == ["failed"]
    with pytest.raises(ValueError, match="unique"):
        StageTable(stages=table.stages, options=Flags, status=Status3,
                   observers=(ObserverSpec(name="fetch", stage="m:Fetch"),))


def test_an_observer_spec_loads_only_an_observer() -> None:
    assert isinstance(load_stage(TABLE.observers[0]), Observer)
    with pytest.raises(TypeError, match="not an Observer"):
        load_stage(TABLE.observers[0], "stages.decode:DecodeStage")
    assert TABLE.workers == (*STAGES, "notify")


def test_the_table_imports_no_model_library() -> None:
    # The gateway and the command line read it; a worker imports only its own stage.
    heavy = {"torch", "pyannote", "whisperx", "faster_whisper", "ctranslate2", "av"}
    code = ("import sys, stages.table; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))")
    env = {**os.environ, "PYTHONPATH": str(CORE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=CORE.parent, env=env)
    assert out.stdout.strip() == "[]"
