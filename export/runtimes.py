"""Which runtimes run a `.tflite` file: `ai_edge_litert`, MediaPipe Tasks' ImageClassifier, the GPU delegate.

`verify` returns one entry per runtime, `{"runs": True | False | None, "verified": bool, "detail": str,
"reasons": [...]}` (`runs` None: unknown; `verified`: the file was run there, not only checked), which the
export records per file (sidecar and report `verified_on`):

- `ai_edge_litert`: the file runs the pixels (the parity gate runs it too).
- `mediapipe`: MediaPipe's own rules, read from its source, refuse a file before it runs (`MEDIAPIPE_RULES`);
  with a MediaPipe Python (mediapipe pins numpy<2 / protobuf<5, so it lives in its own venv:
  `mediapipe_python`, or KERAS_MLP_MEDIAPIPE_VENV) every file is also classified there on the same pixels,
  and runs only if its top-1 equals `ai_edge_litert`'s for >= `MIN_AGREEMENT` of them.
- `gpu_delegate`: `tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)`, a static per-op check of
  the GPU delegate's op support (not a run), parsed into yes/no and the op-level reasons, once the analyzer has
  proved it checks anything (`analyzer_checks_gpu`: TF 2.19+ calls every model compatible), else unknown.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import tempfile

import ai_edge_litert
import numpy as np
import tensorflow as tf

from export import litert
from export.metadata import read_image_metadata
from export.pixels import normalize

MEDIAPIPE = "mediapipe==0.10.21"
MIN_AGREEMENT = 0.99
MEDIAPIPE_RULES = ("mediapipe/tasks/cc/vision/utils/image_tensor_specs.cc (input: uint8 or float32, batch 1, 3/4 "
                   "channels, RGB, float32 needs NormalizationOptions), components/processors/"
                   "image_preprocessing_graph.cc (one mean/std for every channel), "
                   "classification_postprocessing_graph.cc (output: uint8 or float32); its TFLite GELU kernel "
                   "(0.10.21, measured) takes no int16")
GPU_WARNING = "GPU COMPATIBILITY WARNING: "

CLASSIFY = """
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision
model, pixels = sys.argv[1], np.load(sys.argv[2])
try:
    options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1)
    classifier = vision.ImageClassifier.create_from_options(options)
except Exception as err:
    print(json.dumps({"ok": False, "stage": "load", "error": f"{type(err).__name__}: {err}"}))
    sys.exit()
top1, scores = [], []
try:
    for image in pixels:
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        categories = result.classifications[0].categories
        top1.append(categories[0].index)
        row = [0.0] * len(categories)
        for c in categories:
            row[c.index] = c.score
        scores.append(row)
except Exception as err:
    print(json.dumps({"ok": False, "stage": "classify", "error": f"{type(err).__name__}: {err}"}))
    sys.exit()
