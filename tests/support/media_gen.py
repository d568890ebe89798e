"""Test audio made at test time: PyAV-encoded containers and an espeak-ng conversation."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000


def tone(seconds: float, rate: int, channels: int = 1) -> npt.NDArray[np.float32]:
    """A 440 Hz tone, shape (channels, samples)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.tile(mono, (channels, 1))


def encode(path: Path, samples: npt.NDArray[np.float32], rate: int, codec: str,
           container_format: str | None = None) -> Path:
    """Write (channels, samples) float audio to ``path`` with PyAV."""
    return encode_streams(path, [samples], rate, codec, container_format)


def encode_streams(path: Path, streams: list[npt.NDArray[np.float32]], rate: int, codec: str,
                   container_format: str | None = None) -> Path:
    """Write each (channels, samples) float array as an audio stream of ``path``."""
    frame_size = 960 if codec in ("libopus", "opus") else 1024
    layouts = ["mono" if samples.shape[0] == 1 else "stereo" for samples in streams]
    with av.open(str(path), mode="w", format=container_format) as out:
        # Every stream before the first packet: the container's header lists them all.
        outs = [out.add_stream(codec, rate=rate, layout=layout) for layout in layouts]
        for samples, stream, layout in zip(streams, outs, layouts, strict=True):
            assert isinstance(stream, av.AudioStream)
            pts = 0
            for start in range(0, samples.shape[1], frame_size):
                block = np.ascontiguousarray(samples[:, start:start + frame_size])
                frame = av.AudioFrame.from_ndarray(block.reshape(1, -1) if layout == "mono" else
                                                   block.T.reshape(1, -1).copy(),
                                                   format="flt", layout=layout)
                frame.sample_rate = rate
                frame.pts = pts
                frame.time_base = Fraction(1, rate)
                pts += block.shape[1]
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def write_wav(path: Path, samples: npt.NDArray[np.float32], rate: int) -> Path:
    """16-bit PCM WAV of (channels, samples) float audio, via the standard library."""
    pcm = (np.clip(samples.T, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


@dataclass(frozen=True)
class Line:
    speaker: str
    voice: list[str]  # espeak-ng options choosing the voice
    text: str


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str
    text: str


VOICES: dict[str, list[str]] = {
    # Pitch and speed set far apart: with closer settings segmentation-3.0 takes two of
    # these synthetic voices for one speaker.
    "alice": ["-v", "en-us+m3", "-p", "20", "-s", "150"],
    "bella": ["-v", "en-gb+f4", "-p", "90", "-s", "160"],
    "carl": ["-v", "en-us+klatt4", "-p", "50", "-s", "185"],
}

SCRIPT: list[tuple[str, str]] = [
    ("alice", "Good morning everyone, thank you for joining the planning meeting today."),
    ("bella", "Thanks for having me. I have prepared the budget numbers for the next quarter."),
    ("carl", "Before we start, could somebody share the agenda with the whole team please?"),
    ("alice", "Sure, the first item is the budget, and the second item is the hiring plan."),
    ("bella", "The budget looks healthy, but travel costs have grown more than expected."),
    ("carl", "I think we should reduce travel and meet online more often this year."),
    ("alice", "That sounds reasonable. Let us decide on the hiring plan next week then."),
    ("bella", "Agreed. I will send a short summary to everybody after this call."),
    ("carl", "Perfect, thank you both. Have a wonderful day and see you next week."),
]

_GAP_SECONDS = 1.2


def speak(path: Path, voice: list[str], text: str) -> Path:
    """``text`` spoken by espeak-ng with ``voice`` (its options), as a 16 kHz mono WAV."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", *voice, "-w", str(raw), text], check=True)
    # -R: sox dithers with a fixed seed, so the same text gives the same file (the
    # diarization benchmark reuses embeddings computed for a file of the same digest).
    subprocess.run(["sox", "-R", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                    str(path)], check=True)
    return path


def conversation(directory: Path,
                 script: list[tuple[str, str]] = SCRIPT) -> tuple[Path, list[Turn]]:
    """Speak ``script`` (voice, text) with the espeak-ng VOICES, join the clips with sox
    (with a short pause between turns) and return the WAV and its reference turns."""
    clips: list[Path] = []
    turns: list[Turn] = []
    t = 0.0
    silence = directory / "gap.wav"
    subprocess.run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(silence),
                    "trim", "0", str(_GAP_SECONDS)], check=True)
    for i, (speaker, text) in enumerate(script):
        clip = speak(directory / f"line{i}.wav", VOICES[speaker], text)
        with wave.open(str(clip), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
        turns.append(Turn(t, t + seconds, speaker, text))
        clips += [clip, silence]
        t += seconds + _GAP_SECONDS
    out = directory / "conversation.wav"
    subprocess.run(["sox", *map(str, clips), str(out)], check=True)
    return out, turns


#: What each voice says in its enrollment sample: none of SCRIPT's words in SCRIPT's order,
#: so a voiceprint is never made from the audio it is then evaluated on.
ENROLLMENT: dict[str, str] = {
    "alice": "My name is on the door of the third office. I usually arrive early, water "
             "the plants and read the news before anybody else comes in.",
    "bella": "Numbers are my favourite part of the job. Every spreadsheet tells a story "
             "if you look at it long enough, and I like finding that story.",
    "carl": "On weekends I ride my bicycle along the river, and in winter I build model "
            "ships in the garage while listening to the radio.",
}


def enrollment_sample(directory: Path, speaker: str, text: str | None = None) -> Path:
    """``speaker`` saying ``text`` (default: its ENROLLMENT), as a 16 kHz mono WAV."""
    return speak(directory / f"enroll-{speaker}.wav", VOICES[speaker],
                 text or ENROLLMENT[speaker])


def altered(source: Path, target: Path, effects: list[str]) -> Path:
    """``source`` through sox ``effects`` (e.g. ["pitch", "40"], ["tempo", "1.1"]), as a
    16 kHz mono WAV: the same voices, as another recording would give them."""
    subprocess.run(["sox", "-R", str(source), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                    str(target), *effects], check=True)
    return target
