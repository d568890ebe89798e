"""media.probe: what it accepts, and what it refuses without reading anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.errors import PermanentError
from stages import media
from tests.stages.conftest import SAMPLE_DIR
from tests.support.media_gen import encode, tone, write_wav

SAMPLE = SAMPLE_DIR / "sample.wav"


@pytest.mark.parametrize(("name", "codec", "container", "rate", "channels", "expected"), [
    ("a.wav", "pcm_s16le", "wav", 8000, 1, "wav"),
    ("a.mp3", "libmp3lame", "mp3", 44100, 2, "mp3"),
    ("a.flac", "flac", "flac", 16000, 1, "flac"),
    ("a.opus", "libopus", "ogg", 48000, 1, "ogg"),
    ("a.m4a", "aac", "ipod", 44100, 2, "mov,mp4,m4a,3gp,3g2,mj2"),
    ("a.mp4", "aac", "mp4", 48000, 1, "mov,mp4,m4a,3gp,3g2,mj2"),
    ("a.webm", "libopus", "webm", 48000, 2, "matroska,webm"),
    ("a.mkv", "flac", "matroska", 16000, 1, "matroska,webm"),
    ("a.aac", "aac", "adts", 44100, 1, "aac"),
])
def test_accepts_audio_containers(tmp_path: Path, name: str, codec: str, container: str,
                                  rate: int, channels: int, expected: str) -> None:
    path = encode(tmp_path / name, tone(2.0, rate, channels), rate, codec, container)
    info = media.probe(path)
    assert (info.format, info.sample_rate, info.channels) == (expected, rate, channels)
    assert info.duration is None or info.duration == pytest.approx(2.0, abs=0.2)


def test_refuses_text_and_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("hello, this is no audio\n" * 200)
    (tmp_path / "r.bin").write_bytes(os.urandom(20_000))
    for name in ("t.txt", "r.bin"):
        with pytest.raises(PermanentError, match="not an audio file"):
            media.probe(tmp_path / name)


def _playlists(directory: Path, target: Path) -> dict[str, str]:
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n{target}\n#EXT-X-ENDLIST\n"
    return {
        "list.m3u8": hls,
        "list.ffconcat": f"ffconcat version 1.0\nfile '{target}'\n",
        # FFmpeg probes by content: a playlist named like an AVI (or any audio) is still one.
        "movie.avi": hls,
        "song.mp3": hls,
    }


def test_refuses_playlists_and_scripts_naming_a_real_audio_file(tmp_path: Path) -> None:
    # The target is a valid audio file: were it followed, probe would find its audio.
    for name, text in _playlists(tmp_path, SAMPLE).items():
        (tmp_path / name).write_text(text)
        with pytest.raises(PermanentError, match="not an audio file"):
            media.probe(tmp_path / name)


def test_refused_playlist_target_is_never_opened(tmp_path: Path) -> None:
    # A FIFO target: opening it for reading would block until a writer appears, so a probe
    # that returns (with an error) proves the target was never opened.
    fifo = tmp_path / "target.wav"
    os.mkfifo(fifo)
    for name, text in _playlists(tmp_path, fifo).items():
        (tmp_path / name).write_text(text)
        with pytest.raises(PermanentError):
            media.probe(tmp_path / name)
    # Nobody holds the FIFO open for reading: a non-blocking writer cannot open it.
    with pytest.raises(OSError):
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)


def test_no_audio_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "video.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height = 16, 16
        for _ in range(2):
            frame = av.VideoFrame(16, 16, "yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(PermanentError, match="no audio stream"):
        media.probe(path)


def test_longer_than_the_limit(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "long.wav", tone(3.0, 8000), 8000)
    assert media.probe(path, max_seconds=5).duration == pytest.approx(3.0)
    with pytest.raises(PermanentError, match=r"longer than the limit \(2 s\)"):
        media.probe(path, max_seconds=2)
