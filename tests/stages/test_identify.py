"""Identifying speakers by voiceprint: the matching itself, and on the real models a rerun
from diarize that names the enrolled voices of the conversation without transcribing it
again."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from pipeline.stage import JobContext
from pipeline.voiceprints import Candidate, Candidates, unit
from stages import artifacts, clustering_inputs
from stages.identify import identify
from stages.options import JobOptions
from stages.types import Result
from tests.stages.conftest import ConversationJob, MakeContext
from tests.support.media_gen import enrollment_sample

if TYPE_CHECKING:
    from stages.decode import DecodeStage
    from stages.diarize import DiarizeStage
    from stages.transcribe import TranscribeStage


def _voice(name: str, embedding: list[float], model: str = "offline") -> Candidate:
    return Candidate(id=f"vp_{name}", name=name, model=model, embedding=unit(embedding))


def test_speakers_and_voiceprints_pair_one_to_one_above_the_threshold() -> None:
    embeddings = {"SPEAKER_00": [1.0, 0.1, 0.0], "SPEAKER_01": [0.9, 0.0, 0.3],
                  "SPEAKER_02": [0.0, 0.0, 1.0]}
    # Ann is nearest to both SPEAKER_00 and SPEAKER_01: only one of them may be Ann, and
    # the pairing that is best overall gives SPEAKER_01 to Ben.
    voices = [_voice("Ann", [1.0, 0.05, 0.1]), _voice("Ben", [0.8, 0.0, 0.6])]
    names, warnings = identify(embeddings, list(embeddings), voices, "offline", 0.8)
    assert [(n.label, n.name, n.voiceprint) for n in names] == [
        ("SPEAKER_00", "Ann", "vp_Ann"), ("SPEAKER_01", "Ben", "vp_Ben"),
        ("SPEAKER_02", "SPEAKER_02", None)]
    assert names[0].similarity is not None and names[0].similarity > 0.99
    assert names[2].similarity is None and warnings == []
    # Above every similarity: nobody is named.
    names, _ = identify(embeddings, list(embeddings), voices, "offline", 0.9999)
    assert [n.name for n in names] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]


def test_a_voiceprint_of_another_model_is_skipped_with_a_warning() -> None:
    embeddings = {"SPEAKER_00": [1.0, 0.0]}
    names, warnings = identify(embeddings, ["SPEAKER_00", "SPEAKER_01"],
                               [_voice("Ann", [1.0, 0.0], model="pyannote/other")],
                               "offline", 0.5)
    assert [n.name for n in names] == ["SPEAKER_00", "SPEAKER_01"]
    assert "Ann" in warnings[0] and "'pyannote/other'" in warnings[0]
    assert "SPEAKER_01 spoke too little" in warnings[1]


def _enrolled(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
              diarize: DiarizeStage, voice: str) -> Candidate:
    """A voiceprint of ``voice`` made as POST /speakers makes it: its sample (other words
    than the conversation's) diarized as a job of one speaker."""
    ctx, _ = make_ctx(enrollment_sample(tmp_path, voice), JobOptions(num_speakers=1))
    decode.process(ctx)
    diarize.process(ctx)
    found = artifacts.read(ctx.files.diarization, artifacts.Diarization)
    [embedding] = found.embeddings.values()
    assert found.model == "offline"
    return Candidate(id=f"vp_{voice}", name=voice.title(), model=found.model,
                     embedding=unit(embedding))


def _rerun_from_diarize(job: JobContext, make_ctx: MakeContext,
                        options: JobOptions) -> JobContext:
    """Run 2 of a copy of ``job``, from diarize, as POST /jobs/{id}/rerun queues it."""
    ctx, _ = make_ctx(None, options)
    for name in (artifacts.AUDIO, artifacts.DIARIZATION, artifacts.TRANSCRIPT,
                 clustering_inputs.path(job.files).name):
        shutil.copyfile(job.files.root / name, ctx.files.root / name)
    return dataclasses.replace(ctx, job=msgspec.structs.replace(
        ctx.job, run=2, plan=("diarize", "transcribe")))


@pytest.mark.models
def test_a_rerun_names_the_enrolled_voices_without_transcribing_again(
        conversation_job: ConversationJob, make_ctx: MakeContext, tmp_path: Path,
        decode: DecodeStage, diarize: DiarizeStage, transcribe: TranscribeStage,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # Carl is never enrolled: his words must keep a label.
    voices = [_enrolled(tmp_path, make_ctx, decode, diarize, v) for v in ("alice", "bella")]
    ctx = _rerun_from_diarize(conversation_job.ctx, make_ctx, JobOptions(identify=True))
    artifacts.write_atomically(ctx.files.voiceprints, Candidates(voiceprints=voices))
    diarize.process(ctx)
    transcribe.process(ctx)

    assert any(r.getMessage().startswith("transcript reused")
               and getattr(r, "job_id", None) == ctx.job_id for r in caplog.records)
    result = artifacts.read(ctx.files.result(2), Result)
    named = {n.name: n for n in result.speaker_names if n.voiceprint is not None}
    assert sorted(named) == ["Alice", "Bella"]
    assert all(n.similarity is not None and n.similarity >= ctx.settings.speaker_match_threshold
               for n in named.values())
    # The same words as the full run, each now shown with its voice's name.
    before = [w for s in conversation_job.result.segments for w in s.words]
    after = [w for s in result.segments for w in s.words]
    assert [w.word for w in after] == [w.word for w in before]
    labels = {n.label: n.name for n in result.speaker_names}
    assert [w.speaker for w in after] == [labels.get(w.speaker or "", w.speaker)
                                          for w in before]

    def truth(time: float) -> str:
        return min(conversation_job.turns, key=lambda t: 0.0 if t.start <= time <= t.end
                   else min(abs(time - t.start), abs(time - t.end))).speaker

    spoken = [(w.speaker, truth(((w.start or 0.0) + (w.end or 0.0)) / 2)) for w in after]
    enrolled = [(given, voice) for given, voice in spoken if voice != "carl"]
    right = sum(given == voice.title() for given, voice in enrolled)
    assert right / len(enrolled) >= 0.95, spoken
    assert not [given for given, voice in spoken if voice == "carl" and given in named]


def test_only_a_rerun_from_diarize_with_the_same_transcription_reuses_the_transcript(
        make_ctx: MakeContext, tmp_path: Path) -> None:
    from stages.transcribe import _reusable, transcribed_with

    audio = tmp_path / "audio.wav"
    audio.write_bytes(b"RIFF and some samples")
    first, _ = make_ctx(audio, JobOptions(language="en"))
    shutil.copyfile(audio, first.files.audio)
    made_with = transcribed_with(first)
    artifacts.write_atomically(first.files.transcript, artifacts.Transcript(
        language="en", duration=1.0, segments=[], made_with=made_with))

    def run(options: JobOptions, plan: tuple[str, ...]) -> JobContext:
        return dataclasses.replace(first, job=msgspec.structs.replace(
            first.job, run=2, plan=plan, options=options))

    speakers_only = run(JobOptions(language="en", num_speakers=2, identify=True),
                        ("diarize", "transcribe"))
    assert _reusable(speakers_only, transcribed_with(speakers_only)) is not None
    for changed in (JobOptions(language="de"), JobOptions(language="en", model="base"),
                    JobOptions(language="en", prompt="Osterhaus")):
        rerun = run(changed, ("diarize", "transcribe"))
        assert _reusable(rerun, transcribed_with(rerun)) is None, changed
    # A replay from transcribe or decode (a model upgraded under the same name) transcribes.
    for plan in (("transcribe",), ("decode", "diarize", "transcribe")):
        rerun = run(JobOptions(language="en"), plan)
        assert _reusable(rerun, transcribed_with(rerun)) is None, plan
    # Other audio (a rerun from decode that failed after decoding, then one from diarize).
    first.files.audio.write_bytes(b"RIFF and other samples")
    assert _reusable(speakers_only, transcribed_with(speakers_only)) is None
