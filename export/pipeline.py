"""`export_model`: every requested mode → convert → parity gate → latency → files, sidecars and report.

The one entry point of the CLI (`keras-mlp-export`) and of the training main job. Everything that can be
checked is checked before anything is written; each file is written atomically, and a file that fails its
gate lands only under `rejected/` with its report. A mode whose conversion fails is a rejected result (its
report only, no file); the other modes go on and the report is always written.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np

from export import runtimes
from export.benchmark import latency_ms
from export.convert import (
    MODES,
    QAT_MODES,
    QUANTIZED_INPUT,
    ExportError,
    check_mode,
    collect_images,
    float_compute_ops,
    input_spec,
    op_histogram,
    positive_int,
    to_tflite,
)
from export.parity import check_parity, check_reference, check_thresholds, keras_logits
from export.pixels import PIXEL_MODES, normalize, to_pixels
from export.qat import check_qat_model, qat_files
from keras_mlp.io import write_atomic

FULL_INTEGER = ("int8", "int8_uint8", "qat", "qat_uint8")  # int8 compute and integer input: no float op at all
RUNTIME_IMAGES = 256  # gate images each runtime check classifies (as raw pixels)


def resolve_modes(modes: str | Sequence[str]) -> list[str]:
    """'all', a comma-separated string or a list → checked list of modes, in `MODES` order."""
    if isinstance(modes, str):
        modes = list(MODES) if modes.strip() == "all" else [m.strip() for m in modes.split(",") if m.strip()]
    if not modes:
        raise ExportError(f"No export mode given. Choose from {', '.join(MODES)} or 'all'.")
    for mode in modes:
        check_mode(mode)
    return [m for m in MODES if m in modes]


def as_arrays(data, spec, limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels-or-None) arrays from an (images, labels) tuple, an images array or a batched dataset."""
    if data is None:
        return None, None
    if isinstance(data, tuple) and len(data) == 2 and not hasattr(data[0], "element_spec"):
        images = collect_images(np.asarray(data[0]), spec, limit or len(data[0]))
        return images, np.asarray(data[1]).reshape(-1)[: len(images)].astype(np.int64)
    if isinstance(data, np.ndarray):
        return collect_images(data, spec, limit or len(data)), None
    images, labels = [], []
    for batch in data:
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        images.append(collect_images(np.asarray(x), spec, len(x)))
        if y is not None:
            labels.append(np.asarray(y).reshape(-1))
        if limit and sum(map(len, images)) >= limit:
            break
    if not images:
        raise ExportError("Evaluation/training data is empty. Pass a non-empty dataset.")
    images = np.concatenate(images)[:limit]
    return images, (np.concatenate(labels)[: len(images)].astype(np.int64) if labels else None)


