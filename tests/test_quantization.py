"""Quantisation-aware training on Keras 3 (`keras_mlp.quantization`), one tiny randomised model per registered
family: fake-quant points, `.keras` round trip, `fit`, and full-int8 conversion whose scales are the learned
ranges (no representative dataset)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_mlp
from keras_mlp.backend import keras
from keras_mlp.quantization import int8_converter, quantize_aware, range_quantizers
from tests.backends import tensorflow_only
from tests.helpers import (
    assert_every_variable_gets_a_gradient,
    assert_not_degenerate,
    gradients,
    random_images,
    random_tiny_model,
    subprocess_env,
)

numpy = keras.ops.convert_to_numpy

# One registered variant per family, read from the registry (a new family joins the matrix by itself).
FAMILIES = {}
for _name in keras_mlp.list_models():
    FAMILIES.setdefault(keras_mlp.get_variant(_name).family.block, _name)
# Activation ranges per block (LayerNorm: 9, one per op it lowers to; MLP: fc1, GELU, fc2; Affine: 2; then the
# residual adds). A family missing here fails test_fake_quant_points.
LN, MLP = 9, 3
POINTS_PER_BLOCK = {"mixer": 2 * LN + 2 * MLP + 2, "resmlp": 2 * 2 + 1 + 1 + MLP + 1 + 2,
                    "gmlp": LN + 2 + (LN + 1 + 1) + 1 + 1, "ff": 2 * LN + 2 * MLP + 2}
# Thresholds of the int8 file against the QAT Keras model, on 64 random images after 2 epochs of fit: measured
# top-1 agreement 0.94-1.0 and max |error| 0.03-0.10 of the mean logit spread over the four families.
MIN_TOP1, MAX_ERROR = 0.85, 0.2


def _labels(n):
    return np.arange(n) % 5


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def trained(request):
    """(float model, QAT model after 2 epochs of fit, images, loss history), the same whichever tests ran before
    in this process (the global seed drives fit's shuffling)."""
    keras.utils.set_random_seed(0)
    model = random_tiny_model(FAMILIES[request.param])
    images = random_images(64, 32)
    qat = quantize_aware(model)
    qat.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = qat.fit(images, _labels(64), epochs=2, batch_size=16, verbose=0)
    return request.param, model, qat, images, history.history["loss"]


def test_fake_quant_points(trained):
    """Calibrated on random images, the QAT model is close to the float one but not equal; ranges per block as
    expected."""
    block, model, _, _, _ = trained
    images = random_images(16, 32, seed=1)
    qat = quantize_aware(model, calibration=images)
    expected, got = numpy(model(images)), numpy(qat(images))
    assert_not_degenerate(got)
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert 0 < error < 0.15, error  # measured 0.02-0.08
    names = [q.path for q in range_quantizers(qat)]
    for i in range(model.num_blocks):
        prefix = f"{keras_mlp.layers.BLOCKS[block].__name__}_{i}/"
        assert sum(n.startswith(prefix) for n in names) == POINTS_PER_BLOCK[block], (block, prefix, names)


def test_keras_round_trip(trained, tmp_path):
    _, _, qat, images, _ = trained
    qat.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    assert type(loaded) is type(qat) and loaded.get_config() == qat.get_config()
    expected = numpy(qat(images))
    assert_not_degenerate(expected)
    np.testing.assert_array_equal(numpy(loaded(images)), expected)


def test_fit(trained):
    """The loss falls; every trainable variable moved from the float weights and gets a gradient; every range was
    observed."""
    _, model, qat, images, losses = trained
    assert losses[-1] < losses[0], losses
    start = {v.path: numpy(v) for v in model.trainable_variables}
    unmoved = [v.path for v in qat.trainable_variables if np.array_equal(numpy(v), start[v.path])]
    assert not unmoved and len(start) == len(qat.trainable_variables), unmoved
    assert_every_variable_gets_a_gradient(qat, gradients(qat, images, _labels(64)), fake_quantized=True)
    unset = [q.path for q in range_quantizers(qat) if not float(numpy(q.seen)) or float(numpy(q.max)) <= 0]
    assert not unset, unset


@tensorflow_only("TFLite conversion")
def test_int8_learned_ranges(trained):
    """Full int8 with no representative dataset: every op output is int8 and its scale/zero point is a learned
    range (within one step); the file agrees with the QAT Keras model."""
    from ai_edge_litert.interpreter import Interpreter

    from export.litert import float_compute_ops, non_builtin_ops
    _, _, qat, images, _ = trained
    flatbuffer = int8_converter(qat).convert()
    assert non_builtin_ops(flatbuffer) == [] and float_compute_ops(flatbuffer) == {}
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ranges = [(float(q.min.numpy()), float(q.max.numpy())) for q in range_quantizers(qat)]
    for index in {i for op in interpreter._get_ops_details() for i in op["outputs"]}:
        tensor = tensors[index]
        scale, zero = tensor["quantization"]
        assert tensor["dtype"] == np.int8, tensor["name"]
        # distance in quantisation steps of the scale and of the range's low end, to the nearest learned range
        steps = min(max(abs(scale - (hi - lo) / 255), abs(lo - scale * (-128 - zero))) / scale for lo, hi in ranges)
        assert steps <= 1.0, (tensor["name"], scale, zero, steps)
    (image_in,), (logits_out,) = interpreter.get_input_details(), interpreter.get_output_details()
    (s_in, z_in), (s_out, z_out) = image_in["quantization"], logits_out["quantization"]
    logits = []
    for image in images:
        quantized = np.clip(np.round(image[None] / s_in + z_in), -128, 127).astype(np.int8)
        interpreter.set_tensor(image_in["index"], quantized)
        interpreter.invoke()
        logits.append((interpreter.get_tensor(logits_out["index"]).astype(np.float32) - z_out) * s_out)
    logits, expected = np.concatenate(logits), numpy(qat(images))
    assert_not_degenerate(expected)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= MIN_TOP1
    assert np.abs(logits - expected).max() / np.ptp(expected, axis=1).mean() <= MAX_ERROR


@pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize` method")
def test_bad_inputs():
    model = random_tiny_model(FAMILIES["mixer"], num_blocks=1)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    with pytest.raises(TypeError, match="does not know: \\['Dense'\\]"):
        quantize_aware(other)
    with pytest.raises(TypeError, match="keras_mlp model"):
        quantize_aware("mixer")
    with pytest.raises(ValueError, match="already quantisation-aware"):
        quantize_aware(quantize_aware(model))
    with pytest.raises(ValueError, match="weight_bits"):
        quantize_aware(model, weight_bits=1)
    int8 = random_tiny_model(FAMILIES["mixer"], num_blocks=1)
    int8.quantize("int8")
    with pytest.raises(ValueError, match="model.quantize"):
        quantize_aware(int8)


def test_missing_backend_op(monkeypatch):
    monkeypatch.delattr(keras.quantizers, "fake_quant_with_min_max_vars")
    with pytest.raises(ValueError, match="fake_quant_with_min_max_vars"):
        quantize_aware(random_tiny_model(FAMILIES["mixer"], num_blocks=1))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fit_on_another_backend(backend):
    """The same QAT model trains under JAX and PyTorch (a subprocess: the backend is chosen at import), and leaves
    the float model it was made from as it was."""
    script = textwrap.dedent(f"""
        import numpy as np, keras
        from keras_mlp.quantization import quantize_aware
        from tests.helpers import random_images, random_tiny_model
        model = random_tiny_model({FAMILIES["mixer"]!r}, num_blocks=1)
        expected = keras.ops.convert_to_numpy(model(random_images(2, 32)))
        qat = quantize_aware(model)
        qat.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses = qat.fit(random_images(32, 32), np.arange(32) % 5, epochs=3, batch_size=16, verbose=0).history["loss"]
        assert keras.backend.backend() == {backend!r} and losses[-1] < losses[0], losses
        # the float model is untouched (JAX's fit donates the QAT weights' buffers: they must be copies)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(random_images(2, 32))), expected)
        print("ok", losses)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=subprocess_env(KERAS_BACKEND=backend))
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
