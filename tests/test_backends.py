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
import json
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
from tests.test_registry import EXPECTED_PARAMS

ROOT = Path(__file__).parents[1]
EXCHANGE = "KERAS_MLP_BACKEND_EXCHANGE"  # folder where a non-TF battery leaves its .keras files for TensorFlow
TINY = dict(image_size=32, num_blocks=2, hidden_dim=32, num_classes=5)
CASES = {  # one tiny model per family; the FF-only ViT with its position embedding stored on another grid
    "mixer_s16_224": dict(TINY, patch_size=8, tokens_mlp_dim=16, channels_mlp_dim=64),
    "resmlp_12_224": dict(TINY, patch_size=8),
    "gmlp_s16_224": dict(TINY, patch_size=8),
    "ff_l32_224": dict(TINY, patch_size=16, pos_embed_grid=(3, 3)),
}
IMAGES = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
LABELS = np.arange(4) % 5
# Run beside this file on the other backend: checkpoints load with the references' logits, resize works.
ALSO_ELSEWHERE = ["tests/test_weights_golden.py::test_timm_golden",
                  "tests/test_resize.py::test_block_diagonal_is_exact_on_repeated_patches[mixer_s16_224]",
                  "tests/test_resize.py::test_interpolate_serves_other_sizes[ff_ti16_224]"]

other_backend = pytest.mark.skipif(
    BACKEND == "tensorflow", reason="runs under KERAS_BACKEND=jax or torch (on TensorFlow: tests/test_models.py, "
    "and test_battery_on_another_backend_then_its_files_on_tensorflow runs this file under JAX and PyTorch)")


def randomised(name: str, seed: int = 0):
    """Tiny model with random weights (the zero-initialised head would make every output zero)."""
    model = keras_mlp.create_model(name, **CASES[name])
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))
    return model


def logits_of(model, images=IMAGES) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(images, training=False))


def gradients(model, images, labels) -> list[np.ndarray]:
    """d(loss)/d(variable) for every trainable variable, with the backend's own autodiff."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if BACKEND == "jax":
        import jax

        def loss(trainable):
            logits, _ = model.stateless_call(trainable, [v.value for v in model.non_trainable_variables], images,
                                             training=True)
            return loss_fn(labels, logits)
        return [np.asarray(g) for g in jax.grad(loss)([v.value for v in model.trainable_variables])]
    model.zero_grad()  # torch
    loss_fn(labels, model(images, training=True)).backward()
    return [keras.ops.convert_to_numpy(v.value.grad) if v.value.grad is not None else np.zeros(v.shape)
            for v in model.trainable_variables]


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
    model = randomised(name)
    logits = logits_of(model)
    assert logits.shape == (4, 5) and np.isfinite(logits).all() and logits.std() > 1e-3
    config = json.loads(json.dumps(model.get_config()))
    clone = type(model).from_config(config)
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(logits_of(clone), logits)
    folder = Path(os.environ.get(EXCHANGE) or tmp_path)
    model.save(folder / f"{name}.keras")
    loaded = keras.saving.load_model(folder / f"{name}.keras")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(logits_of(loaded), logits)
    if os.environ.get(EXCHANGE):
        np.savez(folder / f"{name}.npz", images=IMAGES, logits=logits, backend=BACKEND)


@other_backend
@pytest.mark.parametrize("name", CASES)
def test_fit_lowers_the_loss_and_every_variable_gets_a_gradient(name):
    keras.utils.set_random_seed(0)
    model = keras_mlp.create_model(name, **CASES[name])
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(IMAGES, LABELS, batch_size=4, epochs=8, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < losses[0], losses
    paths = [v.path for v in model.trainable_variables]
    frozen = [p for p, v, b in zip(paths, model.trainable_variables, before)
              if np.array_equal(keras.ops.convert_to_numpy(v), b)]
    assert not frozen, f"variables fit did not update: {frozen}"
    dead = [p for p, g in zip(paths, gradients(model, IMAGES, LABELS)) if not np.any(g)]
    assert not dead, f"variables without gradient: {dead}"


@other_backend
@pytest.mark.parametrize("name", CASES)
def test_features_without_the_head(name):
    tokens = keras_mlp.create_model(name, **{**CASES[name], "include_top": False, "num_classes": 0})
    grid = 32 // CASES[name]["patch_size"]
    features = logits_of(tokens)
    assert features.shape == (4, grid * grid + (name.startswith("ff_")), 32) and np.isfinite(features).all()
    pooled = keras_mlp.create_model(name, **{**CASES[name], "include_top": False, "num_classes": 0,
                                             "pooling": "avg"})
    assert logits_of(pooled).shape == (4, 32)


@other_backend
def test_mixed_bfloat16_forward_and_training_step():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for name in CASES:
            model = keras_mlp.create_model(name, **{**CASES[name], "drop_path_rate": 0.1})
            logits = model(IMAGES, training=True)
            assert keras.backend.standardize_dtype(logits.dtype) == "bfloat16", name
            assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))).all(), name
            assert {v.dtype for v in model.trainable_variables} == {"float32"}, name
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        assert np.isfinite(model.train_on_batch(IMAGES, LABELS))
    finally:
        keras.mixed_precision.set_global_policy("float32")


NO_TENSORFLOW = """
import sys
from pathlib import Path
import keras, numpy as np
import keras_mlp
golden, saved = Path(sys.argv[1]), sys.argv[2]
io = np.load(golden / "mixer.npz")
kwargs = dict(image_size=(24, 40), patch_size=8, num_blocks=2, hidden_dim=32, tokens_mlp_dim=24, channels_mlp_dim=64)
model = keras_mlp.create_model("mixer_s16_224", weights=golden / "mixer.safetensors", **kwargs)
assert np.abs(model.predict(io["images"], verbose=0) - io["logits"]).max() <= 1e-4
again = type(model).from_config(model.get_config())
keras_mlp.load_checkpoint(again, golden / "mixer.safetensors")
np.testing.assert_array_equal(again.predict(io["images"], verbose=0), model.predict(io["images"], verbose=0))
big = keras_mlp.resize(model, 64)
assert np.isfinite(big.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)).all()
loaded = keras.saving.load_model(saved)
assert np.isfinite(loaded.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0)).all()
keras_mlp.Preprocessing().normalize(np.zeros((2, 2, 3), "float32"))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras")))
"""


@other_backend
def test_models_weights_and_keras_files_import_no_tensorflow(tmp_path):
    """Build, checkpoint load, resize, predict and `.keras` load (saving is Keras' own: `serialize_keras_object`
    imports TensorFlow when it is installed, to check for `tf.TensorShape`)."""
    keras_mlp.create_model("resmlp_12_224", **CASES["resmlp_12_224"]).save(tmp_path / "saved.keras")
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
    """The battery above under `backend` (subprocess, with the checkpoint and resize tests `ALSO_ELSEWHERE`), then
    each `.keras` file it saved loads here with the same logits (≤ 1e-5 of the logit scale, float32) and converts
    to a float32 TFLite file that passes the export gate."""
    import export  # here: the other backends' run of this file stays free of the exporter

    # XLA's CPU optimiser costs seconds per function, the tiny models run for milliseconds: compile fast (-35% time)
    fast = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes"
    env = {**os.environ, "KERAS_BACKEND": backend, EXCHANGE: str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": fast.strip()}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", "not on_tensorflow"]
    run = subprocess.run([*command, __file__, *ALSO_ELSEWHERE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
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
        flatbuffer = export.to_tflite(model, "float32", progress=False)
        report = export.check_parity(model, flatbuffer, saved["images"], mode="float32")
        assert report.passed, (name, report)
