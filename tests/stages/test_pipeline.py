"""decode -> diarize -> transcribe with the real offline models on real and synthetic audio."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from pipeline.errors import JobGone, PermanentError
from pipeline.stage import JobContext, Stage
from stages import artifacts
from stages.decode import DecodeStage
from stages.options import JobOptions
from stages.types import Result
from tests.stages.conftest import SAMPLE_DIR, ConversationJob, MakeContext
from tests.support.media_gen import encode, speak, tone, write_wav

if TYPE_CHECKING:
    from stages.diarize import DiarizeStage
    from stages.transcribe import TranscribeStage

pytestmark = pytest.mark.models


def _run(stages: list[Stage], ctx: JobContext) -> Result:
    for stage in stages:
        stage.process(ctx)
    return msgspec.json.decode(ctx.files.result(ctx.job.run).read_bytes(), type=Result)


def test_sample_wav_der_and_wer(make_ctx: MakeContext, decode: DecodeStage, diarize: DiarizeStage,
                                transcribe: TranscribeStage) -> None:
    import jiwer
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate
    from whisper_normalizer.english import EnglishTextNormalizer

    ctx, progress = make_ctx(SAMPLE_DIR / "sample.wav")
    result = _run([decode, diarize, transcribe], ctx)

    reference = next(iter(load_rttm(  # type: ignore[no-untyped-call]
        str(SAMPLE_DIR / "sample.rttm")).values()))
    hypothesis = Annotation()
    for turn in artifacts.read(ctx.files.diarization, artifacts.Diarization).turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis)

    stm = [line.split(maxsplit=5) for line in (SAMPLE_DIR / "sample.stm").read_text().splitlines()
           if line.strip() and not line.startswith(";;")]
    normalize = EnglishTextNormalizer()
    truth = normalize(" ".join(fields[5] for fields in stm if len(fields) > 5))
    said = normalize(" ".join(s.text for s in result.segments))
    wer = jiwer.wer(truth, said)
    print(f"sample.wav: DER {der:.3f}, WER {wer:.3f}")

    assert der <= 0.08
    assert wer <= 0.20
    assert result.language == "en" and result.duration == pytest.approx(30.0, abs=0.01)
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    assert all(s.speaker in result.speakers for s in result.segments)
    assert all(w.start is not None and w.speaker for s in result.segments for w in s.words)
    transcript = artifacts.read(ctx.files.transcript, artifacts.Transcript)
    assert transcript.segments and all(s.speaker is None for s in transcript.segments)
    assert progress.reports[-1][0] == 1.0


def test_three_speaker_conversation(conversation_job: ConversationJob) -> None:
    ctx, turns, result = conversation_job.ctx, conversation_job.turns, conversation_job.result
    assert len(result.speakers) == 3

    words = [w for s in result.segments for w in s.words
             if w.start is not None and w.end is not None]
    # Map each hypothesis speaker to the reference speaker it overlaps most.
    overlap: dict[tuple[str, str], float] = {}
    for turn in artifacts.read(ctx.files.diarization, artifacts.Diarization).turns:
        for ref in turns:
            shared = min(turn.end, ref.end) - max(turn.start, ref.start)
            if shared > 0:
                key = (turn.speaker, ref.speaker)
                overlap[key] = overlap.get(key, 0.0) + shared
    mapping = {hyp: max((v, r) for (h, r), v in overlap.items() if h == hyp)[1]
               for hyp in result.speakers}

    def true_speaker(t: float) -> str | None:
        return next((r.speaker for r in turns if r.start <= t <= r.end), None)

    right = sum(mapping.get(w.speaker or "") == true_speaker((w.start + w.end) / 2)  # type: ignore[operator]
                for w in words)
    print(f"conversation: {right}/{len(words)} words attributed to the right speaker")
    assert len(words) >= 80
    assert right / len(words) >= 0.90


def test_silence_gives_no_text(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
                               diarize: DiarizeStage, transcribe: TranscribeStage) -> None:
    import numpy as np

    ctx, _ = make_ctx(write_wav(tmp_path / "silence.wav", np.zeros((1, 16000 * 10),
                                                                   dtype=np.float32), 16000))
    result = _run([decode, diarize, transcribe], ctx)
    assert result.segments == [] and result.speakers == []
    assert result.duration == pytest.approx(10.0)
    assert result.warnings == []


def test_fewer_voices_than_asked_is_a_warning(tmp_path: Path, make_ctx: MakeContext,
                                              decode: DecodeStage, diarize: DiarizeStage,
                                              transcribe: TranscribeStage) -> None:
    import numpy as np

    ctx, _ = make_ctx(write_wav(tmp_path / "silence.wav", np.zeros((1, 16000 * 3),
                                                                   dtype=np.float32), 16000),
                      JobOptions(num_speakers=2))
    result = _run([decode, diarize, transcribe], ctx)
    assert result.speakers == []
    assert result.warnings == ["num_speakers=2 asked for 2 speakers, but only 0 distinct "
                               "voices were found: the result has 0"]


def test_a_tone_gives_no_text(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
                              transcribe: TranscribeStage) -> None:
    """Issue 25 item 7: Whisper wrote "you" for a 0.1 s tone; no speech, no text."""
    # base: tiny.en writes nothing for it.
    ctx, _ = make_ctx(write_wav(tmp_path / "beep.wav", tone(0.1, 16000), 16000),
                      JobOptions(model="base", diarize=False))
    result = _run([decode, transcribe], ctx)
    assert result.segments == []
    [warning] = result.warnings
    assert "no speech was detected" in warning


def test_english_only_model_given_other_speech(tmp_path: Path, make_ctx: MakeContext,
                                               decode: DecodeStage,
                                               transcribe: TranscribeStage) -> None:
    german = speak(tmp_path / "de.wav", ["-v", "de"], "Guten Morgen zusammen, schön dass "
                   "ihr da seid. Heute sprechen wir über den Haushalt des nächsten Jahres.")
    ctx, _ = make_ctx(german, JobOptions(model="tiny.en", diarize=False))
    result = _run([decode, transcribe], ctx)
    [warning] = result.warnings
    assert "understands English only" in warning and "language de" in warning

    english = speak(tmp_path / "en.wav", ["-v", "en-us"], "Good morning everyone, thank you "
                    "for coming today. We will talk about the budget for next year.")
    ctx, _ = make_ctx(english, JobOptions(model="tiny.en", diarize=False))
    result = _run([decode, transcribe], ctx)
    assert result.segments and result.warnings == []


def test_half_second_clip(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
                          diarize: DiarizeStage, transcribe: TranscribeStage) -> None:
    clip = tmp_path / "clip.wav"
    with wave.open(str(SAMPLE_DIR / "sample.wav"), "rb") as src, \
            wave.open(str(clip), "wb") as dst:
        dst.setparams(src.getparams())
        src.setpos(int(14.5 * 16000))
        dst.writeframes(src.readframes(8000))
    ctx, _ = make_ctx(clip)
    result = _run([decode, diarize, transcribe], ctx)
    assert result.duration == pytest.approx(0.5, abs=0.01)
    assert all(s.start >= 0 and s.end <= 0.6 for s in result.segments)


def test_stereo_mp3_without_diarization(tmp_path: Path, make_ctx: MakeContext,
                                        decode: DecodeStage, transcribe: TranscribeStage) -> None:
    import numpy as np

    from stages import audio as wav_audio

    speech = wav_audio.load(SAMPLE_DIR / "sample.wav")
    # 16 kHz -> 44.1 kHz stereo by linear interpolation: good enough for the test.
    t = np.arange(int(len(speech) * 44100 / 16000)) / 44100
    upsampled = np.interp(t, np.arange(len(speech)) / 16000, speech).astype(np.float32)
    mp3 = encode(tmp_path / "talk.mp3", np.stack([upsampled, upsampled]), 44100,
                 "libmp3lame", "mp3")
    ctx, _ = make_ctx(mp3, JobOptions(diarize=False))
    assert "diarize" not in ctx.job.plan
    result = _run([decode, transcribe], ctx)
    assert not ctx.files.diarization.exists()
    assert result.speakers == []
    assert all(s.speaker is None for s in result.segments)
    assert "chicago" in " ".join(s.text for s in result.segments).lower()


def test_unknown_model_is_a_permanent_error(
        tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
        transcribe: TranscribeStage) -> None:
    ctx, _ = make_ctx(write_wav(tmp_path / "t.wav", tone(1.0, 16000), 16000),
                      JobOptions(model="no-such-model", diarize=False))
    decode.process(ctx)
    with pytest.raises(PermanentError, match="unknown Whisper model 'no-such-model'"):
        transcribe.process(ctx)


@pytest.mark.usefixtures("speech_tools")
def test_a_job_stopped_midway_leaves_its_language_to_no_other(
        tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
        transcribe: TranscribeStage) -> None:
    """whisperx keeps the language it detected until a transcription ends: a job stopped
    while Whisper decodes (cancelled here) must not decide the next job's language."""
    options = JobOptions(model="base", diarize=False)  # multilingual: detects the language
    french = speak(tmp_path / "fr.wav", ["-v", "fr"],
                   "Bonjour à tous, merci d'être venus à la réunion de ce matin.")
    english = speak(tmp_path / "en.wav", ["-v", "en-us"],
                    "Good morning everyone, thank you for joining the meeting today.")

    stopped, _ = make_ctx(french, options)
    decode.process(stopped)

    def cancelled(fraction: float, detail: str | None) -> None:
        if detail == "transcribing":
            raise JobGone("cancelled while transcribing")

    stopped.report = cancelled
    with pytest.raises(JobGone):
        transcribe.process(stopped)

    ctx, _ = make_ctx(english, options)
    assert _run([decode, transcribe], ctx).language == "en"
