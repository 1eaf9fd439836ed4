"""Slow: MediaPipe Tasks' ImageClassifier (the standard Android/Python client) loads and classifies our files.

mediapipe pins numpy<2 / protobuf<5 and cannot share the project environment, so the test builds its own
venv (KERAS_MLP_MEDIAPIPE_VENV to reuse one) with `mediapipe==0.10.21`, and skips with the reason when that
cannot be installed (no registry access). Run: `pytest tests/test_export_mediapipe.py -m slow -s` (prints the
per-file figures).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from export import litert, runtimes
from export.options import ExportOptions
from export.pipeline import export_model
from keras_mlp.data import load_dataset
from keras_mlp.preprocessing import Preprocessing
from tests.backends import tensorflow_only
from tests.helpers import random_tiny_model, tiny_model

pytestmark = [pytest.mark.slow, tensorflow_only("TFLite export")]
MEDIAPIPE = runtimes.MEDIAPIPE

CLASSIFY = textwrap.dedent("""
    import json, sys
    import numpy as np
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision
    model, image_file = sys.argv[1], sys.argv[2]
    options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=3)
    pixels = np.load(image_file)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
    print(json.dumps([[c.category_name, c.score] for c in result.classifications[0].categories]))
""")


@pytest.fixture(scope="module")
def mediapipe_python(tmp_path_factory) -> str:
    venv = os.environ.get("KERAS_MLP_MEDIAPIPE_VENV") or str(tmp_path_factory.mktemp("mpvenv"))
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    if subprocess.run([python, "-c", "import mediapipe"], capture_output=True).returncode != 0:
        done = subprocess.run([python, "-m", "pip", "install", "-q", MEDIAPIPE], capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0:
            pytest.skip(f"cannot install {MEDIAPIPE} in a separate venv: {done.stderr.strip()[-300:]}")
    return python


@pytest.mark.parametrize("mode", ["float32", "int8_float_io"])
def test_mediapipe_image_classifier_uses_metadata(tmp_path, mediapipe_python, mode):
    model = random_tiny_model("mixer_s16_224", image_size=16, patch_size=4, num_classes=5)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)  # the gate's 32 images; MediaPipe gets the first
    normalised = (pixels.astype("float32") / 255.0 - 0.5) / 0.5
    names = ("zero", "one", "two", "three", "four")
    calibration = rng.uniform(-1, 1, (32, 16, 16, 3)).astype("float32")
    options = ExportOptions(modes=mode, class_names=names, latency_runs=2, threads=(1,), progress=False,
                            thresholds={mode: {"agreement": 0.0, "accuracy_drop": 1.0}})
    summary = export_model(model, tmp_path / "out", options, eval_data=normalised, calibration_data=calibration)
    np.save(tmp_path / "image.npy", pixels[0])
    (tmp_path / "classify.py").write_text(CLASSIFY)
    done = subprocess.run([mediapipe_python, str(tmp_path / "classify.py"), summary["files"][mode],
                           str(tmp_path / "image.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    categories = json.loads(done.stdout.strip().splitlines()[-1])
    logits = model.predict(normalised[:1], verbose=0)[0]
    assert categories[0][0] == names[int(np.argmax(logits))]  # labels from the metadata, normalisation applied
    if mode == "float32":
        np.testing.assert_allclose(categories[0][1], logits.max(), atol=1e-3)


def digits(split: str, mean, std):
    ds = load_dataset("digits", split, image_size=(16, 16), preprocessing=Preprocessing(mean, std), batch_size=2048,
                      shuffle=False)
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy()


def train_digits(mean, std, epochs: int = 20):
    import keras
    keras.utils.set_random_seed(0)
    model = tiny_model("mixer_s16_224", image_size=16, patch_size=4, num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(*digits("train", mean, std), batch_size=64, epochs=epochs, verbose=0)
    return model


def mediapipe_table(summary: dict, out) -> str:
    """The per-file MediaPipe figures as a Markdown table."""
    rows = ["| mode | input | MediaPipe | top-1 = ai_edge_litert | max abs score diff (of max abs score) | reasons |",
            "|---" * 6 + "|"]
    for r in summary["results"]:
        mp = r["verified_on"]["mediapipe"]
        dtype = litert.load(out / r["file"]).get_input_details()[0]["dtype"].__name__
        agreement = f"{mp['agreement']:.2%} ({mp['detail'].split(': ')[1]})" if "agreement" in mp else "–"
        diff = "–" if "agreement" not in mp else f"{mp['max_abs_score_diff']:.2g} of {mp['max_abs_score']:.3g}"
        rows.append(f"| {r['mode']} | {dtype} | {'classifies' if mp['runs'] else 'NO'} | {agreement} | {diff} | "
                    f"{'; '.join(mp['reasons'])[:200]} |")
    return "\n".join(rows)


def test_mediapipe_classifies_every_file_it_accepts(tmp_path, mediapipe_python):
    """Every mode of a Mixer trained on digits, through MediaPipe's ImageClassifier on the test split's pixels:
    each file MediaPipe accepts gives ai_edge_litert's top-1 on >= 99% of them, and MediaPipe's refusal rules
    (`export.runtimes.mediapipe_refusals`) predict exactly the files it refuses or fails on."""
    mean = std = (0.5, 0.5, 0.5)
    model = train_digits(mean, std)
    train, test = digits("train", mean, std), digits("test", mean, std)
    options = ExportOptions(modes="all", class_names=[str(i) for i in range(10)],
                            preprocessing=Preprocessing(mean, std), qat_epochs=1, latency_runs=3, threads=(1,),
                            progress=False, mediapipe_python=mediapipe_python)
    summary = export_model(model, tmp_path, options, train_data=train, eval_data=test)
    print(f"\nfloat Keras accuracy {summary['float_accuracy']:.2%}\n" + mediapipe_table(summary, tmp_path))
    assert summary["passed"], summary["rejected"]
    assert summary["float_accuracy"] > 0.85
    refused = {"int8": "INT8", "qat": "INT8", "int16x8": "GELU"}
    for r in summary["results"]:
        mp = r["verified_on"]["mediapipe"]
        rules = runtimes.mediapipe_refusals((tmp_path / r["file"]).read_bytes())
        assert mp["verified"], (r["mode"], mp)  # really run in MediaPipe
        if r["mode"] in refused:
            assert mp["runs"] is False and refused[r["mode"]] in mp["reasons"][0] and rules, (r["mode"], mp)
        else:
            assert mp["runs"] and mp["agreement"] >= runtimes.MIN_AGREEMENT and not rules, (r["mode"], mp)


def test_raw_pixel_file_runs_where_a_per_channel_float_file_cannot(tmp_path, mediapipe_python):
    """MediaPipe applies one mean/std to every channel of a float input; a raw-pixel file carries its own."""
    mean, std = (0.45, 0.5, 0.55), (0.6, 0.5, 0.4)
    model = train_digits(mean, std, epochs=10)
    test = digits("test", mean, std)
    options = ExportOptions(modes="float32,int8_uint8", class_names=[str(i) for i in range(10)],
                            preprocessing=Preprocessing(mean, std), latency_runs=3, threads=(1,), progress=False,
                            mediapipe_python=mediapipe_python)
    summary = export_model(model, tmp_path, options, calibration_data=test[0], eval_data=test)
    print("\n" + mediapipe_table(summary, tmp_path))
    float32, raw = (r["verified_on"]["mediapipe"] for r in summary["results"])
    assert float32["runs"] is False and "Per-channel image normalization is not available" in float32["reasons"][0]
    assert raw["runs"] and raw["agreement"] >= runtimes.MIN_AGREEMENT, raw