print(json.dumps({"ok": True, "top1": top1, "scores": scores, "version": mp.__version__}))
"""


def entry(runs: bool | None, verified: bool, detail: str, reasons=(), **extra) -> dict:
    return {"runs": runs, "verified": verified, "detail": detail, "reasons": list(reasons), **extra}


def file_inputs(flatbuffer: bytes, pixels: np.ndarray, normalization) -> np.ndarray:
    """What the file is fed for `pixels`, as MediaPipe does: a uint8 input gets them as they are, any other
    input the normalised pixels (quantised by `export.litert.run` for an int8 input)."""
    if litert.load(flatbuffer).get_input_details()[0]["dtype"] == np.uint8:
        return pixels
    return normalize(pixels, *normalization)


def litert_run(flatbuffer: bytes, pixels: np.ndarray, normalization) -> tuple[dict, np.ndarray | None]:
    """(entry, logits) of `ai_edge_litert` on `pixels`."""
    try:
        logits = litert.run(flatbuffer, file_inputs(flatbuffer, pixels, normalization))
    except Exception as err:  # a kernel the runtime lacks, a bad file
        return entry(False, True, "ai_edge_litert", [f"{type(err).__name__}: {err}"]), None
    finite = bool(np.isfinite(logits).all())
    return entry(finite, True, f"ai_edge_litert {ai_edge_litert.__version__}: {len(pixels)} images",
                 [] if finite else ["non-finite logits"]), logits


def mediapipe_refusals(flatbuffer: bytes) -> list[str]:
    """Why MediaPipe's ImageClassifier refuses `flatbuffer` or fails on it (empty: its rules accept it), from the
    file's tensors and metadata; see `MEDIAPIPE_RULES`."""
    it = litert.load(flatbuffer)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    dtype, shape = inp["dtype"].__name__, [int(v) for v in inp["shape"]]
    reasons = []
    if dtype not in ("uint8", "float32"):
        reasons.append(f"input is {dtype}: ImageClassifier takes uint8 or float32 (use the int8_uint8 file)")
    if len(shape) != 4 or shape[0] != 1 or shape[3] not in (3, 4):
        reasons.append(f"input shape {shape}: ImageClassifier takes 1 x H x W x 3 (or 4) images (RGB only)")
    image = read_image_metadata(flatbuffer)
    if dtype == "float32":
        if image is None or not image["mean"]:
            reasons.append("float32 input without NormalizationOptions metadata")
        elif len(set(zip(image["mean"], image["std"]))) > 1:
            reasons.append(f"per-channel NormalizationOptions (mean {image['mean']}, std {image['std']}): MediaPipe "
                           "applies one mean/std to every channel (use the int8_uint8 file, normalisation inside)")
    if image is not None and image["color"] != "RGB":
        reasons.append(f"colour space {image['color']}: ImageClassifier takes RGB only")
    if out["dtype"].__name__ not in ("uint8", "float32"):
        reasons.append(f"output is {out['dtype'].__name__}: ImageClassifier takes uint8 or float32 scores")
    if any(name == "GELU" and types[0] == litert.schema.TensorType.INT16 for name, types in litert.ops(flatbuffer)):
        reasons.append("int16 GELU: MediaPipe 0.10.21 loads the file but fails at the first image ('Only float32, "
                       "int8 and uint8 supported currently, got INT16. Node number N (GELU) failed to invoke')")
    return reasons


def mediapipe(flatbuffer: bytes, pixels: np.ndarray, litert_logits: np.ndarray | None,
              python: str | None = None) -> dict:
    """MediaPipe's entry: its refusal rules, then (with `python`, a MediaPipe venv's interpreter) a real run on
    `pixels` compared with `ai_edge_litert`'s top-1 (`litert_logits`)."""
    refusals = mediapipe_refusals(flatbuffer)
    if python is None:
        if refusals:
            return entry(False, False, f"refused by MediaPipe's rules: {MEDIAPIPE_RULES}", refusals)
        return entry(None, False, "not run: no MediaPipe venv (pass mediapipe_python or set "
                     f"KERAS_MLP_MEDIAPIPE_VENV to a venv with {MEDIAPIPE})")
    with tempfile.TemporaryDirectory(prefix="keras_mlp_mediapipe_") as tmp:
        model, images = os.path.join(tmp, "model.tflite"), os.path.join(tmp, "pixels.npy")
        with open(model, "wb") as f:
            f.write(flatbuffer)
        np.save(images, np.asarray(pixels, np.uint8))
        done = subprocess.run([python, "-c", CLASSIFY, model, images], capture_output=True, text=True, timeout=900)
    lines = done.stdout.strip().splitlines()
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]  # the TFLite kernel's own
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return entry(False, True, f"MediaPipe crashed (exit {done.returncode})", [tail] + refusals)
    result = json.loads(lines[-1])
    if not result["ok"]:
        return entry(False, True, f"MediaPipe ImageClassifier failed at {result['stage']}",
                     [" ".join(errors) or result["error"]] + refusals)
    if litert_logits is None:
        return entry(False, True, "MediaPipe ran it, ai_edge_litert did not: nothing to compare", refusals)
    top1 = np.asarray(result["top1"])
    agreement = float(np.mean(top1 == litert_logits.argmax(1)))
    reasons = [] if agreement >= MIN_AGREEMENT else [
        f"top-1 equals ai_edge_litert's on {agreement:.2%} of {len(top1)} images (< {MIN_AGREEMENT:.0%})"]
    return entry(agreement >= MIN_AGREEMENT, True, f"mediapipe {result['version']} ImageClassifier: "
                 f"{len(top1)} images", reasons + refusals, agreement=agreement,
                 max_abs_score_diff=float(np.abs(np.asarray(result["scores"]) - litert_logits).max()),
                 max_abs_score=float(np.abs(litert_logits).max()))


