"""The offline diarization's models (segmentation-3.0, CAM++) run by ONNX Runtime on the CPU.

A model is exported with torch.onnx the first time it is needed, into the models' cache
(:func:`stages.models.cache_dir`), under a name that says which weights it holds; every
load then checks the exported model against the torch one on fixed inputs before it is
used. Any failure, of the export, of ONNX Runtime or of that check, leaves the torch model
in use, with a log line: the result is then the same, only slower.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

log = logging.getLogger(__name__)

# ONNX Runtime fuses and reorders float32 operations, so its outputs differ from torch's
# in the last bits; these bound that, far below what moves a diarization.
MIN_COSINE = 0.9999
MAX_RELATIVE_DIFF = 1e-3
_OPSET = 17

Run = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


def exported(module: torch.nn.Module, example: torch.Tensor, path: Path,
             dynamic_axes: dict[int, str]) -> Path:
    """``path``, exported from ``module`` (one input, one output) unless already there.

    Written beside it and renamed, so a crash or a concurrent worker never leaves a
    truncated file under the name.
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        torch.onnx.export(module, (example,), str(tmp), input_names=["input"],
                          output_names=["output"], opset_version=_OPSET, dynamo=False,
                          dynamic_axes={"input": dynamic_axes, "output": {0: "batch"}})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def session(path: Path, threads: int) -> Run:
    """A function running the model in ``path`` with ONNX Runtime on ``threads`` threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # The inputs' lengths change call after call: a memory plan made for one length is
    # wasted on the next.
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    # Its threads would otherwise spin for work after each call, taking the cores from
    # torch's threads in the steps between and from the other stage's worker.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    loaded = onnxruntime.InferenceSession(str(path), options,
                                          providers=["CPUExecutionProvider"])

    def run(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = loaded.run(None, {"input": x})[0]
        return out

    return run


def agrees(reference: Callable[[torch.Tensor], torch.Tensor], run: Run,
           inputs: Sequence[torch.Tensor], log_probabilities: bool = False) -> str | None:
    """None when ``run`` gives ``reference``'s outputs on every input (within MIN_COSINE
    and MAX_RELATIVE_DIFF), else what differs. Log-probabilities are compared as
    probabilities: a class at -15 in one and -19 in the other is the same unlikely class."""
    for x in inputs:
        want = reference(x).detach().numpy().reshape(x.shape[0], -1).astype(np.float64)
        got = run(x.numpy()).reshape(x.shape[0], -1).astype(np.float64)
        if log_probabilities:
            want, got = np.exp(want), np.exp(got)
        if got.shape != want.shape:
            return f"output shape {got.shape}, not {want.shape}"
        cosine = np.sum(want * got, axis=1) / (
            np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
        diff = np.max(np.abs(want - got)) / max(float(np.max(np.abs(want))), 1e-12)
        if not np.all(cosine >= MIN_COSINE) or diff > MAX_RELATIVE_DIFF:
            return (f"input {tuple(x.shape)}: cosine {float(np.min(cosine)):.6f}, max "
                    f"difference {diff:.2e} of the largest output")
    return None


def faster(name: str, export: Callable[[], Path],
           reference: Callable[[torch.Tensor], torch.Tensor],
           checks: Sequence[torch.Tensor], threads: int,
           log_probabilities: bool = False) -> Run | None:
    """The model that ``export`` writes (see :func:`exported`), run by ONNX Runtime if it
    gives what ``reference`` (the model as torch runs it) gives on ``checks``; None to keep
    torch (see the module's doc)."""
    try:
        with torch.inference_mode(False), torch.no_grad():
            path = export()
            run = session(path, threads)
            differs = agrees(reference, run, checks, log_probabilities)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the torch model in use
        log.warning("%s stays on torch: ONNX Runtime could not run it (%s: %s)",
                    name, type(exc).__name__, exc)
        return None
    if differs is not None:
        log.warning("%s stays on torch: ONNX Runtime's outputs differ from torch's (%s)",
                    name, differs)
        return None
    log.info("%s runs on ONNX Runtime (%s)", name, path)
    return run




def run_forward(name: str, model: torch.nn.Module, example: torch.Tensor, path: Path,
                dynamic_axes: dict[int, str], checks: Sequence[torch.Tensor],
                threads: int, log_probabilities: bool = False) -> bool:
    """Have ``model``'s forward run by ONNX Runtime (see :func:`faster`); False, and the
    model left as it was, when it cannot be."""
    # Checked against the model as it runs in inference. pyannote's Model.from_pretrained
    # returns it in training mode, its LSTM's dropout on: checked that way, torch's own
    # outputs were random, 3-5 % of a probability away from the export's (2026-12-04).
    model.eval()
    run = faster(name, lambda: exported(model, example, path, dynamic_axes), model, checks,
                 threads, log_probabilities)
    if run is None:
        return False

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(run(x.to(torch.float32).contiguous().numpy()))

    # An instance attribute: torch's __call__ still runs the model's hooks around it (the
    # 16-bit samples' conversion, the benchmark's timers).
    model.forward = forward
    return True
