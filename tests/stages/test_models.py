"""Model resolution, the one-time reassembly of the bundled Whisper base model, and the
offline diarization pipeline's batches."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from pipeline.errors import PermanentError
from stages import catalog, models
from stages.settings import Settings


def test_base_is_reassembled_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = models.bundled_base_dir()
    model_bin = directory / "model.bin"
    assert model_bin.stat().st_size == models.BASE_MODEL_BYTES
    assert {p.name for p in directory.iterdir()} == {
        "model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    written = model_bin.stat().st_mtime_ns
    assert models.bundled_base_dir() == directory
    assert model_bin.stat().st_mtime_ns == written  # reused, not rewritten


def test_truncated_base_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_bin = models.bundled_base_dir() / "model.bin"
    with model_bin.open("r+b") as f:
        f.truncate(1000)
    assert (models.bundled_base_dir() / "model.bin").stat().st_size == models.BASE_MODEL_BYTES


def test_whisper_sources(tmp_path: Path, settings: Settings) -> None:
    assert (Path(models.whisper_source("tiny.en", settings)) / "model.bin").is_file()
    # a hub size name, downloaded online
    assert models.whisper_source("small", settings) == "small"
    (tmp_path / "model.bin").write_bytes(b"")
    # A local folder by path: only as the operator's WHISPER_MODEL.
    operator = msgspec.structs.replace(settings, whisper_model=str(tmp_path))
    assert models.whisper_source(str(tmp_path), operator) == str(tmp_path)
    with pytest.raises(PermanentError, match="unknown Whisper model"):
        models.whisper_source(str(tmp_path), settings)
    with pytest.raises(PermanentError, match="unknown Whisper model"):
        models.whisper_source("/etc", settings)
    # By name under MODELS_DIR.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.bin").write_bytes(b"")
    local = msgspec.structs.replace(settings, models_dir=str(tmp_path))
    assert models.whisper_source("mine", local) == str(tmp_path / "mine")


@pytest.mark.models
def test_hub_size_name_offline_is_a_permanent_error(monkeypatch: pytest.MonkeyPatch,
                                                    settings: Settings) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PermanentError, match="not available offline"):
        models.whisper("large-v3-turbo", msgspec.structs.replace(settings, device="cpu"))


@pytest.mark.models
def test_models_are_cached(settings: Settings) -> None:
    cpu = msgspec.structs.replace(settings, device="cpu")
    first = models.whisper("tiny.en", cpu)
    bundled = str(Path(models.whisper_source("tiny.en", cpu)))
    assert models.whisper(bundled, msgspec.structs.replace(cpu, whisper_model=bundled)) is first
    assert models.diarization(settings) is models.diarization(settings)


@pytest.mark.models
def test_cpu_threads_are_what_the_model_stages_compute_with(settings: Settings) -> None:
    """CPU_THREADS sets PyTorch's threads when a model stage is set up (a process-wide
    setting), and the Whisper model's own: a model of its own in the cache."""
    import torch

    from stages.diarize import DiarizeStage
    from stages.transcribe import TranscribeStage

    default = torch.get_num_threads()
    one = msgspec.structs.replace(settings, cpu_threads=1, whisper_model="tiny.en")
    try:
        for stage in (DiarizeStage(), TranscribeStage()):
            torch.set_num_threads(default)
            stage.setup(one)
            assert torch.get_num_threads() == 1
        stage.setup(msgspec.structs.replace(one, cpu_threads=None))
        assert torch.get_num_threads() == 1  # unset: left as it is
    finally:
        torch.set_num_threads(default)
    cpu = msgspec.structs.replace(settings, device="cpu")
    assert models.whisper("tiny.en", msgspec.structs.replace(cpu, cpu_threads=1)) is not (
        models.whisper("tiny.en", cpu))


