"""`export_model`: every requested mode → convert → parity gate → latency → files, sidecars and report.

The one entry point of the CLI (`keras-mlp-export`) and of the training main job. Everything that can be
checked is checked before anything is written; each file is written atomically, and a file that fails its
gate lands only under `rejected/` with its report. A mode whose conversion fails is a rejected result (its
report only, no file); the other modes go on and the report is always written. The folder then holds only this
export's files: what an earlier export wrote there and this one did not gate is removed (`export.files`).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from export import files, litert, runtimes
from export import metadata as meta
from export import report as reporting
from export.convert import SavedModels, collect_images, input_spec, to_tflite
from export.errors import ExportError
from export.modes import CALIBRATED, PIXEL_MODES, QAT_MODES
from export.options import ExportOptions
from export.parity import check_count, check_parity, check_reference, keras_logits
from export.pixels import normalize, to_pixels
from export.qat import QATResult, check_qat_model, quantization_aware_training
from export.qat_keras import keras_quantization_aware_training
from keras_mlp.io import write_atomic

RUNTIME_IMAGES = 256
"""Gate images each runtime check (`export.runtimes.verify`) classifies, as raw pixels."""
NOTES = ["LayerNorm is computed as c = x - mean; c * rsqrt(mean(c * c) + eps) * gamma + beta "
         "(keras_mlp.layers.LayerNorm; a plain Keras LayerNormalization is traced in that form at export): "
         "Keras' own form has NEG and SQUARED_DIFFERENCE, which the TFLite quantiser cannot quantise to "
         "int8/int16, so no LayerNorm or GELU stays in float."]


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


def gate_feed(model, raw_pixels: bool, images: np.ndarray, preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """(what a file is fed, the float Keras logits it is gated against) for normalised `images`: a raw-pixel file
    (`raw_pixels`) gets their 8-bit pixels and the Keras model those pixels normalised, so both see one image."""
    if not raw_pixels:
        return images, check_reference(keras_logits(model, images))
    mean, std = preprocessing.mean, preprocessing.std
    pixels = to_pixels(images, mean, std)
    return pixels.astype(np.float32), check_reference(keras_logits(model, normalize(pixels, mean, std)))


@dataclasses.dataclass
class Feed:
    """What the files of one input kind (normalised images, or raw pixels for `PIXEL_MODES`) are calibrated on, fed
    by the gate, and gated against (the float model's logits on the same images)."""

    calibration: np.ndarray | None
    images: np.ndarray
    reference: np.ndarray


@dataclasses.dataclass
class Prepared:
    """The checked arrays every mode uses: gate labels, the feeds (normalised images; raw pixels when a raw-pixel
    mode is asked), the QAT training set and the pixels of the runtime checks; `qat` holds the one QAT fine-tune
    (its result, or its error; a future while it runs in the background) once started; `saved_models` the
    SavedModels every converted mode shares."""

    spec: tf.TensorSpec
    eval_labels: np.ndarray | None
    feeds: dict[bool, Feed]  # raw pixels? -> feed
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    runtime_pixels: np.ndarray | None = None
    qat: QATResult | Exception | concurrent.futures.Future | None = None
    saved_models: SavedModels | None = None

    def feed(self, mode: str) -> Feed:
        return self.feeds[mode in PIXEL_MODES]


def prepare(model, options: ExportOptions, train_data, calibration_data, eval_data) -> Prepared:
    """Every array the modes need, checked (ExportError) before anything is written."""
    spec = input_spec(model, options.batch_size)
    if eval_data is None:
        raise ExportError("The parity gate needs held-out data: pass eval_data=(images, labels) or --data.")
    pixel_modes = [m for m in options.modes if m in PIXEL_MODES]
    if pixel_modes and options.preprocessing is None:
        raise ExportError(f"Modes {', '.join(pixel_modes)} fold the normalisation into the file, and model "
                          f"{model.name!r}'s is unknown: pass preprocessing=keras_mlp.Preprocessing(mean, std) (per "
                          "channel, on 0..1 pixels).")
    images, labels = as_arrays(eval_data, spec, options.num_eval)
    check_count(len(images))
    calibration = None
    if any(m in CALIBRATED for m in options.modes):
        source = calibration_data if calibration_data is not None else train_data
        calibration = collect_images(source if not isinstance(source, tuple) else source[0], spec,
                                     options.num_calibration)
    pre = options.preprocessing
    feeds = {False: Feed(calibration, *gate_feed(model, False, images, pre))}
    if pixel_modes:  # calibrated modes: `calibration` is set
        feeds[True] = Feed(to_pixels(calibration, pre.mean, pre.std).astype(np.float32),
                           *gate_feed(model, True, images, pre))
    data = Prepared(spec, labels, feeds)
    if pre is not None:
        data.runtime_pixels = to_pixels(images[:RUNTIME_IMAGES], pre.mean, pre.std)
    if any(m in QAT_MODES for m in options.modes):
        check_qat_model(model)
        data.train_images, data.train_labels = as_arrays(train_data, spec, options.qat_samples)
        if data.train_images is None or data.train_labels is None:
            raise ExportError("The QAT modes fine-tune the model: pass train_data=(images, labels) (or --data).")
    return data


QAT_ENGINES = {"tfmot": quantization_aware_training, "keras": keras_quantization_aware_training}
"""`ExportOptions.qat_engine` → its fine-tune (`export.modes.QAT_ENGINES`): the same arguments and `QATResult`."""
BACKGROUND_QAT = {"tfmot"}
"""Engines whose fine-tune runs in a subprocess, started before the other modes convert and run beside them (the
Keras engine trains in this process, so it runs when its mode's turn comes)."""


def qat_job(model, options: ExportOptions, data: Prepared) -> Callable[[], QATResult]:
    """The export's one QAT fine-tune, converted to every QAT mode asked (each gated on its own feed), as a call."""
    modes = [m for m in options.modes if m in QAT_MODES]
    pixels = data.feeds.get(True)
    pre = options.preprocessing
    gate_images = {m: data.feed(m).images if m not in PIXEL_MODES
                   else normalize(data.feed(m).images, pre.mean, pre.std) for m in modes}
    return functools.partial(
        QAT_ENGINES[options.qat_engine], model, data.train_images, data.train_labels, data.feeds[False].calibration,
        modes=modes, pixel_calibration=None if pixels is None else pixels.calibration,
        normalization=None if pre is None else (pre.mean, pre.std), gate_images=gate_images,
        epochs=options.qat_epochs, learning_rate=options.qat_learning_rate, batch_size=options.qat_batch_size,
        progress=options.progress, signature_batch=options.batch_size)


def qat_run(model, options: ExportOptions, data: Prepared) -> QATResult:
    """The QAT fine-tune's result: run on the first QAT mode, or awaited where it was started in the background; its
    result (or its error: a failed fine-tune is not repeated) serves the other QAT modes."""
    if data.qat is None or isinstance(data.qat, concurrent.futures.Future):
        try:
            data.qat = data.qat.result() if data.qat is not None else qat_job(model, options, data)()
        except Exception as err:  # reported per QAT mode, as its conversion failure
            data.qat = err
    if isinstance(data.qat, Exception):
        raise data.qat
    return data.qat


def convert_and_gate(model, mode: str, options: ExportOptions, data: Prepared) -> tuple[dict, bytes]:
    """One mode: convert, add metadata, gate, time it and check its runtimes (`export.runtimes`). A raw-pixel mode
    is calibrated, fed and gated on pixels (`gate_feed`); a QAT mode is gated for parity against the fine-tuned
    QAT model, for accuracy against the float one. Returns (result dict, flatbuffer)."""
    start = time.perf_counter()
    feed, raw_pixels, pre = data.feed(mode), mode in PIXEL_MODES, options.preprocessing
    reference, qat_info = feed.reference, None
    if mode in QAT_MODES:
        qat = qat_run(model, options, data)
        flatbuffer, qat_info, reference = qat.files[mode], qat.info, qat.gate_logits[mode]
    else:
        flatbuffer = to_tflite(model, mode, feed.calibration, batch_size=options.batch_size,
                               num_calibration=options.num_calibration, progress=options.progress,
                               normalization=(pre.mean, pre.std) if raw_pixels else None,
                               saved_models=data.saved_models)
    convert_s = time.perf_counter() - start
    notes = []
    if options.metadata:
        flatbuffer, note = meta.add_metadata(flatbuffer, name=f"{options.name} ({mode})", mean=list(pre.mean),
                                             std=list(pre.std), labels=list(options.class_names),
                                             labels_file=f"{options.name}_labels.txt", raw_pixels=raw_pixels)
        notes += [note] if note else []
    parity = check_parity(model, flatbuffer, feed.images, data.eval_labels, mode=mode,
                          thresholds=options.thresholds.get(mode), reference=reference,
                          accuracy_reference=feed.reference)
    verified_on = None
    if data.runtime_pixels is not None:
        verified_on = runtimes.verify(flatbuffer, data.runtime_pixels, (pre.mean, pre.std),
                                      mediapipe_python=options.mediapipe_python)
        notes += [f"{runtime} cannot run this file: {'; '.join(e['reasons'])}"
                  for runtime, e in verified_on.items() if e["runs"] is False]
    latency = {str(t): litert.latency(flatbuffer, t, options.latency_runs, image=feed.images[0])["median_ms"]
               for t in options.threads}
    result = {"mode": mode, "size_bytes": len(flatbuffer), "convert_s": round(convert_s, 2), "latency_ms": latency,
              "parity": parity.to_dict(), "ops": litert.op_histogram(flatbuffer),
              "float_compute_ops": parity.float_compute_ops, "passed": parity.passed,
              "failures": list(parity.failures), "notes": notes, "verified_on": verified_on}
    if qat_info:
        result["qat"] = qat_info
    return result, flatbuffer


def write_outcome(model, out_dir: str, result: dict, flatbuffer: bytes | None, options: ExportOptions,
                  spec: tf.TensorSpec) -> str:
    """Write one mode's file where its outcome puts it (`export.files`), removing the other outcome's files of an
    earlier export; returns the path written (the .tflite, or the result .json of a failed conversion)."""
    stem = f"{options.name}_{result['mode']}"
    accepted, refused = files.accepted(out_dir, stem), files.rejected(out_dir, stem)
    for stale in (refused if result["passed"] else accepted) + ((refused[0],) if flatbuffer is None else ()):
        if os.path.exists(stale):
            os.remove(stale)
            result["notes"].append(f"removed {os.path.relpath(stale, out_dir)} of an earlier export")
    if flatbuffer is None:  # nothing to keep but the reason
        path = refused[1]
        write_atomic(path, json.dumps({**result, "file": os.path.relpath(path, out_dir)}, indent=2))
    elif not result["passed"]:
        path = refused[0]
        write_atomic(path, flatbuffer)
        write_atomic(refused[1], json.dumps({**result, "file": os.path.relpath(path, out_dir)}, indent=2))
    else:
        path = accepted[0]
        write_atomic(path, flatbuffer)
        sidecar = meta.sidecar(model, result["mode"], flatbuffer, list(options.class_names),
                               f"{options.name}_labels.txt", options.preprocessing, spec,
                               raw_pixels=result["mode"] in PIXEL_MODES)
        sidecar["verified_on"] = result["verified_on"]
        if "qat" in result:  # which QAT engine (and versions) fine-tuned the model this file was converted from
            sidecar["qat_engine"], sidecar["qat_versions"] = result["qat"]["qat_engine"], result["qat"]["versions"]
        write_atomic(accepted[1], json.dumps(sidecar, indent=2))
    result["file"] = os.path.relpath(path, out_dir)
    return path


def export_model(model, out_dir, options: ExportOptions | None = None, *, train_data=None, calibration_data=None,
                 eval_data=None) -> dict:
    """Export `model` in each of `options.modes` to `out_dir`, each file gated against the float model.

    Args:
        model: keras.Model image classifier (keras_mlp or generic) with a static (H, W, C) input and one
            (batch, classes) output.
        out_dir: output directory (created). Deployable files: `<name>_<mode>.tflite` with embedded TFLite
            metadata, `<name>_<mode>.json` sidecar, `<name>_labels.txt`; failures in `rejected/`; then
            `report.json`, `report.md`, `report.png`. Files an earlier export wrote there that this one does not
            write again (another model's, or modes not asked for now) are removed.
        options: `ExportOptions` (modes, thresholds, counts, preprocessing, class names, ...). Defaults to
            `ExportOptions()`: every mode, the model's own preprocessing and class names.
        train_data: (images, labels) or dataset without augmentation; QAT fine-tunes on it; calibration
            falls back to it.
        calibration_data: images array or dataset for the representative dataset.
        eval_data: held-out (images, labels), images array or dataset of at least `MIN_GATE_IMAGES` images;
            required (the parity gate).

    Returns: dict with `passed` (every file passed its gate), `files`, `rejected`, `results` and `report`.
    Raises `ExportError` on bad input, before anything is written. A mode whose conversion fails is rejected
    (the error is its failure, no file) and the other modes go on; the report is always written.
    """
    # === Checks (nothing is written before they pass) ===
    options = (options or ExportOptions()).for_model(model)
    data = prepare(model, options, train_data, calibration_data, eval_data)
    out_dir = check_out_dir(out_dir)

    # === Export, gate, write ===
    labels_file = f"{options.name}_labels.txt"
    mine = {labels_file}  # this export rewrites these, and each mode's files (`write_outcome`)
    for mode in options.modes:
        stem = f"{options.name}_{mode}"
        mine |= {os.path.relpath(p, out_dir) for p in (*files.accepted(out_dir, stem), *files.rejected(out_dir, stem))}
    before = files.written_before(out_dir)
    files.remove(out_dir, before & set(files.REPORTS))  # until this export's report, the folder claims nothing
    removed = files.remove(out_dir, before - mine - set(files.REPORTS))
    notes = NOTES + [f"removed {path}: an earlier export's file, not gated against this model" for path in removed]
    write_atomic(os.path.join(out_dir, labels_file), "\n".join(options.class_names) + "\n")  # the sidecars name it
    results, written, rejected = [], {}, {}
    with SavedModels() as data.saved_models, concurrent.futures.ThreadPoolExecutor(1) as background:
        if options.qat_engine in BACKGROUND_QAT and any(m in QAT_MODES for m in options.modes):
            data.qat = background.submit(lambda: qat_job(model, options, data)())  # runs beside the other modes
        for mode in options.modes:
            start = time.perf_counter()
            try:
                result, flatbuffer = convert_and_gate(model, mode, options, data)
            except Exception as err:  # inputs were checked above: this mode failed to convert; the others go on
                flatbuffer = None
                result = {"mode": mode, "size_bytes": None, "convert_s": round(time.perf_counter() - start, 2),
                          "latency_ms": {}, "parity": None, "ops": {}, "float_compute_ops": {}, "passed": False,
                          "failures": [f"conversion failed: {type(err).__name__}: {err}"], "notes": [],
                          "verified_on": None}
            path = write_outcome(model, out_dir, result, flatbuffer, options, data.spec)
            (written if result["passed"] else rejected)[mode] = path
            results.append(result)
    labels, reference = data.eval_labels, data.feeds[False].reference
    summary = {"model": options.name, "notes": notes, "input_shape": [options.batch_size, *data.spec.shape[1:]],
               "num_eval": len(reference),
               "float_accuracy": None if labels is None else float(np.mean(reference.argmax(1) == labels)),
               "qat_engine": options.qat_engine if any(m in QAT_MODES for m in options.modes) else None,
               "passed": not rejected, "files": written, "rejected": rejected, "results": results}
    summary["report"] = reporting.write_report(summary, out_dir)
    return summary
