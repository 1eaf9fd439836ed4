"""Slow: MediaPipe Tasks' ImageClassifier (the standard Android/Python client) loads and classifies our files.

mediapipe pins numpy<2 / protobuf<5 and cannot share the project environment, so the test builds its own
venv (KERAS_MLP_MEDIAPIPE_VENV to reuse one) with `mediapipe==0.10.21`, and skips with the reason when that
cannot be installed (no registry access).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from export.options import ExportOptions
from export.pipeline import export_model
from tests.conftest import randomised

pytestmark = pytest.mark.slow
MEDIAPIPE = "mediapipe==0.10.21"

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
    model = randomised("mixer_s16_224", image_size=16, patch_size=4, num_classes=5)
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
