"""The decode stage on inputs users send (no models needed)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from pipeline.errors import PermanentError
from stages.decode import DecodeStage
from tests.stages.conftest import SAMPLE_DIR, MakeContext
from tests.support.media_gen import encode, encode_streams, tone, write_wav


def _wav_params(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes() / 16000


@pytest.mark.parametrize(("name", "codec", "container", "rate", "channels"), [
    ("stereo.mp3", "libmp3lame", "mp3", 44100, 2),
    ("phone.wav", "pcm_s16le", "wav", 8000, 1),
    ("video.mp4", "aac", "mp4", 48000, 2),
    ("voice.webm", "libopus", "webm", 48000, 1),
])
def test_decodes_to_16k_mono_wav(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage,
                                 name: str, codec: str, container: str, rate: int,
                                 channels: int) -> None:
    source = encode(tmp_path / name, tone(3.0, rate, channels), rate, codec, container)
    ctx, progress = make_ctx(source)
    decode.process(ctx)
    channels_out, width, rate_out, seconds = _wav_params(ctx.files.audio)
    assert (channels_out, width, rate_out) == (1, 2, 16000)
    # Encoders add priming/padding samples: allow a frame or so either way.
    assert seconds == pytest.approx(3.0, abs=0.1)
    assert progress.reports[-1][0] == 1.0
    assert not list(ctx.files.root.glob("*.part"))


def test_sample_progress_and_redelivery(make_ctx: MakeContext, decode: DecodeStage) -> None:
    ctx, progress = make_ctx(SAMPLE_DIR / "sample.wav")
    decode.process(ctx)
    first = ctx.files.audio.read_bytes()
    fractions = [f for f, _ in progress.reports]
    assert fractions == sorted(fractions) and len(fractions) >= 3 and fractions[-1] == 1.0
    decode.process(ctx)  # a redelivered job decodes again, harmlessly
    assert ctx.files.audio.read_bytes() == first
    assert _wav_params(ctx.files.audio)[3] == pytest.approx(30.0, abs=0.01)


def test_half_second_clip(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage) -> None:
    ctx, _ = make_ctx(write_wav(tmp_path / "short.wav", tone(0.5, 22050), 22050))
    decode.process(ctx)
    assert _wav_params(ctx.files.audio)[3] == pytest.approx(0.5, abs=0.01)


def test_corrupt_file(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage) -> None:
    good = encode(tmp_path / "a.mp3", tone(2.0, 44100, 2), 44100, "libmp3lame", "mp3")
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"\x00" * 64 + bytes(b ^ 0x5A for b in good.read_bytes()[64:]))
    ctx, _ = make_ctx(corrupt)
    with pytest.raises(PermanentError, match=r"not an audio file|could not be decoded|no audio"):
        decode.process(ctx)
    assert not ctx.files.audio.exists()
    assert not list(ctx.files.root.glob("*.part"))


def test_too_long_from_header(tmp_path: Path, make_ctx: MakeContext, decode: DecodeStage) -> None:
    ctx, _ = make_ctx(write_wav(tmp_path / "long.wav", tone(3.0, 8000), 8000),
                      max_audio_seconds=2.0)
    with pytest.raises(PermanentError, match=r"longer than the limit \(2 s\)"):
        decode.process(ctx)
    assert not ctx.files.audio.exists()


def test_too_long_while_decoding(tmp_path: Path, make_ctx: MakeContext,
                                 decode: DecodeStage) -> None:
    # ADTS AAC has no duration in its header: only decoding finds out.
    source = encode(tmp_path / "long.aac", tone(8.0, 16000), 16000, "aac", "adts")
    ctx, _ = make_ctx(source, max_audio_seconds=6.0)
    with pytest.raises(PermanentError, match="longer than the limit"):
        decode.process(ctx)
    assert not ctx.files.audio.exists()


def test_cancellation_stops_decoding(make_ctx: MakeContext, decode: DecodeStage) -> None:
    from pipeline.errors import JobGone

    ctx, _ = make_ctx(SAMPLE_DIR / "sample.wav")

    def cancelled(fraction: float, detail: str | None) -> None:
        raise JobGone(ctx.job_id)

    ctx.report = cancelled
    with pytest.raises(JobGone):
        decode.process(ctx)
    assert not ctx.files.audio.exists()
    assert not list(ctx.files.root.glob("*.part"))


def test_several_audio_streams(tmp_path: Path, make_ctx: MakeContext,
                               decode: DecodeStage) -> None:
    """Issue 25 item 7: the stream used is the one asked for, and the result names the
    others when none was asked for."""
    from stages import artifacts
    from stages.options import JobOptions

    source = encode_streams(tmp_path / "tracks.mkv", [tone(1.0, 48000), tone(2.0, 48000)],
                            48000, "libopus", "matroska")
    ctx, _ = make_ctx(source)
    decode.process(ctx)
    assert _wav_params(ctx.files.audio)[3] == pytest.approx(1.0, abs=0.1)
    [warning] = artifacts.read(ctx.files.decoded, artifacts.Decoded).warnings
    assert "2 audio streams" in warning and "audio_stream" in warning

    ctx, _ = make_ctx(source, JobOptions(audio_stream=1))
    decode.process(ctx)
    assert _wav_params(ctx.files.audio)[3] == pytest.approx(2.0, abs=0.1)
    assert artifacts.read(ctx.files.decoded, artifacts.Decoded).warnings == []

    ctx, _ = make_ctx(source, JobOptions(audio_stream=2))
    with pytest.raises(PermanentError, match=r"audio_stream=2, but the file has 2 audio "
                                             r"streams: use 0 to 1"):
        decode.process(ctx)
