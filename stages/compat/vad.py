"""whisperx's pyannote voice activity detection, run so that long audio costs no more memory
than short audio, as fast as whisperx runs it, and with progress.

whisperx runs it over the whole audio before Whisper decodes anything: 5 s windows every
0.5 s, 32 windows per batch, on every core. Measured on the CPU (2 cores):

- Memory: a batch's buffers (about 200 MB) left freed memory glibc kept and could not
  reuse, more the longer the audio: the detection's peak was 250 MB above the audio at
  1 min and 480-690 MB at 30 min. In batches of 8 that hand freed memory back
  (:class:`pipeline.allocator.GiveBackEvery`) it was 100 and 110 MB.
- Speed: CTranslate2 calls the OpenMP runtime torch loaded, and once Whisper has run, that
  runtime has two thread pools (torch's and CTranslate2's), more threads than cores, and its
  idle threads sleep rather than spin. Each of the detection's parallel steps then waits
  for a thread to wake: 5 min of audio took 17 s in batches of 8 instead of 7 s, and 11.6 s
  in whisperx's batches of 32. On one thread, in batches of 8, it took 10 s, and the whole
  stage as long as with whisperx's setting.

The speech scores are the same: each window is computed alone whatever the batch. It also
takes the transcribe stage's 16-bit samples (:class:`stages.audio.Pcm16Samples`), which its
model scales to float32 one window at a time, exactly as whisperx's float32 audio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from whisperx.vads import Pyannote

from pipeline import allocator
from stages import audio, compat

#: Windows per batch.
BATCH_SIZE = 8
# whisperx's defaults for the pyannote VAD.
_ONSET = 0.500
_OFFSET = 0.363


class SpeechDetector(Pyannote):  # type: ignore[misc] # whisperx is untyped
    """whisperx's ``Pyannote`` VAD (a drop-in ``vad_model``), on one thread in batches of
    :data:`BATCH_SIZE`, handing freed memory back as it goes, reporting its progress to
    the callback given by :meth:`reporting`, and taking 16-bit samples as well."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device, token=None, model_fp=str(compat.whisperx.vad_checkpoint()),
                         vad_onset=_ONSET, vad_offset=_OFFSET)
        # The sliding-window inference whisperx's pipeline runs, called here directly
        # because only it takes a per-batch hook (the pipeline does not pass one on).
        self._inference = compat.pyannote.segmentation_inference(self.vad_pipeline)
        self._inference.batch_size = BATCH_SIZE
        audio.accept_pcm16(self._inference.model)
        self._progress: Callable[[float], None] | None = None

    @staticmethod
    def preprocess_audio(samples: Any) -> torch.Tensor:
        """The waveform whisperx hands to :meth:`__call__`: :class:`stages.audio.Pcm16Samples`
        stay 16-bit (the model scales each window as it comes), anything else as whisperx's."""
        if isinstance(samples, audio.Pcm16Samples):
            return torch.from_numpy(samples.pcm16).unsqueeze(0)
        waveform: torch.Tensor = Pyannote.preprocess_audio(samples)
        return waveform

    @contextlib.contextmanager
    def reporting(self, progress: Callable[[float], None]) -> Iterator[None]:
        """Within the block, detection calls ``progress(fraction done)`` after each batch
        (it may raise to stop the detection, as JobContext.progress does on cancellation)."""
        self._progress = progress
        try:
            yield
        finally:
            self._progress = None

    def __call__(self, file: Any, **kwargs: Any) -> Any:
        give_back = allocator.GiveBackEvery()

        def hook(completed: int, total: int, **_: Any) -> None:
            give_back()
            if self._progress is not None and total:
                self._progress(min(completed / total, 1.0))

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._inference(file, hook=hook)
        finally:
            torch.set_num_threads(threads)
