"""Parity gate: run a TFLite file with `ai_edge_litert` (XNNPACK) and compare it with the float Keras model.

Figures: max/mean absolute logit error, mean cosine similarity, top-1 agreement (the float top-1 class is among
the file's highest logits, so a tie on the quantised output grid is not a flip) and, with labels, accuracy of
both. Default thresholds per mode follow issue 4 (float32 max abs ≤ 1e-4 and 100% agreement; float16 ≥ 99.5%;
quantised ≥ 98% agreement and accuracy within 1 point of float; QAT, a fine-tuned model, accuracy within 1 point
when labels are known, else ≥ 98% agreement). A NaN/inf TFLite logit always fails the gate;
NaN/inf float logits are an error (the float model itself is broken).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from export.convert import ExportError

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "float32": {"max_abs": 1e-4, "agreement": 1.0},
    "float16": {"agreement": 0.995},
    **{m: {"agreement": 0.98, "accuracy_drop": 0.01}
       for m in ("dynamic", "int8", "int8_uint8", "int8_float_io", "int16x8")},
    # QAT fine-tunes, so its predictions may legitimately move away from the float model's (fixing some of its
    # errors): with labels it is gated on accuracy alone, without them on agreement (`QAT_UNLABELLED`).
    "qat": {"accuracy_drop": 0.01},
    "qat_uint8": {"accuracy_drop": 0.01},
}
QAT_UNLABELLED = {"agreement": 0.98}
THRESHOLD_KEYS = ("max_abs", "mean_abs", "cosine", "agreement", "accuracy_drop")
FRACTION_KEYS = ("cosine", "agreement")  # in [0, 1]; the others are >= 0


def check_limits(mode: str, limits: dict | None) -> dict[str, float]:
    """One mode's threshold overrides, checked (known mode and keys, finite values in range), else `ExportError`."""
    if mode not in DEFAULT_THRESHOLDS:
        raise ExportError(f"Thresholds for unknown mode {mode!r}: choose from {', '.join(DEFAULT_THRESHOLDS)}.")
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise ExportError(f"Thresholds of {mode!r} must be a dict {{key: value}}, got {type(limits).__name__}.")
    checked = {}
    for key, value in limits.items():
        if key not in THRESHOLD_KEYS:
            raise ExportError(f"Unknown threshold {mode}.{key}: the keys are {', '.join(THRESHOLD_KEYS)}.")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value):
            raise ExportError(f"Threshold {mode}.{key} must be a finite number, got {value!r}.")
        if key in FRACTION_KEYS and not 0 <= value <= 1:
            raise ExportError(f"Threshold {mode}.{key}={value} is out of range: use a fraction in [0, 1], e.g. 0.98.")
        if value < 0:
            raise ExportError(f"Threshold {mode}.{key}={value} is out of range: use a value >= 0.")
        checked[key] = float(value)
    return checked


def check_thresholds(thresholds: dict | None) -> dict[str, dict[str, float]]:
    """`{mode: {key: value}}` overrides checked by `check_limits`, else `ExportError`."""
    if thresholds is None:
        return {}
    if not isinstance(thresholds, dict):
        raise ExportError(f"thresholds must be a dict {{mode: {{key: value}}}}, got {type(thresholds).__name__}.")
    return {mode: check_limits(mode, limits) for mode, limits in thresholds.items()}


def check_reference(reference: np.ndarray) -> np.ndarray:
    """Float Keras logits as a finite (images, classes) array, else `ExportError` (the float model is broken)."""
    reference = np.asarray(reference)
    if reference.ndim != 2:
        raise ExportError(f"Parity compares (images, classes) logits; the float model gives shape {reference.shape}. "
                          "Export a classifier with a 2-D (batch, classes) output.")
    bad = int(np.sum(~np.isfinite(reference).all(axis=1)))
    if bad:
        raise ExportError(f"The float Keras model's own logits are NaN/inf on {bad} of {len(reference)} images: the "
                          "model (or its input normalisation) is broken. Fix it before exporting.")
    return reference


@dataclasses.dataclass
class ParityReport:
    """Outcome of the gate for one file; `passed` is False with the reasons in `failures`."""

    mode: str
    num_images: int
    max_abs: float | None  # None: no finite TFLite logits to measure
    mean_abs: float | None
    cosine: float | None
    agreement: float
    float_accuracy: float | None
    tflite_accuracy: float | None
    thresholds: dict
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if not scale:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    return q.astype(np.float32) if not scale else (q.astype(np.float32) - zero) * scale