@pytest.mark.models
def test_diarization_batches_change_speed_not_results(settings: Settings) -> None:
    """The offline pipeline's batch sizes were chosen for speed (benchmark diarization):
    one window and one row per batch must give the same scores, embeddings and speakers."""
    import numpy as np
    import torch

    from stages import audio
    from stages.diarize import diarize
    from tests.support.audio import sample_wav

    loaded = models.diarization(settings)
    pipeline = loaded.model
    assert (pipeline.segmentation_batch_size, pipeline.embedding_batch_size) == (
        models.SEGMENTATION_BATCH_SIZE, models.EMBEDDING_BATCH_SIZE)
    samples = torch.from_numpy(audio.load(sample_wav())).unsqueeze(0)
    runs = []
    with loaded.lock, torch.inference_mode():
        try:
            for sizes in ((models.SEGMENTATION_BATCH_SIZE, models.EMBEDDING_BATCH_SIZE), (1, 1)):
                pipeline.segmentation_batch_size, pipeline.embedding_batch_size = sizes
                output, computed = diarize(pipeline, {"waveform": samples, "sample_rate": 16_000},
                                           {}, lambda *_: None)
                assert computed is not None
                runs.append((output, computed))
        finally:
            pipeline.segmentation_batch_size = models.SEGMENTATION_BATCH_SIZE
            pipeline.embedding_batch_size = models.EMBEDDING_BATCH_SIZE
    (batched, batched_inputs), (single, single_inputs) = runs
    np.testing.assert_allclose(batched_inputs.segmentations.data,
                               single_inputs.segmentations.data, atol=1e-5)
    np.testing.assert_allclose(batched_inputs.embeddings, single_inputs.embeddings, atol=1e-5)
    assert (list(batched.speaker_diarization.itertracks(yield_label=True))
            == list(single.speaker_diarization.itertracks(yield_label=True)))


def test_out_of_memory_is_transient() -> None:
    from pipeline.errors import TransientError

    # A device running out of memory cannot be provoked on a CPU test machine: raise the
    # errors torch and CTranslate2 raise.
    for fault in (MemoryError(), RuntimeError("CUDA failed with error out of memory")):
        with pytest.raises(TransientError), models.out_of_memory_is_transient():
            raise fault
    with pytest.raises(RuntimeError, match="other"), models.out_of_memory_is_transient():
        raise RuntimeError("other")


def _counted_aligner_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    import whisperx

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_aligner_failures", {})
    attempts: list[object] = []
    real_load = whisperx.load_align_model

    def counted(**kwargs: object) -> object:
        attempts.append(kwargs)
        return real_load(**kwargs)

    monkeypatch.setattr(whisperx, "load_align_model", counted)
    return attempts


def test_failed_aligner_is_not_retried_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Online, a language whisperx has no aligner for fails for real (and at once).
    attempts = _counted_aligner_loads(monkeypatch)
    online = Settings(device="cpu", hf_token="hf_test")
    assert models.aligner("xx", online) is None
    assert models.aligner("xx", online) is None
    assert len(attempts) == 1  # the second job did not try again
    monkeypatch.setattr(models, "ALIGNER_RETRY_SECONDS", 0.0)
    assert models.aligner("xx", online) is None
    assert len(attempts) == 2  # once the wait is over, it does


def test_no_aligner_download_is_tried_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default configuration has no network: English has an aligner, but fetching it
    # would only fail after building the model.
    attempts = _counted_aligner_loads(monkeypatch)
    assert models.aligner("en", Settings(device="cpu")) is None
    assert attempts == []


def test_whisper_batch_size_is_the_setting_else_by_device() -> None:
    from stages.transcribe import CPU_BATCH_SIZE, batch_size

    assert batch_size(Settings(device="cpu")) == CPU_BATCH_SIZE
    assert batch_size(Settings(device="cpu", whisper_batch_size=8)) == 8


def test_allocator_defaults_leave_an_operators_choice_alone() -> None:
    import subprocess
    import sys

    show = "import os, stages.compat; print(os.environ['MKL_DISABLE_FAST_MM'])"
    env = {k: v for k, v in os.environ.items() if k != "MKL_DISABLE_FAST_MM"}
    assert subprocess.run([sys.executable, "-c", show], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == "1"
    env["MKL_DISABLE_FAST_MM"] = "0"
    assert subprocess.run([sys.executable, "-c", show], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == "0"


def test_the_catalog_agrees_with_faster_whisper(settings: Settings) -> None:
    """The gateway reads the hub sizes and languages from stages.catalog, without
    faster-whisper: they must be the library's."""
    from faster_whisper import tokenizer, utils

    assert catalog.HUB_SIZES == utils._MODELS  # the only table of its repositories
    assert list(catalog.HUB_SIZES) == utils.available_models()
    assert tuple(tokenizer._LANGUAGE_CODES) == catalog.LANGUAGES
    # The bundled tiny.en is English-only by its vocabulary too, as a local folder.
    folder = Path(models.whisper_source("tiny.en", settings))
    found = catalog.find(str(folder), msgspec.structs.replace(settings, whisper_model=str(folder)))
    assert found is not None and found.english_only and found.languages == ("en",)
