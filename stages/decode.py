"""The decode stage: any allowed upload, or the audio at a job's URL, -> the decoded audio
(see stages.artifacts)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import av

from pipeline.addresses import shown_url
from pipeline.errors import PermanentError
from stages import artifacts, fetch, media
from stages.artifacts import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from stages.table import Context, SpeechStage

# PyAV's names for the decoded audio's sample format and channel layout.
_AV_FORMAT, _AV_LAYOUT = "s16", "mono"
# Progress is reported every this many seconds of decoded audio (ctx.progress throttles
# too, but this keeps the per-frame loop free of calls).
_PROGRESS_EVERY_SECONDS = 5.0


class DecodeStage(SpeechStage):
    name = "decode"

    def process(self, ctx: Context) -> None:
        if fetch.is_url(ctx.job.input_name) and not ctx.files.input.exists():
            download(ctx)
        # The job's own limit (POST /transcribe's SYNC_MAX_SECONDS) holds like the service's:
        # on the audio decoded, not only on what the header claims, which may lie.
        limit = ctx.settings.max_audio_seconds
        own = ctx.job.max_seconds
        partial = ctx.files.audio.with_name(ctx.files.audio.name + ".part")
        too_long = None
        if own is not None and own < limit:
            limit = own
            too_long = (f"the audio is longer than this job's limit of {own:g} s (the limit "
                        "it was submitted with, as POST /transcribe's SYNC_MAX_SECONDS); "
                        "submit longer audio with POST /jobs")
        try:
            seconds, warnings = decode_to_wav(ctx.files.input, partial, limit, ctx, too_long)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        # A redelivered job simply decodes again and replaces the files in one step each.
        os.replace(partial, ctx.files.audio)
        artifacts.write_atomically(ctx.files.decoded,
                                   artifacts.Decoded(duration=seconds, warnings=warnings))
        for warning in warnings:
            ctx.log.info("not as asked: %s", warning)
        ctx.log.info("decoded %.1f s of audio", seconds)
        ctx.progress(1.0, f"decoded {seconds:.0f} s")


def download(ctx: Context) -> None:
    """Fetch the job's URL into its input file, as an upload would have put it there: the
    same size limit, and the duration limits hold when it is decoded. Once complete, the
    file stays: a redelivered job or a rerun decodes it without downloading again."""
    url = ctx.job.input_name or ""
    settings = ctx.settings
    ctx.progress(0.0, "downloading")
    ctx.log.info("downloading %s", shown_url(url))

    def report(done: int, total: int | None) -> None:
        # Progress of decoding proper starts after the download: this only says what
        # happens, and lets a cancelled job stop (JobGone) in the middle of a download.
        of = f" of {total / 1e6:.1f}" if total else ""
        ctx.progress(0.0, f"downloaded {done / 1e6:.1f}{of} MB")

    size = fetch.download(url, ctx.files.input, max_bytes=settings.max_upload_bytes,
                          timeout=settings.fetch_timeout_seconds,
                          resolver=fetch.policy(settings.allow_private_urls),
                          progress=report)
    ctx.log.info("downloaded %d bytes", size)


def decode_to_wav(source: Path, target: Path, max_seconds: float, ctx: Context,
                  too_long: str | None = None) -> tuple[float, list[str]]:
    """Decode the job's audio stream of ``source`` (option ``audio_stream``, else the
    first) into ``target``; return its duration and what the result should warn of.

    Audio longer than ``max_seconds`` fails with ``too_long`` (or a default message).

    Streams frame by frame, so memory stays constant whatever the input's length.
    """
    chosen = ctx.job.options.audio_stream
    with media.open_audio(source, chosen) as (container, stream):
        warning = media.stream_warning(container, stream, chosen)
        claimed = media.duration_of(container, stream)
        media.check_duration(claimed, max_seconds, too_long)
        ctx.log.info(
            "decoding %s audio (%s, %s Hz, %s ch, %s s)", container.format.name,
            stream.codec_context.name, stream.codec_context.sample_rate,
            stream.codec_context.channels, f"{claimed:.1f}" if claimed else "unknown",
        )
        resampler = av.AudioResampler(format=_AV_FORMAT, layout=_AV_LAYOUT, rate=SAMPLE_RATE)
        max_samples = int(max_seconds * SAMPLE_RATE)
        written = 0
        next_report = _PROGRESS_EVERY_SECONDS * SAMPLE_RATE
        with wave.open(str(target), "wb") as out:
            out.setnchannels(CHANNELS)
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(SAMPLE_RATE)
            try:
                for frame in container.decode(stream):
                    for chunk in resampler.resample(frame):
                        written += _write(out, chunk)
                    if written > max_samples:
                        # The header lied or had no duration: stop at the limit.
                        media.check_duration(written / SAMPLE_RATE, max_seconds, too_long)
                    if written >= next_report:
                        next_report = written + _PROGRESS_EVERY_SECONDS * SAMPLE_RATE
                        _report(ctx, written, claimed)
                for chunk in resampler.resample(None):
                    written += _write(out, chunk)
            except av.FFmpegError as exc:
                raise PermanentError("the audio could not be decoded (corrupt file)") from exc
    if written == 0:
        raise PermanentError("no audio could be decoded from the file")
    media.check_duration(written / SAMPLE_RATE, max_seconds, too_long)
    return written / SAMPLE_RATE, [warning] if warning else []


def _write(out: wave.Wave_write, frame: av.AudioFrame) -> int:
    # Packed: the first plane holds exactly the samples' bytes (plus padding).
    data = bytes(frame.planes[0])[: frame.samples * CHANNELS * SAMPLE_WIDTH]
    out.writeframesraw(data)
    return frame.samples


def _report(ctx: Context, written: int, claimed: float | None) -> None:
    seconds = written / SAMPLE_RATE
    fraction = seconds / claimed if claimed else 0.0
    ctx.progress(min(fraction, 0.99), f"decoded {seconds:.0f} s")