def check_out_dir(out_dir: str, create: bool = True) -> str:
    """Create `out_dir` if needed and prove it writable, else `ExportError`; with `create=False` only check that
    it is, or can be made, a writable folder (the CLI's early check, so that bad input leaves no empty folder)."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if not create:
        existing = out_dir
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not (os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK)):
            raise ExportError(f"Output directory {out_dir!r} is not writable ({existing!r} is "
                              f"{'not a folder' if not os.path.isdir(existing) else 'read-only'}). Pass --out to a "
                              "directory you can write.")
        return out_dir
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe_"):
            pass
    except OSError as err:
        raise ExportError(f"Output directory {out_dir!r} is not writable ({err.strerror or err}). Pass --out to a "
                          "directory you can write.") from err
    return out_dir


def check_name(name) -> str:
    """`name` as a plain file-name stem (files land in out_dir only), else `ExportError`."""
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ExportError(f"Export name {name!r} must be a plain file-name stem without '/', '\\' or '..' (e.g. "
                          "'mixer_s16'): every file is written into out_dir.")
    return name


def num_classes_of(model) -> int:
    """Class count of a classifier with one (batch, classes) output, else `ExportError`."""
    outputs = list(getattr(model, "outputs", None) or [])
    shape = tuple(outputs[0].shape) if len(outputs) == 1 else None
    if shape is None or len(shape) != 2 or shape[-1] is None:
        raise ExportError(f"Export needs an image classifier with one 2-D (batch, classes) output; this model's "
                          f"output is {shape if len(outputs) == 1 else [tuple(o.shape) for o in outputs]}. Add a "
                          "head (include_top=True) or global pooling (pooling='avg') to a feature model.")
    return int(shape[-1])


def preprocessing_of(model, mean, std):
    """Per-channel mean/std, each defaulting to the model's own (`model.preprocessing`, recorded by every keras_mlp
    model); (None, None) if neither is known. One finite value per input channel, std > 0, else `ExportError`."""
    channels = int(input_spec(model).shape[-1])
    given = {"mean": mean is not None, "std": std is not None}
    recorded = getattr(model, "preprocessing", None)
    if (mean is None or std is None) and recorded is not None:
        mean, std = recorded.mean if mean is None else mean, recorded.std if std is None else std
    if (mean is None) != (std is None):
        raise ExportError("Pass both `mean` and `std` (per-channel, on 0..1 pixels) or neither.")
    if mean is None:
        return None, None
    checked = []
    for what, values in (("mean", mean), ("std", std)):
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ExportError(f"`{what}` must be a sequence of numbers (one per channel), got {values!r}.") from None
        if len(values) != channels:
            origin = "" if given[what] else f" (the model's preprocessing, {model.name!r})"
            raise ExportError(f"`{what}` has {len(values)} value(s){origin} but the model takes {channels}-channel "
                              f"images: pass mean and std with {channels} value(s) each (--mean/--std).")
        if not all(map(math.isfinite, values)):
            raise ExportError(f"`{what}` must be finite numbers, got {values}.")
        checked.append(values)
    if any(v <= 0 for v in checked[1]):
        raise ExportError(f"`std` must be > 0 per channel (pixels are divided by it), got {checked[1]}.")
    return checked[0], checked[1]


def once(run: Callable[[], tuple]) -> Callable[[], tuple]:
    """`run` called at most once: later calls return its result or raise its error again (one QAT fine-tune serves
    every QAT mode, and a failed one is not repeated)."""
    outcome = []

    def call():
        if not outcome:
            try:
                outcome.append((run(), None))
            except Exception as err:
                outcome.append((None, err))
        result, err = outcome[0]
        if err is not None:
            raise err
        return result
    return call


def gate_feed(model, raw_pixels: bool, images: np.ndarray, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """(what a file is fed, the float Keras logits it is gated against) for normalised `images`: a raw-pixel file
    (`raw_pixels`) gets their 8-bit pixels and the Keras model those pixels normalised, so both see one image."""
    if not raw_pixels:
        return images, check_reference(keras_logits(model, images))
    pixels = to_pixels(images, mean, std)
    return pixels, check_reference(keras_logits(model, normalize(pixels, mean, std)))


def convert_and_gate(model, mode: str, *, calibration, eval_images, eval_labels, reference, qat_run, name: str,
                     labels_list: list[str], labels_file: str, mean, std, metadata: bool, batch_size,
                     num_calibration: int, thresholds: dict, latency_runs: int, threads: Sequence[int],
                     progress: bool, runtime_pixels: np.ndarray | None, mediapipe_python: str | None):
    """One mode: convert, add metadata, gate, time it and check its runtimes (`export.runtimes`). `calibration`,
    `eval_images` and `reference` are the mode's own (raw pixels for a raw-pixel mode); `qat_run()` gives the
    QAT files. Returns (result dict, flatbuffer)."""
    from export import metadata as meta
    start = time.perf_counter()
    raw_pixels = mode in PIXEL_MODES
    if mode in QAT_MODES:
        files, qat_info = qat_run()
        flatbuffer = files[mode]
    else:
        flatbuffer = to_tflite(model, mode, calibration, batch_size=batch_size, num_calibration=num_calibration,
                               progress=progress, normalization=(mean, std) if raw_pixels else None)
        qat_info = None
    convert_s = time.perf_counter() - start
    notes = []
    if metadata:
        flatbuffer, note = meta.add_metadata(flatbuffer, name=f"{name} ({mode})", mean=mean, std=std,
                                             labels=labels_list, labels_file=labels_file, raw_pixels=raw_pixels)
        notes += [note] if note else []
    parity = check_parity(model, flatbuffer, eval_images, eval_labels, mode=mode, thresholds=thresholds.get(mode),
                          reference=reference)
    ops = op_histogram(flatbuffer)
    float_ops = float_compute_ops(flatbuffer) if mode in FULL_INTEGER + ("int8_float_io", "int16x8") else {}
    failures = list(parity.failures)
    if float_ops:
        failures.append(f"float compute ops remain in a fully quantised model: {float_ops}")
    verified_on = None
    if runtime_pixels is not None:
        verified_on = runtimes.verify(flatbuffer, runtime_pixels, (mean, std), mediapipe_python=mediapipe_python)
        notes += [f"{runtime} cannot run this file: {'; '.join(e['reasons'])}"
                  for runtime, e in verified_on.items() if e["runs"] is False]
    result = {"mode": mode, "size_bytes": len(flatbuffer), "convert_s": round(convert_s, 2),
              "latency_ms": {str(t): latency_ms(flatbuffer, t, latency_runs, image=eval_images[0]) for t in threads},
              "parity": parity.to_dict(), "ops": ops, "float_compute_ops": float_ops,
              "passed": not failures, "failures": failures, "notes": notes, "verified_on": verified_on}
    if qat_info:
        result["qat"] = qat_info
    return result, flatbuffer


def export_model(model, out_dir, modes: str | Sequence[str] = "all", *, train_data=None, calibration_data=None,
                 eval_data=None, class_names: Sequence[str] | None = None, mean=None, std=None,
                 name: str | None = None, batch_size: int | None = 1, num_calibration: int = 256,
                 num_eval: int | None = None, thresholds: dict | None = None, qat_epochs: int = 3,
                 qat_learning_rate: float = 1e-4, qat_batch_size: int = 32, qat_samples: int = 8192,
                 latency_runs: int = 50, threads: Sequence[int] = (1, 2), metadata: bool = True,
                 progress: bool = True, mediapipe_python: str | None = None) -> dict:
    """Export `model` in each of `modes` to `out_dir`, each file gated against the float model.

    Args:
        model: keras.Model image classifier (keras_mlp or generic) with a static (H, W, C) input and one
            (batch, classes) output.
        out_dir: output directory (created). Deployable files: `<name>_<mode>.tflite` with embedded TFLite
            metadata, `<name>_<mode>.json` sidecar, `<name>_labels.txt`; failures in `rejected/`; then
            `report.json`, `report.md`, `report.png`.
        modes: "all", "float32,int8", or a list (see `export.MODES`).
        train_data: (images, labels) or dataset without augmentation; QAT fine-tunes on it; calibration
            falls back to it.
        calibration_data: images array or dataset for the representative dataset.
        eval_data: held-out (images, labels), images array or dataset; required (the parity gate). Every data
            argument is normalised as for training; the raw-pixel modes (int8_uint8, qat_uint8) take its 8-bit
            pixels (`export.pixels.to_pixels`) and are gated against the Keras model on those pixels normalised.
        class_names, mean, std: labels and normalisation `(x/255 - mean)/std` written to the sidecar and
            metadata; mean/std (one value per input channel, std > 0) default to the registry's for a keras_mlp
            variant; the colour space is RGB for 3 channels, GRAYSCALE for 1 (else UNKNOWN, with a note).
        name: file-name stem (no path). Defaults to `model.name`.
        thresholds: {mode: {key: value}} overriding `export.DEFAULT_THRESHOLDS` (keys and ranges checked).
        batch_size: static batch of the signature (1), or None for dynamic.
        num_calibration / num_eval / qat_samples: images used for calibration, the gate (None: all) and QAT.
        mediapipe_python: Python of a venv with `export.runtimes.MEDIAPIPE`: every file is then classified by
            MediaPipe's ImageClassifier too (`export.runtimes.verify`); without it MediaPipe's refusal rules only.

    Returns: dict with `passed` (every file passed its gate), `files`, `rejected`, `results` and `report`.
    Raises `ExportError` on bad input, before anything is written. A mode whose conversion fails is rejected
    (the error is its failure, no file) and the other modes go on; the report is always written.
    """
    from export import metadata as meta
    from export import report as reporting

    # === Checks (nothing is written before they pass) ===
    modes = resolve_modes(modes)
    spec = input_spec(model, batch_size)
    name = check_name(name or model.name)
    num_classes = num_classes_of(model)
    thresholds = check_thresholds(thresholds)
    num_calibration = positive_int(num_calibration, "num_calibration")
    latency_runs = positive_int(latency_runs, "latency_runs")
    num_eval = None if num_eval is None else positive_int(num_eval, "num_eval")
    if isinstance(threads, (str, bytes)) or not isinstance(threads, Sequence) or not threads:
        raise ExportError(f"`threads` must be a non-empty list of positive integers, got {threads!r}.")
    threads = [positive_int(t, "threads") for t in threads]
    if class_names is not None and len(class_names) != num_classes:
        raise ExportError(f"{len(class_names)} class names for a model with {num_classes} outputs. Pass exactly "
                          f"{num_classes} names (or none).")
    labels_list = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    mean, std = preprocessing_of(model, mean, std)
    if metadata and mean is None:
        raise ExportError(f"Model {name!r} records no preprocessing (not a keras_mlp model), so its normalisation is "
                          "unknown. "
                          "Pass mean=... and std=... (per channel, on 0..1 pixels), or metadata=False.")
    if mean is None and any(m in PIXEL_MODES for m in modes):
        raise ExportError(f"Modes {', '.join(PIXEL_MODES)} fold the normalisation into the file, and model {name!r}'s "
                          "is unknown: pass mean=... and std=... (per channel, on 0..1 pixels).")
    if eval_data is None:
        raise ExportError("The parity gate needs held-out data: pass eval_data=(images, labels) or --data.")
    eval_images, eval_labels = as_arrays(eval_data, spec, num_eval)
    calibration = calibration_data if calibration_data is not None else train_data
    if any(m in QUANTIZED_INPUT for m in modes):
        calibration = collect_images(calibration if not isinstance(calibration, tuple) else calibration[0],
                                     spec, num_calibration)
    train_images = train_labels = None
    if any(m in QAT_MODES for m in modes):
        check_qat_model(model)
        qat_epochs = positive_int(qat_epochs, "qat_epochs")
        qat_batch_size = positive_int(qat_batch_size, "qat_batch_size")
        qat_samples = positive_int(qat_samples, "qat_samples")
        if isinstance(qat_learning_rate, bool) or not isinstance(qat_learning_rate, (int, float)) \
                or not math.isfinite(qat_learning_rate) or qat_learning_rate <= 0:
            raise ExportError(f"`qat_learning_rate` must be a finite number > 0, got {qat_learning_rate!r}.")
        train_images, train_labels = as_arrays(train_data, spec, qat_samples)
        if train_images is None or train_labels is None:
            raise ExportError("Mode 'qat' fine-tunes the model: pass train_data=(images, labels) (or --data).")
    # (calibration, gate images, float reference) per feed: normalised images, or (raw-pixel modes) their pixels.
    feeds = {False: (calibration, *gate_feed(model, False, eval_images, mean, std))}
    pixel_calibration = None
    if any(m in PIXEL_MODES for m in modes):
        pixel_calibration = to_pixels(calibration, mean, std).astype(np.float32)
        feeds[True] = (pixel_calibration, *gate_feed(model, True, eval_images, mean, std))
    runtime_pixels = None if mean is None else to_pixels(eval_images[:RUNTIME_IMAGES], mean, std)
    qat_run = once(lambda: qat_files(
        model, train_images, train_labels, calibration, modes=[m for m in modes if m in QAT_MODES],
        pixel_calibration=pixel_calibration, normalization=(mean, std), epochs=qat_epochs,
        learning_rate=qat_learning_rate, batch_size=qat_batch_size, progress=progress, signature_batch=batch_size))
    reference = feeds[False][2]
    out_dir = check_out_dir(out_dir)

    # === Export, gate, write ===
    labels_file = f"{name}_labels.txt"
    write_atomic(os.path.join(out_dir, labels_file), "\n".join(labels_list) + "\n")  # the sidecars point at it
    results, files, rejected = [], {}, {}
    for mode in modes:
        start = time.perf_counter()
        try:
            mode_calibration, mode_images, mode_reference = feeds[mode in PIXEL_MODES]
            result, flatbuffer = convert_and_gate(
                model, mode, calibration=mode_calibration, eval_images=mode_images, eval_labels=eval_labels,
                reference=mode_reference, qat_run=qat_run, name=name, labels_list=labels_list,
                labels_file=labels_file, mean=mean, std=std, metadata=metadata, batch_size=batch_size,
                num_calibration=num_calibration, thresholds=thresholds, latency_runs=latency_runs,
                threads=threads, progress=progress, runtime_pixels=runtime_pixels,
                mediapipe_python=mediapipe_python)
        except Exception as err:  # inputs were checked above: this mode failed to convert; the others go on
            flatbuffer = None
            result = {"mode": mode, "size_bytes": None, "convert_s": round(time.perf_counter() - start, 2),
                      "latency_ms": {}, "parity": None, "ops": {}, "float_compute_ops": {}, "passed": False,
                      "failures": [f"conversion failed: {type(err).__name__}: {err}"], "notes": [],
                      "verified_on": None}
        stem = f"{name}_{mode}"
        accepted = [os.path.join(out_dir, f"{stem}{ext}") for ext in (".tflite", ".json")]
        refused = [os.path.join(out_dir, "rejected", f"{stem}.REJECTED{ext}") for ext in (".tflite", ".json")]
        # The folder shows this export only: the other outcome's files from an earlier export go.
        for stale in (refused if result["passed"] else accepted) + ([refused[0]] if flatbuffer is None else []):
            if os.path.exists(stale):
                os.remove(stale)
                result["notes"].append(f"removed {os.path.relpath(stale, out_dir)} of an earlier export")
        if flatbuffer is None:  # nothing to keep but the reason
            path = refused[1]
            write_atomic(path, json.dumps(result, indent=2))
            rejected[mode] = path
        elif not result["passed"]:
            path = refused[0]
            write_atomic(path, flatbuffer)
            write_atomic(refused[1], json.dumps(result, indent=2))
            rejected[mode] = path
        else:
            path = accepted[0]
            write_atomic(path, flatbuffer)
            sidecar = meta.sidecar(model, mode, flatbuffer, labels_list, labels_file, mean, std, spec,
                                   raw_pixels=mode in PIXEL_MODES)
            sidecar["verified_on"] = result["verified_on"]
            write_atomic(accepted[1], json.dumps(sidecar, indent=2))
            files[mode] = path
        result["file"] = os.path.relpath(path, out_dir)
        results.append(result)
    notes = ["LayerNorm is computed as c = x - mean; c * rsqrt(mean(c * c) + eps) * gamma + beta "
             "(keras_mlp.layers.LayerNorm; a plain Keras LayerNormalization is traced in that form at export): "
             "Keras' own form has NEG and SQUARED_DIFFERENCE, which the TFLite quantiser cannot quantise to "
             "int8/int16, so no LayerNorm or GELU stays in float."]
    summary = {"model": name, "notes": notes, "input_shape": [batch_size, *spec.shape[1:]],
               "num_eval": len(eval_images),
               "float_accuracy": None if eval_labels is None else float(np.mean(reference.argmax(1) == eval_labels)),
               "passed": not rejected, "files": files, "rejected": rejected, "results": results}
    summary["report"] = reporting.write_report(summary, out_dir)
    return summary
