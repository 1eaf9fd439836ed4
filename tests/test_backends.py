"""The zoo on Keras' other backends (JAX; PyTorch where installed), one layer source for all of them.

Under `KERAS_BACKEND=jax` (or `torch`) the battery below runs in process: every registry variant's parameter
count, forward, JSON config and `.keras` round trips, `model.fit` lowering the loss with a gradient for every
variable, features without the head, mixed bfloat16, and the model/weights code importing no TensorFlow.
Under TensorFlow (the default run) `test_battery_on_another_backend_then_its_files_on_tensorflow` runs that
battery, the golden checkpoint loads and `keras_mlp.resize` in a `KERAS_BACKEND=jax` subprocess (and `torch`, slow
tier, where PyTorch is installed), then loads the `.keras` files the subprocess saved: same logits as there, and
they export to TFLite through the float32 gate.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_mlp
from tests.backends import BACKEND
from tests.helpers import (
    FAMILY_REPRESENTATIVES,
    assert_not_degenerate,
    predict,
    random_images,
    random_tiny_model,
    run_model_saving_test,
    run_serialization_test,
    run_training_test,
    tiny_model,
)
from tests.test_registry import EXPECTED_PARAMS

ROOT = Path(__file__).parents[1]
EXCHANGE = "KERAS_MLP_BACKEND_EXCHANGE"  # folder where a non-TF battery leaves its .keras files for TensorFlow
# One tiny model per family; the FF-only ViT as ViT-L/32, whose position embedding is stored on a 14x14 grid.
CASES = [*FAMILY_REPRESENTATIVES[:3], "ff_l32_224"]
IMAGES = random_images(4, 32)
# Run beside this file on the other backend: checkpoints load with the references' logits, resize works; on JAX
# a preset from the loopback server too (its `home` fixture hides torch from `sys.modules`, which the torch backend
# itself needs).
PRESET = "tests/test_download.py::test_preset_downloads_once_then_comes_from_the_cache"
ALSO_ELSEWHERE = ["tests/test_weights_golden.py::test_timm_golden",
                  "tests/test_resize.py::test_block_diagonal_is_exact_on_repeated_patches[mixer_s16_224]",
                  "tests/test_resize.py::test_interpolate_serves_other_sizes[ff_ti16_224]"]

other_backend = pytest.mark.skipif(
    BACKEND == "tensorflow", reason="runs under KERAS_BACKEND=jax or torch (on TensorFlow: tests/test_models.py, "
    "and test_battery_on_another_backend_then_its_files_on_tensorflow runs this file under JAX and PyTorch)")


@other_backend
def test_every_registered_variant_builds_with_its_parameter_count():
    """Full-size graphs with every variable's shape; values are not drawn (deferred), so all 18 build in seconds."""
    assert set(keras_mlp.list_models()) == set(EXPECTED_PARAMS)
    for name in keras_mlp.list_models():
        with keras.StatelessScope(initialize_variables=False):
            model = keras_mlp.create_model(name)
        assert model.count_params() == EXPECTED_PARAMS[name] == keras_mlp.get_variant(name).params, name
        assert model.get_layer("head").units == 1000
        del model
        keras.backend.clear_session()


@other_backend
@pytest.mark.parametrize("name", CASES)
def test_forward_config_and_keras_round_trips(name, tmp_path):
    model = random_tiny_model(name)
    run_serialization_test(model, IMAGES)
    folder = Path(os.environ.get(EXCHANGE) or tmp_path)
    run_model_saving_test(model, IMAGES, folder / f"{name}.keras")
    if os.environ.get(EXCHANGE):
        np.savez(folder / f"{name}.npz", images=IMAGES, logits=predict(model, IMAGES), backend=BACKEND)


@other_backend
@pytest.mark.parametrize("name", CASES)
def test_fit_lowers_the_loss_and_every_variable_gets_a_gradient(name):
    keras.utils.set_random_seed(0)
    run_training_test(tiny_model(name), IMAGES)


@other_backend
@pytest.mark.parametrize("name", CASES)
def test_features_without_the_head(name):
    tokens = random_tiny_model(name, include_top=False, num_classes=0)
    features = predict(tokens, IMAGES)
    assert features.shape == (4, tokens.grid_size[0] * tokens.grid_size[1] + tokens.class_token, 32)
    assert_not_degenerate(features)
    pooled = tiny_model(name, include_top=False, num_classes=0, pooling="avg")
    assert predict(pooled, IMAGES).shape == (4, 32)


