"""The parity gate: a `.tflite` file against the Keras model it was exported from, on held-out images.

With z the reference logits (images × classes) and o the file's, run through `export.litert`:
- **relative error**: `max_rel = max|o - z| / scale` and `mean_rel` likewise, with `scale` the standard deviation of
  z over all images and classes, so that one bound fits logits of size 1 and of size 100;
- **cosine**: the mean over images of cos(o_i - mean(o_i), z_i - mean(z_i)) (centred per image: softmax ignores a
  shift, so a constant offset neither helps nor hurts);
- **agreement**: the share of images whose top-1 is the float top-1. A flip is forgiven only where the float
  model's own top-1 margin (its top-1 minus its top-2 logit, / scale) is within the file's measured error: twice
  its typical error `typical_rel` (the median over images of max_c|o - z| / scale; twice, as two logits move),
  capped by the mode's `flip_margin`, the largest such band measured in calibration. An exact tie on the file's
  output grid is a flip like any other;
- **accuracy** (whenever labels are given): the file's top-1 accuracy at most `accuracy_drop` below the float
  model's, plus one image per forgiven flip.
Degenerate output fails outright: logits that hardly vary across images (their spread, the mean over classes of
the standard deviation over images of the per-image-centred logits, below `DEGENERATE_SPREAD` of the float
model's), as does any NaN/inf logit. An integer mode fails with a float compute op left in its graph, every mode
with a non-built-in (Flex/custom) op.

A QAT file (qat, qat_uint8) is compared with the fine-tuned QAT model it was converted from (`reference`) and
scored for accuracy against the float model (`accuracy_reference`). A raw-pixel file (int8_uint8, qat_uint8) is
fed the images' 8-bit pixels and compared with the model on those pixels normalised (`export.pipeline.gate_feed`),
so both see the same image. The default thresholds per mode were calibrated on all four
families (`benchmarks/gate_calibration.py`; the measurements are in export/README.md).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from export import litert
from export.errors import ExportError
from export.modes import INTEGER_COMPUTE, MODES, PIXEL_MODES

MIN_GATE_IMAGES = 32
"""Fewest held-out images the gate accepts: below it one flip is over 3% of the agreement and the spread and
cosine figures rest on too few samples."""
DEGENERATE_SPREAD = 0.01
"""Output whose spread across images is below this fraction of the float model's is degenerate (fails outright)."""
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {  # calibrated: export/README.md, benchmarks/gate_calibration.py
    "float32": {"max_rel": 1e-4, "mean_rel": 1e-5, "cosine": 0.99999, "flip_margin": 1e-5, "agreement": 1.0,
                "accuracy_drop": 0.0},
    "float16": {"max_rel": 0.02, "mean_rel": 0.002, "cosine": 0.9999994, "flip_margin": 0.003, "agreement": 0.995,
                "accuracy_drop": 0.005},
    "dynamic": {"max_rel": 0.2, "mean_rel": 0.03, "cosine": 0.9995, "flip_margin": 0.07, "agreement": 0.98,
                "accuracy_drop": 0.01},
    **{mode: {"max_rel": 3.0, "mean_rel": 0.2, "cosine": 0.97, "flip_margin": 0.7, "agreement": 0.98,
              "accuracy_drop": 0.01} for mode in ("int8", "int8_float_io")},
    "int8_uint8": {"max_rel": 3.0, "mean_rel": 0.3, "cosine": 0.95, "flip_margin": 0.7, "agreement": 0.98,
                   "accuracy_drop": 0.01},  # int8 plus the 8-bit input: its own worst cases (export/README.md)
    "int16x8": {"max_rel": 0.9, "mean_rel": 0.07, "cosine": 0.998, "flip_margin": 0.2, "agreement": 0.99,
                "accuracy_drop": 0.01},
    "qat": {"max_rel": 5.0, "mean_rel": 0.3, "cosine": 0.95, "flip_margin": 0.6, "agreement": 0.98,
            "accuracy_drop": 0.01},
    "qat_uint8": {"max_rel": 5.0, "mean_rel": 0.4, "cosine": 0.94, "flip_margin": 0.9, "agreement": 0.98,
                  "accuracy_drop": 0.01},
}
THRESHOLD_KEYS = ("max_rel", "mean_rel", "max_abs", "mean_abs", "cosine", "agreement", "flip_margin", "accuracy_drop")
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


def check_count(num_images: int) -> int:
    """`num_images` if the gate can rest on that many held-out images, else `ExportError`."""
    if num_images < MIN_GATE_IMAGES:
        raise ExportError(f"The parity gate needs at least {MIN_GATE_IMAGES} held-out images, got {num_images}: "
                          f"pass more (--num-eval {MIN_GATE_IMAGES} or more, or a larger test split).")
    return num_images


