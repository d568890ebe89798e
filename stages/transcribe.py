"""The transcribe stage: Whisper (whisperx, batched), word timings, speakers per word."""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline import allocator
from stages import artifacts, audio, compat, models, spoken
from stages.artifacts import SAMPLE_RATE
from stages.clustering_inputs import audio_digest
from stages.options import JobOptions
from stages.settings import Settings
from stages.speakers import named
from stages.table import Context, SpeechStage
from stages.types import Result, Segment, SpeakerName, Word

# 30 s chunks decoded together by whisperx when WHISPER_BATCH_SIZE is unset. A GPU wants
# a full batch. On the CPU, memory grows by a chunk's attention matrices (heads x 1500 x
# 1500 floats: 72 MB with base, 180 MB with large) per chunk in the batch while speed
# hardly does: on 2 cores, 8 chunks decode only 7 % faster than 2.
GPU_BATCH_SIZE = 8
CPU_BATCH_SIZE = 2
# Progress when speech detection (whisperx's VAD, over the whole audio: about a quarter of
# the time on the CPU), Whisper's decoding and word alignment are done; writing the result
# takes the rest.
_DETECTED = 0.2
_TRANSCRIBED = 0.7
_ALIGNED = 0.95
_SENTENCE_END = (".", "?", "!", "。", "？", "！")

RawSegment = dict[str, Any]
# The stage whose reruns reuse the transcript (see _reusable).
DIARIZE = "diarize"


class TranscribeStage(SpeechStage):
    name = "transcribe"

    def check(self, settings: Settings) -> None:
        # whisperx's speech detection is a pyannote pipeline (stages/compat/vad.py).
        compat.check([*compat.whisperx.PATCHES, *compat.faster_whisper.PATCHES,
                      *compat.pyannote.PATCHES])

    def setup(self, settings: Settings) -> None:
        models.use_cpu_threads(settings)
        models.whisper(settings.whisper_model, settings)

    def process(self, ctx: Context) -> None:
        made_with = transcribed_with(ctx)
        transcript = _reusable(ctx, made_with)
        if transcript is None:
            samples = audio.Pcm16Samples.map(ctx.files.audio)
            duration = len(samples) / SAMPLE_RATE
            segments, language, heard = transcribe(ctx, samples)
            transcript = artifacts.Transcript(
                language=language, duration=duration, segments=[_segment(s) for s in segments],
                warnings=heard, made_with=made_with)
            artifacts.write_atomically(ctx.files.transcript, transcript)
        else:
            # A rerun that changed only speaker options: the words are the earlier run's.
            ctx.log.info("transcript reused: transcription options unchanged")
            segments = [msgspec.to_builtins(s) for s in transcript.segments]
        language, duration = transcript.language, transcript.duration

        speakers: list[str] = []
        names: list[SpeakerName] = []
        warnings = decode_warnings(ctx) + transcript.warnings
        if ctx.job.options.diarize:
            diarization = artifacts.read(ctx.files.diarization, artifacts.Diarization)
            segments = assign_speakers(segments, diarization)
            speakers = sorted({s["speaker"] for s in segments if s.get("speaker")})
            warnings += speaker_warnings(ctx.job.options, len(diarization.speakers))
            warnings += diarization.warnings
            names = [n for n in diarization.names if n.label in speakers]
        for warning in warnings:
            ctx.log.info("not as asked: %s", warning)
        result = Result(language=language, duration=duration,
                        segments=[_segment(s) for s in segments], speakers=speakers,
                        warnings=warnings)
        if names:
            result = named(result, names)
        artifacts.write_atomically(ctx.files.result(ctx.job.run), result)
        ctx.log.info("transcribed %.1f s: %d segments, language %s, %d speakers",
                     duration, len(result.segments), language, len(speakers))
        ctx.progress(1.0, f"{len(result.segments)} segments")


def transcribed_with(ctx: Context) -> artifacts.TranscribedWith:
    """What this job's transcript depends on (see :func:`_reusable`)."""
    options = ctx.job.options
    return artifacts.TranscribedWith(
        audio_sha256=audio_digest(ctx.files.audio),
        model=options.model or ctx.settings.whisper_model, language=options.language,
        task=options.task, prompt=options.prompt, hotwords=options.hotwords,
        aligner=bool(ctx.settings.hf_token) and not models.offline())