@other_backend
def test_mixed_bfloat16_forward_and_training_step():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for name in CASES:
            model = tiny_model(name, drop_path_rate=0.1)
            logits = model(IMAGES, training=True)
            assert keras.backend.standardize_dtype(logits.dtype) == "bfloat16", name
            assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))).all(), name
            assert {v.dtype for v in model.trainable_variables} == {"float32"}, name
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        assert np.isfinite(model.train_on_batch(IMAGES, np.arange(4) % model.num_classes))
    finally:
        keras.mixed_precision.set_global_policy("float32")


NO_TENSORFLOW = """
import sys
import keras, numpy as np
import keras_mlp
from tools.compare_golden import RTOL, golden_case, relative_error
golden, saved = sys.argv[1], sys.argv[2]
name, overrides, state, images, reference = golden_case(golden, "mixer")
model = keras_mlp.create_model(name, **overrides)
keras_mlp.load_checkpoint(model, state)
assert relative_error(model.predict(images, verbose=0), reference) <= RTOL
again = keras_mlp.create_model(name, weights=f"{golden}/mixer.safetensors", **overrides)
np.testing.assert_array_equal(again.predict(images, verbose=0), model.predict(images, verbose=0))
big = keras_mlp.resize(model, (2 * model.image_size[0], 2 * model.image_size[1]))
assert np.isfinite(big.predict(np.zeros((1, *big.image_size, 3), "float32"), verbose=0)).all()
loaded = keras.saving.load_model(saved)
assert np.isfinite(loaded.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)).all()
keras_mlp.Preprocessing().normalize(np.zeros((2, 2, 3), "float32"))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras")))
"""


@other_backend
def test_models_weights_and_keras_files_import_no_tensorflow(tmp_path):
    """Build, checkpoint load, resize, predict and `.keras` load (saving is Keras' own: `serialize_keras_object`
    imports TensorFlow when it is installed, to check for `tf.TensorShape`)."""
    tiny_model("resmlp_12_224").save(tmp_path / "saved.keras")
    run = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(ROOT / "tests" / "golden"),
                          str(tmp_path / "saved.keras")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "[]", f"TensorFlow imported on {BACKEND}: {run.stdout[-2000:]}"


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the TensorFlow side of the other backends' battery")
@pytest.mark.parametrize("backend", [
    "jax",  # in the test extra: the fast tier runs it
    pytest.param("torch", marks=[pytest.mark.slow, pytest.mark.skipif(
        importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install torch, CPU wheel)")]),
])
def test_battery_on_another_backend_then_its_files_on_tensorflow(backend, tmp_path):
    """The battery above under `backend` (subprocess, with the checkpoint, resize and preset tests), then
    each `.keras` file it saved loads here with the same logits (≤ 1e-5 of the logit scale, float32) and converts
    to a float32 TFLite file that passes the export gate."""
    from export.convert import to_tflite  # here: the other backends' run of this file stays free of the exporter
    from export.parity import MIN_GATE_IMAGES, check_parity
    gate_images = random_images(MIN_GATE_IMAGES, 32, seed=1)  # the gate's fewest images

    # XLA's CPU optimiser costs seconds per function, the tiny models run for milliseconds: compile fast (-35% time)
    fast = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes"
    env = {**os.environ, "KERAS_BACKEND": backend, EXCHANGE: str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": fast.strip()}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", "not on_tensorflow"]
    tests = [__file__, *ALSO_ELSEWHERE, *([PRESET] if backend == "jax" else [])]
    run = subprocess.run([*command, *tests], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
    for name in CASES:
        saved = np.load(tmp_path / f"{name}.npz")
        assert str(saved["backend"]) == backend
        model = keras.saving.load_model(tmp_path / f"{name}.keras")
        logits = model.predict(saved["images"], verbose=0)
        scale = np.abs(saved["logits"]).max()
        assert np.abs(logits - saved["logits"]).max() <= 1e-5 * scale, name
        flatbuffer = to_tflite(model, "float32", progress=False)
        report = check_parity(model, flatbuffer, gate_images, mode="float32")
        assert report.passed, (name, report)
