"""What `keras-mlp-export` runs once its arguments are parsed (`export.cli`): an export through
`export.pipeline.export_model`, or with --gate one file through `export.gate.gate_file`, its report printed."""
from __future__ import annotations

import dataclasses
import json
import os
import sys

from export import runtimes
from export.convert import num_classes_of
from export.datasets import load_model, load_splits
from export.errors import EXIT_OK, EXIT_REJECTED, ExportError
from export.gate import gate_file
from export.options import ExportOptions, normalization
from export.parity import check_thresholds
from export.pipeline import check_out_dir, export_model


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
    try:
        thresholds = check_thresholds(parse_thresholds(args.threshold))
    except ExportError as err:
        raise ExportError(f"--threshold: {err}") from None
    options = ExportOptions(modes=args.modes, batch_size=args.batch_size, num_calibration=args.num_calibration,
                            num_eval=args.num_eval, thresholds=thresholds, qat_epochs=args.qat_epochs,
                            qat_learning_rate=args.qat_lr, qat_engine=args.qat_engine, latency_runs=args.latency_runs,
                            threads=args.threads, metadata=not args.no_metadata, progress=not args.quiet,
                            mediapipe_python=runtimes.mediapipe_python(args.mediapipe_venv))
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
