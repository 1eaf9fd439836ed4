"""`keras-mlp-export`: a thin CLI over `export.pipeline.export_model` and `export.gate.gate_file` (--gate).

    keras-mlp-export model.keras --modes all --data digits --out exported/
    keras-mlp-export model.keras --gate exported/model_int8.tflite --data digits   # mode from its sidecar

Exit codes: 0 every file passed its gate; 1 a file was rejected (moved to rejected/ with its report); 2 bad input.
Only argparse and the pure-Python `export.errors` / `export.modes` load before the arguments are parsed, so
`--help` and argument errors come at once; TensorFlow loads with the library, inside `main`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from export.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_REJECTED, ExportError
from export.modes import MODES


def batch_size(text: str) -> int | None:
    """--batch-size: a positive int, or 'dynamic' (None)."""
    if text == "dynamic":
        return None
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive integer (1 for mobile) or 'dynamic'")
    return int(text)


def positive_int(text: str) -> int:
    """A count argument: an integer > 0."""
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive integer")
    return int(text)


def positive_float(text: str) -> float:
    """A rate argument: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a finite number > 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keras-mlp-export", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="saved Keras model (.keras)")
    p.add_argument("--modes", default="all", help=f"'all' or comma-separated: {','.join(MODES)}")
    p.add_argument("--data", required=True, help="dataset for calibration, QAT and the gate (keras_mlp.data: "
                   "digits, a tfds name or an image folder)")
    p.add_argument("--data-dir", default=None, help="tfds data directory")
    p.add_argument("--out", default="exported", help="output directory")
    p.add_argument("--gate", metavar="TFLITE", default=None,
                   help="only gate an existing .tflite against the model (its mode: --modes, else its sidecar .json "
                        "or file name); a failing file is moved to rejected/ as export does")
    p.add_argument("--batch-size", default=1, type=batch_size, help="static signature batch, or 'dynamic'")
    p.add_argument("--num-calibration", type=positive_int, default=256)
    p.add_argument("--num-eval", type=positive_int, default=None,
                   help="held-out images for the gate (at least 32; default all)")
    p.add_argument("--mean", type=float, nargs="+", default=None,
                   help="normalisation mean on 0..1 pixels, one value per input channel (default: the model's)")
    p.add_argument("--std", type=float, nargs="+", default=None,
                   help="normalisation std (> 0) on 0..1 pixels, one value per input channel (default: the model's)")
    p.add_argument("--threshold", action="append", default=[], metavar="MODE.KEY=VALUE",
                   help="override a gate threshold, e.g. int8.agreement=0.97 (keys: max_rel, mean_rel, max_abs, "
                        "mean_abs, accuracy_drop >= 0; cosine, agreement in [0, 1]; see export/README.md)")
    p.add_argument("--qat-epochs", type=positive_int, default=3)
    p.add_argument("--qat-lr", type=positive_float, default=1e-4)
    p.add_argument("--latency-runs", type=positive_int, default=50)
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    p.add_argument("--no-metadata", action="store_true", help="do not embed TFLite metadata")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_thresholds(items: list[str]) -> dict:
    """--threshold MODE.KEY=VALUE items → {mode: {key: value}} (checked by `ExportOptions`)."""
    thresholds: dict = {}
    for item in items:
        try:
            key, value = item.split("=", 1)
            mode, name = key.split(".", 1)
            thresholds.setdefault(mode, {})[name] = float(value)
        except ValueError:
            raise ExportError(f"Bad --threshold {item!r}: use MODE.KEY=VALUE, e.g. int8.agreement=0.97.") from None
    return thresholds


def run(args) -> int:
    """Export (or, with --gate, gate one file) and print the report; returns the exit code."""
    from export.convert import num_classes_of
    from export.datasets import load_model, load_splits
    from export.gate import gate_file
    from export.options import ExportOptions, normalization
    from export.parity import check_thresholds
    from export.pipeline import check_out_dir, export_model

    try:
        thresholds = check_thresholds(parse_thresholds(args.threshold))
    except ExportError as err:
        raise ExportError(f"--threshold: {err}") from None
    options = ExportOptions(modes=args.modes, batch_size=args.batch_size, num_calibration=args.num_calibration,
                            num_eval=args.num_eval, thresholds=thresholds, qat_epochs=args.qat_epochs,
                            qat_learning_rate=args.qat_lr, latency_runs=args.latency_runs, threads=args.threads,
                            metadata=not args.no_metadata, progress=not args.quiet)
    gate_mode = None
    if args.gate is not None and args.modes != "all":
        if len(options.modes) != 1:
            raise ExportError("--gate checks one file: pass its mode with --modes, e.g. --modes int8.")
        gate_mode = options.modes[0]
    if args.gate is None:
        check_out_dir(args.out, create=False)
    model = load_model(args.model)
    num_classes = num_classes_of(model)
    preprocessing = normalization(model, args.mean, args.std)
    if preprocessing is None:
        raise ExportError(f"Model {model.name!r} records no preprocessing (it is not a keras_mlp model): pass --mean "
                          "and --std (the normalisation it was trained with, on 0..1 pixels).")
    train, test, names = load_splits(args.data, preprocessing, model.inputs[0].shape[1:3], data_dir=args.data_dir)
    if num_classes != len(names):
        raise ExportError(f"The model has {num_classes} outputs but {args.data!r} has {len(names)} classes. "
                          "Export it with the dataset it was trained on.")
    options = dataclasses.replace(options, preprocessing=preprocessing,
                                  class_names=getattr(model, "class_names", None) or names)
    if args.gate is not None:
        report, path = gate_file(model, args.gate, test, options, mode=gate_mode)
        print(json.dumps({**report.to_dict(), "file": path}, indent=2))
        if not report.passed:
            print(f"REJECTED {report.mode}: {path}", file=sys.stderr)
        return EXIT_OK if report.passed else EXIT_REJECTED
    summary = export_model(model, args.out, options, train_data=train, eval_data=test)
    with open(os.path.join(args.out, "report.md")) as f:
        print(f.read())
    for mode, path in summary["rejected"].items():
        print(f"REJECTED {mode}: {path}", file=sys.stderr)
    return EXIT_OK if summary["passed"] else EXIT_REJECTED


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except ExportError as err:
        print(f"keras-mlp-export: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
