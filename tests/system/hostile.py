"""Files that real users (and attackers) upload instead of audio."""

from __future__ import annotations

import enum
import io
import os
import random
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.media_gen import encode, tone, write_wav


class Kind(enum.Enum):
    """What the service may answer for an upload of each kind."""

    NOT_AUDIO = "not audio"  # refused (4xx), or a job that fails with a readable reason
    DAMAGED = "damaged"  # the same, or a completed job from whatever audio survived
    AUDIO = "audio"  # fine audio under a hostile name: accepted and completed


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    kind: Kind


def _riff(form: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = form + b"".join(tag + struct.pack("<I", len(data)) + data for tag, data in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ten_hour_wav() -> bytes:
    """A WAV whose header claims ten hours of 16 kHz audio, with one second of it."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    claimed = 10 * 3600 * 32000
    data = b"\0" * 32000
    return (b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVE" + b"fmt " +
            struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", claimed) + data)


def hls_in_avi(target: Path) -> bytes:
    """An AVI whose stream data is an HLS playlist naming a local file (the classic FFmpeg
    file-disclosure trick)."""
    playlist = (f"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n{target}\n"
                "#EXT-X-ENDLIST\n").encode()
    avih = struct.pack("<14I", 40000, 0, 0, 0x10, 1, 0, 1, 0, 16, 16, 0, 0, 0, 0)
    strh = b"txts" + b"\0" * 52
    strl = b"strl" + b"strh" + struct.pack("<I", len(strh)) + strh
    hdrl = b"hdrl" + b"avih" + struct.pack("<I", len(avih)) + avih + b"LIST" + \
        struct.pack("<I", len(strl)) + strl
    movi = b"movi" + b"00tx" + struct.pack("<I", len(playlist)) + playlist
    return _riff(b"AVI ", [(b"LIST", hdrl), (b"LIST", movi)])


def uploads(tmp: Path, canary: Path) -> list[Upload]:
    rng = random.Random(1)
    good_wav = write_wav(tmp / "good.wav", tone(1.0, 16000), 16000).read_bytes()
    encoded = {ext: encode(tmp / f"good.{ext}", tone(2.0, 48000, 2), 48000, codec, fmt)
               .read_bytes()
               for ext, codec, fmt in (("mp3", "libmp3lame", "mp3"), ("flac", "flac", "flac"),
                                       ("ogg", "libopus", "ogg"))}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("song.wav", good_wav)
    concat = f"ffconcat version 1.0\nfile '{canary}'\n".encode()
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{canary}\n#EXT-X-ENDLIST\n"
    files = [
        Upload("empty.wav", b"", Kind.NOT_AUDIO),
        *(Upload(f"random{i}.wav", rng.randbytes(size), Kind.NOT_AUDIO)
          for i, size in enumerate((1, 44, 512, 4096, 65536, 300_000))),
        *(Upload(f"cut{i}.wav", good_wav[:cut], Kind.DAMAGED)
          for i, cut in enumerate((12, 44, 1000))),
        *(Upload(f"cut{i}.{ext}", data[:cut], Kind.DAMAGED)
          for ext, data in encoded.items() for i, cut in enumerate((4, 200, len(data) // 2))),
        Upload("page.html", b"<!doctype html><html><body>hello</body></html>", Kind.NOT_AUDIO),
        Upload("report.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", Kind.NOT_AUDIO),
        Upload("song.zip", zipped.getvalue(), Kind.NOT_AUDIO),
        Upload("notes.wav", b"this is a text file, not audio\n" * 20, Kind.NOT_AUDIO),
        Upload("image.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(200), Kind.NOT_AUDIO),
        Upload("data.json", b'{"audio": false}', Kind.NOT_AUDIO),
        Upload("prog.elf", Path("/bin/true").read_bytes()[:20000], Kind.NOT_AUDIO),
        Upload("list.m3u8", hls.encode(), Kind.NOT_AUDIO),
        Upload("audio.m3u8.wav", hls.encode(), Kind.NOT_AUDIO),
        Upload("list.ffconcat", concat, Kind.NOT_AUDIO),
        Upload("concat.mp3", concat, Kind.NOT_AUDIO),
        Upload("movie.avi", hls_in_avi(canary), Kind.NOT_AUDIO),
        Upload("movie.wav", hls_in_avi(canary), Kind.NOT_AUDIO),
        Upload("file.sdp", b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
               b"m=audio 5004 RTP/AVP 0\n", Kind.NOT_AUDIO),
        # FFmpeg measures the data actually present (1 s), not the header's claim.
        Upload("long.wav", ten_hour_wav(), Kind.DAMAGED),
        Upload("a" * 300 + ".wav", good_wav, Kind.AUDIO),
        Upload("../../../../tmp/escape.wav", good_wav, Kind.AUDIO),
        Upload("..\\..\\windows.wav", good_wav, Kind.AUDIO),
        Upload("nul\x00byte.wav", good_wav, Kind.AUDIO),
        Upload("\u202egnp.wav", good_wav, Kind.AUDIO),
        Upload("spaces and ; quotes\".wav", good_wav, Kind.AUDIO),
        Upload("/etc/passwd", good_wav, Kind.AUDIO),
        Upload(".hidden.wav", good_wav, Kind.AUDIO),
        Upload("", good_wav, Kind.AUDIO),
        Upload("日本語の音声.wav", good_wav, Kind.AUDIO),
        *(Upload(f"noise{i}.mp3", os.urandom(2048), Kind.NOT_AUDIO) for i in range(4)),
        *(Upload(f"header{i}.wav", b"RIFF" + rng.randbytes(40 + i * 100), Kind.NOT_AUDIO)
          for i in range(4)),
        *(Upload(f"id3only{i}.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + rng.randbytes(64),
                 Kind.NOT_AUDIO) for i in range(2)),
        Upload("ogg-header.ogg", b"OggS" + rng.randbytes(100), Kind.NOT_AUDIO),
        Upload("flac-header.flac", b"fLaC" + rng.randbytes(100), Kind.NOT_AUDIO),
    ]
    return files
