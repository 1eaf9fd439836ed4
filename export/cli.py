"""`keras-mlp-export`: a thin CLI over `export.pipeline.export_model` and `export.gate.gate_file` (--gate).

    keras-mlp-export model.keras --modes all --data digits --out exported/
    keras-mlp-export model.keras --gate exported/model_int8.tflite --data digits   # mode from its sidecar

Exit codes: 0 every file passed its gate; 1 a file was rejected (moved to rejected/ with its report); 2 bad input.
Only argparse and the pure-Python `export.errors` / `export.modes` load before the arguments are parsed, so
`--help` and argument errors come at once; the run itself (`export.command`, TensorFlow) loads after them.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from export.errors import EXIT_BAD_INPUT, ExportError
from export.modes import MODES, QAT_ENGINES


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
    p.add_argument("--qat-engine", choices=QAT_ENGINES, default="tfmot",
                   help="QAT fine-tune: tfmot (tf_keras subprocess) or keras (keras_mlp.quantization, Keras 3)")
    p.add_argument("--latency-runs", type=positive_int, default=50)
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    p.add_argument("--no-metadata", action="store_true", help="do not embed TFLite metadata")
    p.add_argument("--mediapipe-venv", default=os.environ.get("KERAS_MLP_MEDIAPIPE_VENV"),
                   help="venv with mediapipe==0.10.21: classify every file with MediaPipe's ImageClassifier too "
                        "(default: $KERAS_MLP_MEDIAPIPE_VENV)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from export.command import run  # TensorFlow: only once --help has been answered

    try:
        return run(args)
    except ExportError as err:
        print(f"keras-mlp-export: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