def parse_gpu_report(text: str) -> dict:
    """The GPU entry from `Analyzer.analyze(gpu_compatibility=True)`'s text: a warning line follows each op the
    delegate cannot take (`Op#12 GELU(...)`), a summary line ends an incompatible subgraph, and a compatible model
    gets 'Your model looks compatible with GPU delegate'."""
    lines = text.splitlines()
    reasons = [f"{prev.strip().split('(')[0]}: {line[len(GPU_WARNING):]}"
               for prev, line in zip([""] + lines, lines)
               if line.startswith(GPU_WARNING) and not line[len(GPU_WARNING):].startswith("Subgraph#")]
    compatible = "looks compatible with GPU delegate" in text
    if not compatible and not any(line.startswith(GPU_WARNING) for line in lines):
        return entry(None, False, "GPU analyzer output not understood", [text.strip()[-300:]])
    return entry(compatible and not reasons, False, "static op check: tf.lite.experimental.Analyzer "
                 "(gpu_compatibility=True)", reasons)


def analyze(flatbuffer: bytes) -> str:
    """`tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)`'s printout for `flatbuffer`."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    return text.getvalue()


@functools.cache
def analyzer_checks_gpu() -> bool:
    """Whether the analyzer's GPU check runs at all: it must flag a Flex op. TF 2.19+ dropped the checks but still
    prints 'looks compatible' for any model (tensorflow/tensorflow#77042); measured on TF 2.21: a Flex op, UNIQUE,
    WHERE and a 5-D TRANSPOSE all 'look compatible'."""

    def determinant(x):
        return tf.linalg.det(x)
    canary = tf.function(determinant, input_signature=[tf.TensorSpec([1, 2, 2], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([canary.get_concrete_function()], canary)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    return parse_gpu_report(analyze(converter.convert()))["runs"] is False


def gpu_delegate(flatbuffer: bytes) -> dict:
    """The GPU delegate's entry for `flatbuffer` (`parse_gpu_report` of the analyzer's printout); unknown when
    this TF's analyzer checks nothing (`analyzer_checks_gpu`)."""
    if not analyzer_checks_gpu():
        return entry(None, False, f"not checked: tf.lite.experimental.Analyzer of TF {tf.__version__} runs no GPU "
                     "checks (it calls a Flex op GPU-compatible; tensorflow/tensorflow#77042)")
    return parse_gpu_report(analyze(flatbuffer))


def mediapipe_python(venv: str | None = None) -> str | None:
    """The Python of a MediaPipe venv: `venv`, else KERAS_MLP_MEDIAPIPE_VENV; None when neither is set."""
    venv = venv or os.environ.get("KERAS_MLP_MEDIAPIPE_VENV")
    return os.path.join(venv, "bin", "python") if venv else None


def verify(flatbuffer: bytes, pixels: np.ndarray, normalization, *, mediapipe_python: str | None = None) -> dict:
    """`{"ai_edge_litert": ..., "mediapipe": ..., "gpu_delegate": ...}` for `flatbuffer` on uint8 `pixels`
    (N, H, W, C); `normalization` is the (mean, std) a float or int8 input takes (None: unknown)."""
    litert_entry, logits = litert_run(flatbuffer, pixels, normalization)
    return {"ai_edge_litert": litert_entry,
            "mediapipe": mediapipe(flatbuffer, pixels, logits, mediapipe_python),
            "gpu_delegate": gpu_delegate(flatbuffer)}

