"""Quantisation-aware training (Jacob et al. 2018, arXiv:1712.05877) with tfmot, then full-int8 conversion.

tfmot 0.8 quantises tf_keras models only, so the work runs in a subprocess with TF_USE_LEGACY_KERAS=1
(`export.qat_worker`), where keras_mlp builds the same layers under tf_keras. Weights cross as `.npz` in
`get_weights()` order, and the worker checks the rebuilt model's logits against the Keras 3 ones before
fine-tuning; after it, the worker converts the fine-tuned model to each QAT mode asked (`qat`; `qat_uint8` behind
`export.pixels.PixelNormalization`, raw pixels in) and returns its logits on each mode's gate images, the reference
the QAT file's parity is gated against (its accuracy is gated against the float model).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import NamedTuple

import numpy as np

from export.errors import ExportError
from export.modes import QAT_MODES

TRANSFER_TOLERANCE = 1e-4
"""Rebuild error allowed per unit of logit scale: float32 rounding alone differs by ~1e-7 of the logits' size
(0.001 at 1e4), so `transfer_tolerance` allows TRANSFER_TOLERANCE · max(1, max|logit|)."""


def transfer_tolerance(logits: np.ndarray) -> float:
    """Allowed max abs difference of the tf_keras rebuild's `logits`: relative to their scale, at least 1e-4."""
    return TRANSFER_TOLERANCE * max(1.0, float(np.max(np.abs(logits), initial=0.0)))


class QATResult(NamedTuple):
    """What `quantization_aware_training` returns."""

    files: dict[str, bytes]  # {mode: full-int8 file} for each of `modes`
    info: dict  # transfer check, epochs, learning rate, training time and history
    gate_logits: dict[str, np.ndarray]  # {mode: the fine-tuned (fake-quantised) model's logits on its gate images}


def check_qat_model(model) -> str:
    """The keras_mlp class name of `model`, or `ExportError`: both QAT engines rebuild the model from its config."""
    import keras_mlp
    cls = type(model).__name__
    if not isinstance(model, keras_mlp.MLPTrunk) or not hasattr(keras_mlp, cls):
        raise ExportError(f"QAT needs a keras_mlp model (both engines rebuild it from its config: under tf_keras for "
                          f"tfmot, with fake quantisation for keras); got "
                          f"{cls}. Export a generic model with the post-training modes (e.g. --modes int8).")
    return cls


def check_qat_request(model, modes, train_images, uint8_needs: dict) -> tuple[str, tuple]:
    """What both QAT engines check first: a keras_mlp model, QAT modes only, training images, and for `qat_uint8`
    every value of `uint8_needs` ({how to pass it: value}); the model's class name and the modes as a tuple."""
    cls, modes = check_qat_model(model), tuple(modes)
    if not modes or any(m not in QAT_MODES for m in modes):
        raise ExportError(f"QAT converts to {', '.join(QAT_MODES)} only, got modes {modes!r}.")
    if len(train_images) == 0:
        raise ExportError("QAT training data is empty.")
    if "qat_uint8" in modes and any(value is None for value in uint8_needs.values()):
        raise ExportError(f"Mode 'qat_uint8' takes raw pixels: pass {' and '.join(uint8_needs)}.")
    return cls, modes


def quantization_aware_training(model, train_images: np.ndarray, train_labels: np.ndarray,
                                calibration: np.ndarray, *, modes=("qat",), pixel_calibration: np.ndarray | None = None,
                                normalization=None, gate_images: dict[str, np.ndarray] | None = None, epochs: int = 3,
                                learning_rate: float = 1e-4, batch_size: int = 32, seed: int = 0,
                                progress: bool = True, timeout: float | None = None,
                                signature_batch: int | None = 1) -> QATResult:
    """One QAT fine-tune of a copy of `model`, converted to each of `modes`: the files, an info dict and the
    fine-tuned model's logits on each mode's `gate_images` (`QATResult`).

    `model` must be a keras_mlp model (its class rebuilds under tf_keras); it is not modified. `qat` (int8 I/O)
    calibrates on `calibration` (normalised images); `qat_uint8` takes raw pixels (`export.pixels`):
    `pixel_calibration` (0..255) and `normalization` (mean, std) are needed for it. `gate_images`: {mode: normalised
    images} the fine-tuned model is run on (for `qat_uint8`, its gate pixels normalised). `signature_batch` is the
    static batch of the files' signature (None: dynamic), as `to_tflite`'s `batch_size`.
    """
    cls, modes = check_qat_request(model, modes, train_images, {
        "pixel_calibration (0..255 images)": pixel_calibration, "normalization=(mean, std)": normalization})
    gate_images = {m: v for m, v in (gate_images or {}).items() if m in modes}
    with tempfile.TemporaryDirectory(prefix="keras_mlp_qat_") as tmp:
        check = np.asarray(train_images[:8], np.float32)
        check_logits = np.asarray(model(check, training=False))
        job = {"class": cls, "config": model.get_config(), "epochs": int(epochs),
               "learning_rate": float(learning_rate), "batch_size": int(batch_size), "seed": int(seed),
               "progress": bool(progress), "transfer_tolerance": transfer_tolerance(check_logits),
               "signature_batch": signature_batch, "modes": list(modes), "gate": list(gate_images),
               "normalization": None if normalization is None else [list(map(float, v)) for v in normalization]}
        with open(os.path.join(tmp, "job.json"), "w") as f:
            json.dump(job, f)
        np.savez(os.path.join(tmp, "weights.npz"), *model.get_weights())
        extra = {f"gate_{m}": np.asarray(v, np.float32) for m, v in gate_images.items()}
        if pixel_calibration is not None:
            extra["pixel_calibration"] = np.asarray(pixel_calibration, np.float32)
        np.savez(os.path.join(tmp, "data.npz"), train_images=np.asarray(train_images, np.float32),
                 train_labels=np.asarray(train_labels, np.int64), calibration=np.asarray(calibration, np.float32),
                 check_images=check, check_logits=check_logits, **extra)
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        done = subprocess.run([sys.executable, "-m", "export.qat_worker", tmp], env=env, timeout=timeout,
                              stdout=None if progress else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or "").strip().splitlines()[-15:])
            raise ExportError(f"QAT worker failed (exit {done.returncode}):\n{tail}")
        files = {}
        for mode in modes:
            with open(os.path.join(tmp, f"{mode}.tflite"), "rb") as f:
                files[mode] = f.read()
        with open(os.path.join(tmp, "info.json")) as f:
            info = json.load(f)
        gate_logits = {m: np.load(os.path.join(tmp, f"gate_{m}.npy")) for m in gate_images}
    return QATResult(files, info, gate_logits)