def _reusable(ctx: Context, made_with: artifacts.TranscribedWith) -> artifacts.Transcript | None:
    """The transcript an earlier run of the job made with the same audio, model and
    transcription options, if this run is a rerun from diarize: one that changed only
    speaker options then only assigns words to speakers again. A run from decode or from
    this stage (a replay after a model upgrade, say) always transcribes."""
    if ctx.job.plan[0] != DIARIZE or not ctx.files.transcript.exists():
        return None
    try:
        earlier = artifacts.read(ctx.files.transcript, artifacts.Transcript)
    except msgspec.DecodeError:
        return None
    return earlier if earlier.made_with == made_with else None


def decode_warnings(ctx: Context) -> list[str]:
    """What the decode stage found the result should tell (none from a job decoded before
    it wrote them)."""
    if not ctx.files.decoded.exists():
        return []
    return artifacts.read(ctx.files.decoded, artifacts.Decoded).warnings


def speaker_warnings(options: JobOptions, found: int) -> list[str]:
    """The result's warning when fewer distinct voices were found than the job asked for
    (pyannote leaves out a cluster that no frame falls in, and silence has none)."""
    option = "num_speakers" if options.num_speakers is not None else "min_speakers"
    asked = options.num_speakers if options.num_speakers is not None else options.min_speakers
    if asked is None or found >= asked:
        return []
    return [f"{option}={asked} asked for {asked} speakers, but only {found} distinct "
            f"voice{'' if found == 1 else 's'} {'was' if found == 1 else 'were'} found: the "
            f"result has {found}"]


def transcribe(ctx: Context, samples: audio.Pcm16Samples,
               ) -> tuple[list[RawSegment], str | None, list[str]]:
    """Sentence segments with timed words, the language spoken (None for silence), and
    what the result should warn of (text without speech left out, a language the model
    does not know)."""
    options = ctx.job.options
    name = options.model or ctx.settings.whisper_model
    loaded = models.whisper(name, ctx.settings)
    pipeline = loaded.model
    # An English-only model can neither detect a language nor translate.
    language = options.language if pipeline.model.model.is_multilingual else "en"

    detector = models.speech_detector(ctx.settings.device)

    def on_speech(fraction: float) -> None:
        # Speech detection reads the mapped samples directly, not through slices that
        # release what they read (stages/compat/vad.py): release it after each of its batches.
        samples.release()
        ctx.progress(_DETECTED * fraction, "detecting speech")

    # Each batch's buffers, freed, stay with glibc at the level of the largest batch so far,
    # and a long job's batches then peak higher still: hand them back between batches.
    give_back = allocator.GiveBackEvery()

    def on_chunk(percent: float) -> None:
        give_back()
        ctx.progress(_DETECTED + (_TRANSCRIBED - _DETECTED) * percent / 100, "transcribing")

    ctx.progress(0.0, "detecting speech")
    with (loaded.lock, detector.lock, detector.model.reporting(on_speech),
          models.out_of_memory_is_transient(),
          compat.whisperx.prompted(pipeline, options.prompt, options.hotwords)):
        # A job stopped midway (cancelled, failed) would otherwise give the language it
        # detected to the next job on this worker.
        compat.whisperx.forget_detected_language(pipeline)
        raw = pipeline.transcribe(samples, batch_size=batch_size(ctx.settings),
                                  language=language, task=options.task,
                                  progress_callback=on_chunk)
        spans = spoken.speech_spans(samples)
        segments, warnings = spoken.keep_spoken(
            [s for s in raw["segments"] if s["text"].strip()], spans)
        if not pipeline.model.model.is_multilingual:
            warnings += spoken.language_warning(ctx, samples, name, spans)
        if not segments:
            return [], options.language, warnings
        language = raw["language"]
        ctx.progress(_TRANSCRIBED, "aligning words")
        aligner = models.aligner(language, ctx.settings)
        if aligner is not None and options.task == "transcribe":
            import whisperx

            model, metadata = aligner.model
            with aligner.lock:
                aligned = whisperx.align(segments, model, metadata, samples[:],
                                         models.torch_device(ctx.settings.device))
            return aligned["segments"], language, warnings
        ctx.log.info("no wav2vec2 aligner (no HF_TOKEN, offline, or none for %s): "
                     "Whisper word timings", language)
        words = [align_words(pipeline.model, samples, s, language, options.task, ctx)
                 for s in segments]
    return split_sentences(segments, words), language, warnings