def spread(logits: np.ndarray) -> float:
    """How much (images, classes) logits vary across images: the mean over classes of the standard deviation over
    images of the per-image-centred logits (0 when every image gets the same scores)."""
    centred = logits - logits.mean(axis=1, keepdims=True)
    return float(centred.std(axis=0).mean())


def check_reference(reference: np.ndarray) -> np.ndarray:
    """Reference logits as a finite (images, classes) array that varies across images, else `ExportError`."""
    reference = np.asarray(reference)
    if reference.ndim != 2:
        raise ExportError(f"Parity compares (images, classes) logits; the float model gives shape {reference.shape}. "
                          "Export a classifier with a 2-D (batch, classes) output.")
    bad = int(np.sum(~np.isfinite(reference).all(axis=1)))
    if bad:
        raise ExportError(f"The float Keras model's own logits are NaN/inf on {bad} of {len(reference)} images: the "
                          "model (or its input normalisation) is broken. Fix it before exporting.")
    if len(reference) > 1 and spread(reference.astype(np.float64)) == 0:
        raise ExportError(f"The float Keras model gives the same scores to all {len(reference)} held-out images, so "
                          "no file can be checked against it (an untrained model with its zero-initialised head?). "
                          "Train it or load its weights before exporting.")
    return reference


@dataclasses.dataclass
class ParityReport:
    """Outcome of the gate for one file; `passed` is False with the reasons in `failures`."""

    mode: str
    num_images: int
    scale: float  # std of the reference logits: the unit of the relative figures
    max_abs: float | None  # None: no finite logits to measure
    mean_abs: float | None
    max_rel: float | None  # max_abs / scale
    mean_rel: float | None  # mean_abs / scale
    typical_rel: float | None  # median over images of the image's max error, / scale
    cosine: float | None
    spread: float | None  # the file's spread across images / the reference's
    agreement: float  # share of images with the float top-1, flips within `error_band` forgiven
    flips: int  # images whose top-1 is not the float top-1
    forgiven: int
    error_band: float  # min(2 * typical_rel, flip_margin): a flip is forgiven where the float margin / scale is within
    flip_margins: list[float]  # the float top-1 margins / scale of the (at most 10) closest flips
    float_accuracy: float | None
    tflite_accuracy: float | None
    float_compute_ops: dict
    thresholds: dict
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine of per-row-centred `a` and `b`; rows with no spread count 1 if equal, else 0."""
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    same = np.all(np.isclose(a, b, rtol=0, atol=1e-12), axis=1).astype(np.float64)
    return np.where(norms > 0, np.sum(a * b, axis=1) / np.maximum(norms, 1e-300), same)


def compare(reference: np.ndarray, logits: np.ndarray, labels: np.ndarray | None, mode: str,
            thresholds: dict | None = None, accuracy_reference: np.ndarray | None = None) -> ParityReport:
    """Gate figures of `logits` against `reference` and the failures against the mode's thresholds.

    `accuracy_reference`: the float model's logits when `reference` is another model's (QAT: the fine-tuned QAT
    model); the accuracy is compared with it. NaN/inf logits fail (those images count as disagreeing and wrong;
    the error figures are over the finite ones). A bad `reference` raises `ExportError`.
    """
    overrides = check_limits(mode, thresholds)
    limits = {**DEFAULT_THRESHOLDS[mode], **overrides}
    reference = check_reference(reference).astype(np.float64)
    accuracy_reference = reference if accuracy_reference is None else check_reference(accuracy_reference)
    logits = np.asarray(logits, np.float64)
    if logits.shape != reference.shape or accuracy_reference.shape != reference.shape:
        raise ExportError(f"TFLite logits have shape {logits.shape}, the float model's {reference.shape}: the file "
                          "is not this model's export. Gate it against the model it was exported from.")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(reference):
            raise ExportError(f"{len(labels)} labels for {len(reference)} images: pass one label per image.")
    scale = float(reference.std())
    finite = np.isfinite(logits).all(axis=1)
    ref, out = reference[finite], logits[finite]
    figures = dict(max_abs=None, mean_abs=None, max_rel=None, mean_rel=None, typical_rel=None, cosine=None,
                   spread=None)
    if finite.any():
        diff = np.abs(ref - out)
        figures.update(max_abs=float(diff.max()), mean_abs=float(diff.mean()), max_rel=float(diff.max()) / scale,
                       mean_rel=float(diff.mean()) / scale, typical_rel=float(np.median(diff.max(axis=1))) / scale,
                       cosine=float(_cosine(ref, out).mean()),
                       spread=spread(out) / spread(ref) if len(ref) > 1 else None)
    top = np.where(finite, np.where(finite[:, None], logits, 0).argmax(1), -1)
    flipped = top != reference.argmax(1)
    ordered = np.sort(reference, axis=1)
    margins = (ordered[:, -1] - ordered[:, -2]) / scale if reference.shape[1] > 1 else np.full(len(ordered), np.inf)
    band = min(2 * (figures["typical_rel"] or 0.0), limits["flip_margin"])  # two logits move; capped by the mode
    forgiven = flipped & finite & (margins <= band)
    float_acc = tflite_acc = None
    if labels is not None:
        float_acc = float(np.mean(accuracy_reference.argmax(1) == labels))
        tflite_acc = float(np.mean(top == labels))
    report = ParityReport(mode, len(reference), scale, **figures, agreement=float(np.mean(~flipped | forgiven)),
                          flips=int(flipped.sum()), forgiven=int(forgiven.sum()), error_band=band,
                          flip_margins=[float(m) for m in np.sort(margins[flipped])[:10]], float_accuracy=float_acc,
                          tflite_accuracy=tflite_acc, float_compute_ops={}, thresholds=limits, failures=[])
    report.failures += _failures(report, limits, finite)
    return report


def _failures(r: ParityReport, limits: dict, finite: np.ndarray) -> list[str]:
    failures = []
    if not finite.all():
        failures.append(f"non-finite TFLite logits (NaN/inf) on {int(np.sum(~finite))} of {len(finite)} images")
    if r.spread is not None and r.spread < DEGENERATE_SPREAD:
        failures.append(f"degenerate output: the logits hardly vary across images (spread {r.spread:.3g} of the "
                        "float model's)")
    for key, what in (("max_rel", "max logit error / float logit scale"),
                      ("mean_rel", "mean logit error / float logit scale"),
                      ("max_abs", "max abs logit error"), ("mean_abs", "mean abs logit error")):
        value = getattr(r, key)
        if key in limits and value is not None and value > limits[key]:
            failures.append(f"{what} {value:.3g} > {limits[key]:.3g}")
    if "cosine" in limits and r.cosine is not None and r.cosine < limits["cosine"]:
        failures.append(f"cosine {r.cosine:.5f} < {limits['cosine']}")
    if "agreement" in limits and r.agreement < limits["agreement"]:
        failures.append(f"top-1 agreement {r.agreement:.2%} < {limits['agreement']:.2%} ({r.flips} flip(s), "
                        f"{r.forgiven} within the measured error)")
    allowed = limits.get("accuracy_drop", math.inf) + r.forgiven / r.num_images  # a forgiven flip may cost one image
    if r.float_accuracy is not None and r.float_accuracy - r.tflite_accuracy > allowed + 1e-12:
        failures.append(f"accuracy {r.tflite_accuracy:.2%} is more than {allowed:.2%} below float "
                        f"{r.float_accuracy:.2%}" + (f" ({r.forgiven} forgiven flip(s) allowed)" if r.forgiven else ""))
    return failures


def keras_logits(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Reference logits of a Keras model, in inference mode."""
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)])


