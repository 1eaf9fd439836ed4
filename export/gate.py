"""`gate_file`: run the export gate again on an existing `.tflite`, against the Keras model it was exported from.

The same gate as `export_model` (`export.parity.check_parity`: parity, accuracy, degenerate output, op checks),
and the same consequence: a failing file is moved to rejected/ with its gate result, its sidecar removed, and the
folder's report (when it lists the file) updated, so nothing calls it deployable any more.
"""
from __future__ import annotations

import json
import os

from export import files
from export import report as reporting
from export.convert import input_spec, num_classes_of
from export.errors import ExportError
from export.modes import MODES, PIXEL_MODES, QAT_MODES, check_mode
from export.options import ExportOptions
from export.parity import ParityReport, check_parity
from export.pipeline import as_arrays, gate_feed


def mode_of(path: str) -> str:
    """The export mode of a .tflite written by export: its sidecar's "mode", else its file name's `_<mode>` suffix."""
    _, sidecar = files.sidecar_of(path)
    stem = (path[: -len(".tflite")] if path.endswith(".tflite") else path).removesuffix(".REJECTED")
    mode = sidecar["mode"] if sidecar else next((m for m in sorted(MODES, key=len, reverse=True)
                                                 if stem.endswith("_" + m)), None)
    if mode not in MODES:
        raise ExportError(f"Cannot tell the export mode of {path!r} (no sidecar .json, no _<mode> suffix): "
                          "pass it with --modes, e.g. --modes int8.")
    return mode


def check_mode_of(path: str, mode: str | None) -> str:
    """`mode` (checked against the file's sidecar) or, if None, the file's own (`mode_of`), else `ExportError`."""
    _, sidecar = files.sidecar_of(path)
    if mode is None:
        mode = mode_of(path)
    elif sidecar and sidecar["mode"] != check_mode(mode):
        raise ExportError(f"{path!r} is a {sidecar['mode']} file (its sidecar .json says so); --modes {mode} would "
                          "gate it with another mode's thresholds. Leave --modes out.")
    if mode in QAT_MODES:
        raise ExportError("A QAT file is gated against the fine-tuned QAT model it was converted from, which only "
                          f"its export run holds: re-export it (--modes {mode}) to gate it again.")
    return mode


def _record_rejection(path: str, target: str, report: ParityReport) -> None:
    """Update the report of the export folder that lists `path` as deployable: the file is now rejected."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(os.path.join(folder, "report.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return
    mode = next((m for m, p in (summary.get("files") or {}).items() if os.path.abspath(p) == os.path.abspath(path)),
                None)
    if mode is None:
        return
    summary["files"].pop(mode)
    summary["rejected"][mode] = target
    summary["passed"] = False
    for result in summary["results"]:
        if result["mode"] == mode:
            result.update(passed=False, failures=list(report.failures), parity=report.to_dict(),
                          file=os.path.relpath(target, folder))
            result.setdefault("notes", []).append("rejected when gated again (keras-mlp-export --gate)")
    reporting.write_report(summary, folder)


def gate_file(model, tflite_path: str, data, options: ExportOptions | None = None, *,
              mode: str | None = None) -> tuple[ParityReport, str]:
    """Gate the .tflite at `tflite_path` against `model` on held-out `data` ((images, labels), images or a
    dataset); `options` gives the thresholds and `num_eval`. Its mode: `mode` (checked against its sidecar), else
    its sidecar's, else its name's `_<mode>` suffix. A raw-pixel file is fed the images' 8-bit pixels in
    `options.preprocessing` (or the model's) and gated against the model on those pixels normalised, as export does.

    Returns (report, path): the file's path, under rejected/ if it failed (quarantined as export does).
    Raises `ExportError` on bad input (missing or invalid file, unknown mode, too few images).
    """
    options = options or ExportOptions()
    if not os.path.isfile(tflite_path):
        raise ExportError(f"TFLite file {tflite_path!r} does not exist.")
    mode = check_mode_of(tflite_path, mode)
    with open(tflite_path, "rb") as f:
        flatbuffer = f.read()
    num_classes_of(model)
    preprocessing = options.preprocessing or getattr(model, "preprocessing", None)
    if mode in PIXEL_MODES and preprocessing is None:
        raise ExportError(f"A {mode} file takes raw pixels: gating it needs the normalisation the model was trained "
                          "with (--mean/--std, or ExportOptions(preprocessing=...)).")
    images, labels = as_arrays(data, input_spec(model), options.num_eval)
    images, reference = gate_feed(model, mode in PIXEL_MODES, images, preprocessing)
    report = check_parity(model, flatbuffer, images, labels, mode=mode, thresholds=options.thresholds.get(mode),
                          reference=reference)
    if report.passed:
        return report, tflite_path
    result = {"mode": mode, "size_bytes": len(flatbuffer), "parity": report.to_dict(),
              "float_compute_ops": report.float_compute_ops, "passed": False, "failures": list(report.failures),
              "notes": ["rejected by keras-mlp-export --gate"]}
    target = files.quarantine(tflite_path, result)
    _record_rejection(tflite_path, target, report)
    return report, target
