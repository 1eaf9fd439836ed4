"""`keras-mlp-export`: a thin CLI over `export.export_model` (and `export.check_parity` with --gate).

    keras-mlp-export model.keras --modes all --data digits --out exported/
    keras-mlp-export model.keras --gate exported/model_int8.tflite --data digits   # mode from its sidecar

Exit codes: 0 every file passed its gate; 1 a file was rejected (kept under OUT/rejected/); 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from export.convert import MODES, ExportError
from export.runtimes import mediapipe_python

EXIT_REJECTED, EXIT_BAD_INPUT = 1, 2


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
                        "or file name)")
    p.add_argument("--batch-size", default=1, type=batch_size, help="static signature batch, or 'dynamic'")
    p.add_argument("--num-calibration", type=positive_int, default=256)
    p.add_argument("--num-eval", type=positive_int, default=None, help="held-out images for the gate (default all)")
    p.add_argument("--mean", type=float, nargs="+", default=None,
                   help="normalisation mean on 0..1 pixels, one value per input channel")
    p.add_argument("--std", type=float, nargs="+", default=None,
                   help="normalisation std (> 0) on 0..1 pixels, one value per input channel")
    p.add_argument("--threshold", action="append", default=[], metavar="MODE.KEY=VALUE",
                   help="override a gate threshold, e.g. int8.agreement=0.97 (keys: max_abs, mean_abs, "
                        "accuracy_drop >= 0; cosine, agreement in [0, 1])")
    p.add_argument("--qat-epochs", type=positive_int, default=3)
    p.add_argument("--qat-lr", type=positive_float, default=1e-4)
    p.add_argument("--latency-runs", type=positive_int, default=50)
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    p.add_argument("--no-metadata", action="store_true", help="do not embed TFLite metadata")
    p.add_argument("--mediapipe-venv", default=os.environ.get("KERAS_MLP_MEDIAPIPE_VENV"),
                   help="venv with mediapipe==0.10.21: classify every file with MediaPipe's ImageClassifier too "
                        "(default: $KERAS_MLP_MEDIAPIPE_VENV)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_thresholds(items: list[str]) -> dict:
    """--threshold MODE.KEY=VALUE items → checked {mode: {key: value}} (unknown modes/keys, ranges: ExportError)."""
    from export.parity import check_thresholds
    thresholds: dict = {}
    for item in items:
        try:
            key, value = item.split("=", 1)
            mode, name = key.split(".", 1)
            thresholds.setdefault(mode, {})[name] = float(value)
        except ValueError:
            raise ExportError(f"Bad --threshold {item!r}: use MODE.KEY=VALUE, e.g. int8.agreement=0.97.") from None
    try:
        return check_thresholds(thresholds)
    except ExportError as err:
        raise ExportError(f"--threshold: {err}") from None


def load_model(path: str):
    """The Keras model at `path` (keras_mlp classes registered), or `ExportError` naming the problem."""
    if not os.path.isfile(path):
        raise ExportError(f"Model file {path!r} does not exist. Pass the path of a saved .keras model.")
    if not path.endswith(".keras"):
        raise ExportError(f"{path!r} is not a .keras file. Save the model with model.save('model.keras').")
    import keras

    import keras_mlp  # noqa: F401  (registers the custom layers)
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # corrupt zip, missing config, unknown class
        raise ExportError(f"Cannot load {path!r} as a Keras model ({type(err).__name__}: {err}). Is the file "
                          "complete? Re-save it with model.save('model.keras').") from err


def load_data(args, model):
    """(train, test, class_names, mean, std): `export.datasets.load_splits` in the model's preprocessing (its
    mean/std replaced by --mean/--std when given) at the model's image size."""
    from export.datasets import load_splits
    from export.pipeline import preprocessing_of
    from keras_mlp.preprocessing import Preprocessing
    mean, std = preprocessing_of(model, args.mean, args.std)
    if mean is None:
        raise ExportError(f"Model {model.name!r} records no preprocessing (it is not a keras_mlp model): pass --mean "
                          "and --std (the normalisation it was trained with, on 0..1 pixels).")
    base = getattr(model, "preprocessing", None) or Preprocessing()
    preprocessing = Preprocessing(mean, std, base.crop_pct, base.interpolation)
    train, test, names = load_splits(args.data, preprocessing, model.inputs[0].shape[1:3], data_dir=args.data_dir)
    return train, test, names, mean, std


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        thresholds = parse_thresholds(args.threshold)
        if args.gate is not None:
            return gate(args, thresholds)
        from export.pipeline import check_out_dir, resolve_modes
        resolve_modes(args.modes)
        check_out_dir(args.out, create=False)
        model = load_model(args.model)
        from export.pipeline import export_model, num_classes_of
        num_classes = num_classes_of(model)
        train, test, names, mean, std = load_data(args, model)
        if num_classes != len(names):
            raise ExportError(f"The model has {num_classes} outputs but {args.data!r} has {len(names)} classes. "
                              "Export it with the dataset it was trained on.")
        summary = export_model(model, args.out, args.modes, train_data=train, eval_data=test, class_names=names,
                               mean=mean, std=std, batch_size=args.batch_size, num_calibration=args.num_calibration,
                               num_eval=args.num_eval, thresholds=thresholds, qat_epochs=args.qat_epochs,
                               qat_learning_rate=args.qat_lr, latency_runs=args.latency_runs,
                               threads=args.threads, metadata=not args.no_metadata, progress=not args.quiet,
                               mediapipe_python=mediapipe_python(args.mediapipe_venv))
    except (ExportError, ValueError) as err:
        print(f"keras-mlp-export: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with open(os.path.join(args.out, "report.md")) as f:
        print(f.read())
    for mode, path in summary["rejected"].items():
        print(f"REJECTED {mode}: {path}", file=sys.stderr)
    return 0 if summary["passed"] else EXIT_REJECTED


def sidecar_mode(path: str) -> str | None:
    """The "mode" in the sidecar .json beside a .tflite written by export_model, if there is one."""
    stem = path[: -len(".tflite")] if path.endswith(".tflite") else path
    try:
        with open(stem + ".json") as f:
            return json.load(f).get("mode")
    except (OSError, ValueError, AttributeError):
        return None


def mode_of(path: str) -> str:
    """The export mode of a .tflite written by export_model: its sidecar's "mode", else its file name's suffix."""
    stem = (path[: -len(".tflite")] if path.endswith(".tflite") else path).removesuffix(".REJECTED")
    mode = sidecar_mode(path) or next((m for m in sorted(MODES, key=len, reverse=True) if stem.endswith("_" + m)), None)
    if mode not in MODES:
        raise ExportError(f"Cannot tell the export mode of {path!r} (no sidecar .json, no _<mode> suffix): "
                          "pass it with --modes, e.g. --modes int8.")
    return mode


def gate(args, thresholds: dict) -> int:
    """--gate: parity of an existing .tflite against the model on the test split."""
    from export.parity import check_parity
    from export.pipeline import as_arrays, gate_feed, resolve_modes
    from export.pixels import PIXEL_MODES
    if not os.path.isfile(args.gate):
        raise ExportError(f"TFLite file {args.gate!r} does not exist.")
    modes = resolve_modes(args.modes) if args.modes != "all" else [mode_of(args.gate)]
    if len(modes) != 1:
        raise ExportError("--gate checks one file: pass its mode with --modes, e.g. --modes int8.")
    recorded = sidecar_mode(args.gate)
    if recorded and recorded != modes[0]:
        raise ExportError(f"{args.gate!r} is a {recorded} file (its sidecar .json says so); --modes {modes[0]} would "
                          "gate it with another mode's thresholds. Leave --modes out.")
    with open(args.gate, "rb") as f:
        flatbuffer = f.read()
    model = load_model(args.model)
    from export.pipeline import num_classes_of
    num_classes_of(model)
    _, test, _, mean, std = load_data(args, model)
    from export.convert import input_spec
    images, labels = as_arrays(test, input_spec(model), args.num_eval)
    images, reference = gate_feed(model, modes[0] in PIXEL_MODES, images, mean, std)  # raw pixels for those modes
    report = check_parity(model, flatbuffer, images, labels, mode=modes[0], thresholds=thresholds.get(modes[0]),
                          reference=reference)
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.passed else EXIT_REJECTED


if __name__ == "__main__":
    sys.exit(main())