def check_parity(model, flatbuffer: bytes, images: np.ndarray, labels: np.ndarray | None = None, *,
                 mode: str = "float32", thresholds: dict | None = None, reference: np.ndarray | None = None,
                 accuracy_reference: np.ndarray | None = None, num_threads: int | None = None) -> ParityReport:
    """The whole gate of one file: run `flatbuffer` on held-out `images` (at least `MIN_GATE_IMAGES`), compare it
    with the Keras `model` (or precomputed `reference` logits) and check its ops.

    `thresholds` overrides the mode's defaults (keys: `THRESHOLD_KEYS`); `accuracy_reference`: see `compare`. A
    raw-pixel file (`PIXEL_MODES`) takes pixels, which the Keras model does not: pass its `reference`
    (`export.pipeline.gate_feed`).
    """
    if mode not in MODES:
        raise ExportError(f"Unknown export mode {mode!r}. Choose from {', '.join(MODES)}.")
    if mode in PIXEL_MODES and reference is None:
        raise ExportError(f"A {mode} file takes raw pixels and the Keras model normalised images: pass the reference "
                          "logits of the model on the same pixels normalised (export.pipeline.gate_feed).")
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ExportError(f"Parity needs a non-empty (N, H, W, C) image array, got shape {images.shape}.")
    check_count(len(images))
    check_limits(mode, thresholds)
    ref = check_reference(keras_logits(model, images) if reference is None else reference)
    report = compare(ref, litert.run(flatbuffer, images, num_threads), labels, mode, thresholds, accuracy_reference)
    foreign = litert.non_builtin_ops(flatbuffer)
    if foreign:
        report.failures.append(f"non-built-in ops {foreign} (the file would need the Flex delegate)")
    if mode in INTEGER_COMPUTE:
        report.float_compute_ops = litert.float_compute_ops(flatbuffer)
        if report.float_compute_ops:
            report.failures.append(f"float compute ops remain in an integer model: {report.float_compute_ops}")
    return report