def interpreter(flatbuffer: bytes, num_threads: int | None = None):
    """An `ai_edge_litert` Interpreter (XNNPACK on by default) with tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter
    try:
        it = Interpreter(model_content=flatbuffer, num_threads=num_threads)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"Not a valid TFLite model ({err}). Re-export it with keras-mlp-export.") from err
    it.allocate_tensors()
    return it


def run_tflite(flatbuffer: bytes, images: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Float logits of `images` (N, H, W, C, normalised float) through the TFLite model; I/O (de)quantised.

    Works for static batch-1 and dynamic-batch signatures (the latter resized to the full batch).
    """
    it = interpreter(flatbuffer, num_threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    images = np.asarray(images, np.float32)
    if tuple(inp["shape"][1:]) != images.shape[1:]:
        raise ExportError(f"TFLite model expects images of shape {tuple(int(v) for v in inp['shape'][1:])}, got "
                          f"{images.shape[1:]}. Load the data at the model's image size.")
    if inp["shape_signature"][0] == -1 and len(images) > 0:
        it.resize_tensor_input(inp["index"], [len(images), *inp["shape"][1:]])
        it.allocate_tensors()
        it.set_tensor(inp["index"], _quantize(images, inp))
        it.invoke()
        return _dequantize(it.get_tensor(out["index"]), out)
    batch = int(inp["shape"][0])
    results = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        it.set_tensor(inp["index"], _quantize(chunk, inp))
        it.invoke()
        results.append(_dequantize(it.get_tensor(out["index"]), out)[: batch - pad])
    return np.concatenate(results)


def compare(reference: np.ndarray, logits: np.ndarray, labels: np.ndarray | None, mode: str,
            thresholds: dict | None = None) -> ParityReport:
    """Parity figures of `logits` against the float `reference` and the failures against the thresholds.

    Any NaN/inf TFLite logit fails the gate (those images count as disagreeing and wrong; the error figures are
    over the finite ones). A non-finite `reference` raises `ExportError`.
    """
    overrides = check_limits(mode, thresholds)
    qat = mode in ("qat", "qat_uint8")
    limits = {**(QAT_UNLABELLED if qat and labels is None else DEFAULT_THRESHOLDS[mode]), **overrides}
    reference = check_reference(reference).astype(np.float64)
    logits = np.asarray(logits, np.float64)
    if logits.shape != reference.shape:
        raise ExportError(f"TFLite logits have shape {logits.shape}, the float model's {reference.shape}: the file "
                          "is not this model's export. Gate it against the model it was exported from.")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(reference):
            raise ExportError(f"{len(labels)} labels for {len(reference)} images: pass one label per image.")
    finite = np.isfinite(logits).all(axis=1)
    ref, out = reference[finite], logits[finite]
    max_abs = mean_abs = cosine = None
    if finite.any():
        diff = np.abs(ref - out)
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
        cos = np.where(norms > 0, np.sum(ref * out, axis=1) / np.maximum(norms, 1e-30),
                       np.all(diff == 0, axis=1).astype(np.float64))
        max_abs, mean_abs, cosine = float(diff.max()), float(diff.mean()), float(cos.mean())
    # The float top-1 class is also the file's top-1, ties included: an int8 output grid can round two logits
    # to the same value, and argmax would then "flip" to whichever comes first.
    ref_top = reference.argmax(1)
    agrees = np.zeros(len(reference), bool)
    agrees[finite] = out[np.arange(len(out)), ref_top[finite]] >= out.max(1)
    agreement = float(np.mean(agrees))
    float_acc = tflite_acc = None
    if labels is not None:
        float_acc = float(np.mean(ref_top == labels))
        tflite_acc = float(np.mean(finite & (np.where(finite[:, None], logits, 0).argmax(1) == labels)))
    report = ParityReport(mode, len(reference), max_abs, mean_abs, cosine, agreement, float_acc, tflite_acc,
                          limits, [])
    if not finite.all():
        report.failures.append(f"non-finite TFLite logits (NaN/inf) on {int(np.sum(~finite))} of {len(finite)} "
                               "images")
    if "max_abs" in limits and max_abs is not None and max_abs > limits["max_abs"]:
        report.failures.append(f"max abs logit error {max_abs:.3g} > {limits['max_abs']:.3g}")
    if "mean_abs" in limits and mean_abs is not None and mean_abs > limits["mean_abs"]:
        report.failures.append(f"mean abs logit error {mean_abs:.3g} > {limits['mean_abs']:.3g}")
    if "cosine" in limits and cosine is not None and cosine < limits["cosine"]:
        report.failures.append(f"cosine {cosine:.5f} < {limits['cosine']}")
    if "agreement" in limits and agreement < limits["agreement"]:
        report.failures.append(f"top-1 agreement {agreement:.2%} < {limits['agreement']:.2%}")
    if "accuracy_drop" in limits and float_acc is not None and float_acc - tflite_acc > limits["accuracy_drop"]:
        report.failures.append(f"accuracy {tflite_acc:.2%} is more than {limits['accuracy_drop']:.2%} below "
                               f"float {float_acc:.2%}")
    return report


def keras_logits(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Float reference logits of the Keras model, in inference mode."""
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)])


def check_parity(model, flatbuffer: bytes, images: np.ndarray, labels: np.ndarray | None = None, *,
                 mode: str = "float32", thresholds: dict | None = None, reference: np.ndarray | None = None,
                 num_threads: int | None = None) -> ParityReport:
    """Gate `flatbuffer` against the float Keras `model` on held-out `images` (and `labels` when known).

    `thresholds` overrides the mode's defaults (keys: max_abs, mean_abs, cosine, agreement, accuracy_drop);
    `reference` reuses precomputed float logits.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ExportError(f"Parity needs a non-empty (N, H, W, C) image array, got shape {images.shape}.")
    check_limits(mode, thresholds)
    ref = check_reference(keras_logits(model, images) if reference is None else reference)
    return compare(ref, run_tflite(flatbuffer, images, num_threads), labels, mode, thresholds)


def float32_roundtrip(model, images: np.ndarray, **kwargs) -> tuple[bytes, np.ndarray]:
    """One call for model tests: convert to float32 TFLite (built-in ops only, batch 1) and run `images`.

    Returns (flatbuffer, tflite logits); compare the logits with `model(images)`.
    """
    from export.convert import to_tflite
    flatbuffer = to_tflite(model, "float32", progress=False, **kwargs)
    return flatbuffer, run_tflite(flatbuffer, images)
