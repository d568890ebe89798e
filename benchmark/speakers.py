"""``python -m benchmark.speakers``: how well voiceprints name a job's speakers.

The evaluation set is made here with espeak-ng and sox (tests/support/media_gen.py): the
three-voice conversation, as spoken and through sox's tempo and pitch changes, and one
enrollment sample per voice with other sentences than the conversation's. Each voice in
turn is left out of the enrolled ones, so every voice is once the stranger who must get no
name. The stages run directly (decode, diarize, transcribe on the offline models); the
identification is the diarize stage's own (stages/identify.py).

Printed: the share of the enrolled voices' words named right, the share of the stranger's
words given a name (false names: the target is 0), and the margins between
SPEAKER_MATCH_THRESHOLD and each speaker's similarity with its own voiceprint (above it)
and with the nearest wrong one (below it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.voiceprints import Candidate, unit
from stages import artifacts
from stages.options import JobOptions
from stages.settings import Settings
from stages.types import Result
from tests.support.jobs import context, new_job
from tests.support.media_gen import VOICES, Turn, altered, conversation, enrollment_sample

# The benchmark's own conversation and enrollment sentences: the threshold is calibrated
# here, so never on the audio the tests assert on (tests/support/media_gen.py's SCRIPT).
SCRIPT: list[tuple[str, str]] = [
    ("carl", "Welcome back. Today we review the garden project and the new greenhouse."),
    ("alice", "The greenhouse frame arrived on Tuesday, but two of the panels were cracked."),
    ("bella", "I called the supplier this morning and they promised replacements by Friday."),
    ("carl", "Good. Meanwhile the volunteers could start preparing the soil beds outside."),
    ("bella", "We also need more seeds. Tomatoes, beans and peppers are nearly sold out."),
    ("alice", "I can order seeds online tonight, if someone sends me the final list."),
    ("carl", "I will send it right after the meeting. Anything else for today?"),
    ("alice", "Only the watering schedule for the holidays, which we can settle by email."),
]
ENROLLMENT: dict[str, str] = {
    "alice": "Every spring I plant sunflowers along the fence, and by August they are "
             "taller than the neighbour's shed.",
    "bella": "Last year the library moved to the old railway station, which finally has "
             "enough room for the music collection.",
    "carl": "My grandfather repaired clocks for fifty years, and his workshop still smells "
            "of oil and old wood.",
}

#: The recordings the conversation is evaluated in: sox effects applied to it.
VARIANTS: dict[str, list[str]] = {
    "as spoken": [],
    "tempo x1.1": ["tempo", "1.1"],
    "pitch +50 cents": ["pitch", "50"],
    "pitch -50 cents": ["pitch", "-50"],
}


@dataclass
class Tally:
    named_right: int = 0
    enrolled_words: int = 0
    falsely_named: int = 0
    stranger_words: int = 0
    own_margin: float = float("inf")  # least (similarity with own voiceprint - threshold)
    wrong_margin: float = float("inf")  # least (threshold - similarity with a wrong one)


def _run(stages: list[object], jobs_dir: Path, settings: Settings, audio: Path,
         options: JobOptions) -> artifacts.Files:
    ctx = context(jobs_dir, new_job(jobs_dir, audio), settings, options)
    for stage in stages:
        stage.process(ctx)  # type: ignore[attr-defined]
    return ctx.files


def _speaker_at(turns: list[Turn], time: float) -> str:
    """The reference speaker of the turn nearest to ``time``."""
    return min(turns, key=lambda t: 0.0 if t.start <= time <= t.end
               else min(abs(time - t.start), abs(time - t.end))).speaker


def reruns(rounds: int) -> None:
    """Seconds from POST /jobs/{id}/rerun from diarize to the completed job seen by a long
    poll, through the whole service (gateway and a worker per stage, as processes), on the
    tests' 52 s conversation: the speaker options a rerun changes without transcribing
    again."""
    import httpx

    from benchmark.procs import Processes, valkey
    from benchmark.service import service

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio, _ = conversation(root)
        (root / "logs").mkdir()
        procs = Processes(root / "logs")
        with valkey(root / "valkey") as url, service(procs, url, root / "jobs",
                                                     "tiny.en") as running:
            job_id, seconds = running.run(audio)
            print(f"full job: {seconds:.2f} s", flush=True)
            job = running.client.get(f"/jobs/{job_id}").json()
            speaker = job["result"]["speakers"][0]
            enrolled = running.client.post("/speakers", json={
                "name": "Alice", "from_job": job_id, "speaker": speaker})
            enrolled.raise_for_status()
            changes: list[dict[str, object]] = [
                {"num_speakers": 2}, {"num_speakers": 3}, {"min_speakers": 2, "max_speakers": 4},
                {"identify": True}]
            print("| rerun from diarize with | seconds (median) | min | max |\n|---|---|---|---|")
            for change in changes:
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    answer = running.client.post(f"/jobs/{job_id}/rerun", json={
                        "from_stage": "diarize", "num_speakers": None, "min_speakers": None,
                        "max_speakers": None, "identify": False, **change})
                    if answer.status_code != httpx.codes.ACCEPTED:
                        raise RuntimeError(answer.text)
                    running.wait(job_id)
                    times.append(time.perf_counter() - started)
                shown = ", ".join(f"{k}={v}" for k, v in change.items())
                print(f"| {shown} | {statistics.median(times):.3f} | {min(times):.3f} | "
                      f"{max(times):.3f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.speakers", description=__doc__)
    parser.add_argument("--threshold", type=float, help="SPEAKER_MATCH_THRESHOLD to score "
                        "(default: the setting's)")
    parser.add_argument("--reruns", type=int, metavar="ROUNDS", help="instead: time reruns "
                        "from diarize through the whole service, ROUNDS times each")
    args = parser.parse_args(argv)
    if args.reruns:
        reruns(args.reruns)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    from stages.decode import DecodeStage
    from stages.diarize import DiarizeStage
    from stages.identify import identify, similarities
    from stages.transcribe import TranscribeStage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings.from_env(jobs_dir=str(root / "jobs"), whisper_model="tiny.en",
                                     device="cpu")
        threshold = settings.speaker_match_threshold if args.threshold is None else (
            args.threshold)
        decode, diarize, transcribe = DecodeStage(), DiarizeStage(), TranscribeStage()
        for stage in (diarize, transcribe):
            stage.setup(settings)
        jobs = root / "jobs"

        prints: dict[str, Candidate] = {}
        for voice in VOICES:
            files = _run([decode, diarize], jobs, settings,
                         enrollment_sample(root, voice, ENROLLMENT[voice]),
                         JobOptions(num_speakers=1))
            found = artifacts.read(files.diarization, artifacts.Diarization)
            [embedding] = found.embeddings.values()
            prints[voice] = Candidate(id=voice, name=voice, model=found.model or "",
                                      embedding=unit(embedding))

        spoken, turns = conversation(root, SCRIPT)
        tallies: dict[str, Tally] = {}
        for variant, effects in VARIANTS.items():
            audio = altered(spoken, root / f"variant-{len(tallies)}.wav", effects)
            # sox's tempo shortens the audio: the reference turns with it.
            scale = 1 / float(effects[1]) if effects[:1] == ["tempo"] else 1.0
            reference = [Turn(t.start * scale, t.end * scale, t.speaker, t.text) for t in turns]
            files = _run([decode, diarize, transcribe], jobs, settings, audio, JobOptions())
            found = artifacts.read(files.diarization, artifacts.Diarization)
            result = artifacts.read(files.result(1), Result)
            words = [(w.speaker, _speaker_at(reference, (w.start + w.end) / 2))
                     for s in result.segments for w in s.words
                     if w.start is not None and w.end is not None]
            tally = tallies[variant] = Tally()
            for stranger in VOICES:
                enrolled = [prints[v] for v in VOICES if v != stranger]
                names, _ = identify(found.embeddings, found.speakers, enrolled,
                                    found.model or "", threshold)
                shown = {n.label: n.voiceprint for n in names}
                for label, truth in words:
                    given = shown.get(label or "")
                    if truth == stranger:
                        tally.stranger_words += 1
                        tally.falsely_named += given is not None
                    else:
                        tally.enrolled_words += 1
                        tally.named_right += given == truth
            # Margins over every voiceprint: each speaker's voice is the one most of the
            # words it was given belong to.
            voice_of = {label: counts.most_common(1)[0][0] for label in found.speakers
                        if (counts := Counter(t for g, t in words if g == label))}
            for label, row in similarities(found.embeddings, list(prints.values())).items():
                own = voice_of.get(label)
                if own is None:  # a speaker without words: no voice to score it against
                    continue
                tally.own_margin = min(tally.own_margin, row[own] - threshold)
                tally.wrong_margin = min(tally.wrong_margin, threshold - max(
                    score for name, score in row.items() if name != own))
            print(f"{variant}: {len(found.speakers)} speakers; similarities "
                  + "; ".join(f"{voice_of.get(label, label)}: " + ", ".join(
                      f"{name} {score:.3f}" for name, score in row.items())
                      for label, row in similarities(found.embeddings,
                                                     list(prints.values())).items()),
                  flush=True)

    print(f"\nSPEAKER_MATCH_THRESHOLD {threshold:g}, offline models (CAM++), "
          f"{len(VOICES)} voices, each once unenrolled\n")
    print("| recording | words named right | stranger's words named (false) "
          "| own - threshold (min) | threshold - nearest wrong (min) |")
    print("|---|---|---|---|---|")
    for variant, t in tallies.items():
        print(f"| {variant} | {t.named_right / max(t.enrolled_words, 1):.1%} "
              f"({t.named_right}/{t.enrolled_words}) | "
              f"{t.falsely_named / max(t.stranger_words, 1):.1%} "
              f"({t.falsely_named}/{t.stranger_words}) | {t.own_margin:+.3f} | "
              f"{t.wrong_margin:+.3f} |")


if __name__ == "__main__":
    main()