def batch_size(settings: Settings) -> int:
    if settings.whisper_batch_size is not None:
        return settings.whisper_batch_size
    device, _ = models.ctranslate2_device(settings.device)
    return GPU_BATCH_SIZE if device == "cuda" else CPU_BATCH_SIZE


def align_words(model: Any, samples: audio.Pcm16Samples, segment: RawSegment,
                language: str, task: str, ctx: Context) -> list[dict[str, Any]]:
    """Word timings of ``segment``'s text from Whisper's cross-attention alignment heads.

    whisperx's batched decoding returns no timestamps; rather than decode everything a
    second time, the text it produced is force-aligned against the same chunk's encoder
    output by the faster-whisper model already loaded.
    """
    start = float(segment["start"])
    chunk = samples[int(start * SAMPLE_RATE):int(float(segment["end"]) * SAMPLE_RATE)]
    alignment = compat.faster_whisper.word_alignment(model, chunk, segment["text"],
                                                     language, task)
    aligned = min(start / max(len(samples) / SAMPLE_RATE, 1e-3), 1.0)
    ctx.progress(_TRANSCRIBED + (_ALIGNED - _TRANSCRIBED) * aligned, "aligning words")
    return [
        {"word": w["word"], "start": round(start + float(w["start"]), 3),
         "end": round(start + float(w["end"]), 3), "score": round(float(w["probability"]), 3)}
        for w in alignment if w["word"].strip()
    ]


def split_sentences(segments: list[RawSegment],
                    words: list[list[dict[str, Any]]]) -> list[RawSegment]:
    """Whisper chunks (up to 30 s) -> one segment per sentence, timed by its words."""
    sentences: list[RawSegment] = []
    for segment, chunk_words in zip(segments, words, strict=True):
        if not chunk_words:
            sentences.append({**segment, "words": []})
            continue
        current: list[dict[str, Any]] = []
        for word in chunk_words:
            current.append(word)
            if word["word"].strip().endswith(_SENTENCE_END):
                sentences.append(_from_words(current))
                current = []
        if current:
            sentences.append(_from_words(current))
    return sentences


def _from_words(words: list[dict[str, Any]]) -> RawSegment:
    return {"start": words[0]["start"], "end": words[-1]["end"],
            "text": _join(words), "words": words}


def _join(words: list[dict[str, Any]]) -> str:
    # Whisper's words carry their leading space (and none in languages written without
    # spaces); wav2vec2-aligned words carry none.
    if any(w["word"].startswith(" ") for w in words):
        return "".join(w["word"] for w in words).strip()
    return " ".join(w["word"] for w in words)


def assign_speakers(segments: list[RawSegment],
                    diarization: artifacts.Diarization) -> list[RawSegment]:
    """Give each word the speaker talking over it, then split segments where it changes."""
    import pandas as pd
    import whisperx

    turns = diarization.exclusive_turns or diarization.turns
    if not turns or not segments:
        return segments
    frame = pd.DataFrame([{"start": t.start, "end": t.end, "speaker": t.speaker} for t in turns])
    assigned = whisperx.assign_word_speakers(frame, {"segments": segments}, fill_nearest=True)
    return [part for s in assigned["segments"] for part in _split_by_speaker(s)]


def _split_by_speaker(segment: RawSegment) -> list[RawSegment]:
    words = segment.get("words") or []
    runs: list[list[dict[str, Any]]] = []
    for word in words:
        speaker = word.get("speaker") or (runs[-1][-1].get("speaker") if runs else None)
        if runs and runs[-1][-1].get("speaker") == speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
        word["speaker"] = speaker
    if len(runs) <= 1:
        return [segment]
    return [{**_from_words(run), "speaker": run[0]["speaker"]} for run in runs]


def _segment(raw: RawSegment) -> Segment:
    words = [
        Word(word=w["word"].strip(), start=w.get("start"), end=w.get("end"),
             score=w.get("score"), speaker=w.get("speaker"))
        for w in raw.get("words") or []
    ]
    return Segment(start=float(raw["start"]), end=float(raw["end"]), text=raw["text"].strip(),
                   speaker=raw.get("speaker"), words=words)
