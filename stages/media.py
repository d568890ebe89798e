"""Safe opening and probing of uploaded media with PyAV.

Shared by the gateway (which probes an upload before queueing it) and the decode stage, so
it depends on ``av`` and the standard library only: never on a model library.

FFmpeg will happily follow playlists (HLS), concat scripts, image sequences and network
URLs named *inside* a file; an upload must never make a worker read another file or reach
the network. Every container is therefore opened from a Python file object (no protocol is
ever parsed from the path) with a demuxer allow-list and a protocol allow-list, so a
playlist or script is refused before any file it names is opened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import msgspec

from pipeline.errors import PermanentError

# FFmpeg demuxer names (as in `ffmpeg -demuxers`). A demuxer whose name is a list, like
# "mov,mp4,m4a,3gp,3g2,mj2", is allowed when any of its names is listed.
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "wav", "w64", "aiff", "caf",
    "mp3", "aac", "flac", "ogg",
    "mov", "mp4", "m4a",
    "matroska", "webm",
)

# Nested opens (which the allowed demuxers do not make) may only use local files anyway.
_OPEN_OPTIONS: dict[str, str] = {
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "protocol_whitelist": "file",
}


class NoSuchStream(PermanentError):
    """The job's ``audio_stream`` is not one of the file's audio streams."""


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the container header says about one of an upload's audio streams."""

    format: str
    duration: float | None  # seconds; None when the header does not tell
    sample_rate: int
    channels: int
    audio_streams: int = 1  # how many the file has


@contextlib.contextmanager
def open_audio(path: Path, stream: int | None = None,
               ) -> Iterator[tuple[av.container.InputContainer, av.audio.AudioStream]]:
    """Open ``path`` with the allow-lists; yield the container and its audio stream number
    ``stream`` (counted among the audio streams; None: the first).

    Raises PermanentError when the file is no allowed audio container or has no audio,
    NoSuchStream when it has no audio stream ``stream``.
    """
    with path.open("rb") as raw:
        try:
            container = av.open(raw, mode="r", container_options=_OPEN_OPTIONS)
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise PermanentError("not an audio file (unsupported or corrupt format)") from exc
        with container:
            streams = container.streams.audio
            if not streams:
                raise PermanentError("no audio stream in the file")
            if stream is not None and stream >= len(streams):
                raise NoSuchStream(
                    f"audio_stream={stream}, but the file has {len(streams)} audio "
                    f"stream{'s' if len(streams) > 1 else ''}: use 0"
                    + (f" to {len(streams) - 1}" if len(streams) > 1 else ""))
            yield container, streams[stream or 0]


def stream_warning(container: av.container.InputContainer, stream: av.audio.AudioStream,
                   chosen: int | None) -> str | None:
    """What a result should say when the file had other audio streams than the one used
    and the job did not choose it (a recording with one track per language or person)."""
    streams = container.streams.audio
    if len(streams) < 2 or chosen is not None:
        return None
    others = ", ".join(_describe(i, s) for i, s in enumerate(streams) if s is not stream)
    return (f"the file has {len(streams)} audio streams; only the first, "
            f"{_describe(0, stream)}, was transcribed (the others: {others}); choose "
            "another with audio_stream")


def _describe(index: int, stream: av.audio.AudioStream) -> str:
    language = stream.metadata.get("language")
    title = stream.metadata.get("title")
    label = ", ".join(x for x in (language, title) if x and x != "und")
    return f"{index}" + (f" ({label})" if label else "")


def duration_of(container: av.container.InputContainer,
                stream: av.audio.AudioStream) -> float | None:
    """The duration the header claims, in seconds, or None."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def probe(path: Path, max_seconds: float | None = None,
          stream_number: int | None = None) -> MediaInfo:
    """Read the header of ``path`` and describe its audio stream ``stream_number`` (counted
    among the audio streams; None: the first).

    Raises PermanentError when it is not an allowed audio file, has no such audio stream,
    or its header claims more than ``max_seconds``.
    """
    with open_audio(path, stream_number) as (container, stream):
        duration = duration_of(container, stream)
        info = MediaInfo(
            format=container.format.name,
            duration=duration,
            sample_rate=stream.codec_context.sample_rate or stream.rate or 0,
            channels=stream.codec_context.channels or 0,
            audio_streams=len(container.streams.audio),
        )
    check_duration(info.duration, max_seconds)
    return info


def check_duration(seconds: float | None, max_seconds: float | None,
                   too_long: str | None = None) -> None:
    """Raise PermanentError (``too_long``, or a default message) past ``max_seconds``."""
    if seconds is not None and max_seconds is not None and seconds > max_seconds:
        raise PermanentError(too_long or f"the audio is longer than the limit "
                             f"({max_seconds:g} s)")
