"""Shared test helpers: one tiny configuration per family, one weight randomiser, a degeneracy check, and the
battery every registered variant passes (keras-hub's `TestCase.run_*_test` pattern, parametrised over
`keras_mlp.list_models()` in tests/test_models.py).

Equality tests compare randomised models: the heads are zero-initialised (as the papers do), so a fresh model
outputs zeros and any two fresh models "agree". `assert_not_degenerate` guards every comparison against that.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

import keras_mlp
from keras_mlp.backend import keras
from keras_mlp.layers import FFBlock, MixerBlock
from tests import numpy_reference as ref
from tools.compare_golden import RTOL, relative_error

IMAGE_SIZE = 32
GRID_IMAGE_SIZE = (24, 40)  # the golden configurations: a non-square 3x5 grid of 8x8 patches, 15 tokens
NUM_CLASSES = 5
# One tiny configuration per family (keyed by `MLPTrunk.block`). The Mixer's token MLP is wider than the
# 16 tokens of a 32x32 image in 8x8 patches, so a transposed token kernel cannot load.
TINY = {
    "mixer": dict(num_blocks=2, hidden_dim=32, tokens_mlp_dim=24, channels_mlp_dim=64),
    "resmlp": dict(num_blocks=2, hidden_dim=32),
    "gmlp": dict(num_blocks=2, hidden_dim=32),
    "ff": dict(num_blocks=2, hidden_dim=32),
}
_TINY_PATCH = {32: 16, 16: 8, 14: 8, 8: 4}  # the variant's patch -> the tiny one (/32 variants keep a 2x2 grid)
FAMILY_REPRESENTATIVES = ["mixer_s16_224", "resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"]
# keras-mlp-train flags of a tiny run on digits (8x8 images in 2x2 patches): the Mixer's tiny configuration, 1 epoch
TINY_RUN = [*(arg for key, value in {"image_size": 8, "patch_size": 2, **TINY["mixer"]}.items()
              for arg in ("--set", f"model.{key}={value}")),
            "--epochs", "1", "--batch-size", "128", "--checkpoint-every", "4", "--export", "none", "--set", "verbose=0"]


def tiny_overrides(name: str) -> dict:
    """Overrides that shrink the registered variant `name` to a 32x32 input and its family's tiny widths; the
    variant's own arguments (ResMLP's init_values, ViT-L/32's position grid, ...) are kept."""
    variant = keras_mlp.get_variant(name)
    return dict(image_size=IMAGE_SIZE, patch_size=_TINY_PATCH[variant.kwargs["patch_size"]], num_classes=NUM_CLASSES,
                **TINY[variant.family.block])


def tiny_model(name: str, **extra):
    """`create_model(name)` on the tiny configuration; `extra` wins (e.g. image_size=16, num_classes=10)."""
    return keras_mlp.create_model(name, **{**tiny_overrides(name), **extra})


def random_tiny_model(name: str, seed: int = 0, **extra):
    """`tiny_model` with every weight randomised (`randomize_weights`): outputs that an equality test can fail on
    (checked on random images)."""
    model = randomize_weights(tiny_model(name, **extra), seed)
    assert_not_degenerate(model(random_images(4, model.image_size, model.num_channels)))
    return model


def flax_mixer_checkpoint(tokens: int = 16, classes: int = NUM_CLASSES, seed: int = 1) -> dict:
    """A seeded random checkpoint in the official Flax `.npz` layout of the tiny Mixer with 8x8 patches
    (tests/numpy_reference.py computes its logits independently)."""
    mixer = TINY["mixer"]
    return ref.random_checkpoint(ref.mixer_flax_shapes(8, mixer["hidden_dim"], tokens, mixer["tokens_mlp_dim"],
                                                       mixer["channels_mlp_dim"], mixer["num_blocks"], classes), seed)


def subprocess_env(**extra) -> dict:
    """`os.environ` for a child Python that imports this checkout's packages (not another editable install)."""
    path = os.pathsep.join(p for p in (str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def random_images(count: int = 4, size=IMAGE_SIZE, channels: int = 3, seed: int = 0) -> np.ndarray:
    """(count, H, W, channels) float32 images ~ N(0, 1), like normalised pixels."""
    h, w = (size, size) if isinstance(size, int) else size
    return np.random.default_rng(seed).normal(size=(count, h, w, channels)).astype("float32")


def write_photos(root: Path, classes=("cat", "dog", "fox"), per_class: int | dict[str, int] = 8,
                 size=(40, 48)) -> Path:
    """A JPEG image folder: `root/<class>/*.jpg` with `per_class` images each, or `root/<split>/<class>/*.jpg` when
    `per_class` is {split: images per class}. Class c brightens colour channel c % 3, so the classes can be told
    apart. Returns `root`."""
    rng = np.random.default_rng(0)
    for split, count in (per_class.items() if isinstance(per_class, dict) else [("", per_class)]):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, (*size, 3)).astype(np.uint8)
                pixels[..., c % 3] += 150
                (folder / f"{i:02d}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return root


def randomize_weights(model, seed: int = 0):
    """Give every weight of `model` seeded random values (in place; returns `model`) and nothing left at its init.

    Matrices (dense and conv kernels, the token-mixing matrices, the position embedding) ~ N(0, 1/fan_in), so
    activations keep their scale through the blocks; vectors (biases, LayerNorm γ/β, Affine α/β, LayerScale γ,
    the gating bias, the class token) ~ their init mean ± N(0, 0.2²), so every one of them moves the logits. The
    head included: logits come out O(1), spread over images and classes, and finite.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        size = int(np.prod(shape))
        if len(shape) >= 2 and size != shape[-1]:
            value = rng.normal(0.0, 1.0 / np.sqrt(size // shape[-1]), shape)
        else:
            value = float(np.mean(variable.numpy())) + rng.normal(0.0, 0.2, shape)
        variable.assign(value.astype(variable.dtype))
    return model


def assert_not_degenerate(outputs, rtol: float = 1e-3) -> None:
    """Fail unless `outputs` (batch first) are finite, not all zero, vary with the image (mean spread over the
    images) and, for every image, vary over the classes (or features), by more than `rtol` of their largest
    magnitude."""
    x = np.asarray(keras.ops.convert_to_numpy(outputs), np.float64).reshape(len(outputs), -1)  # any backend
    assert np.isfinite(x).all(), f"non-finite outputs: {np.size(x) - np.isfinite(x).sum()} of {np.size(x)}"
    scale = np.abs(x).max()
    assert scale > 0, "outputs are all zero (a zero-initialised head? randomise the weights first)"
    assert len(x) > 1, "one image cannot show a spread across images: compare at least two"
    across_images = np.ptp(x, axis=0).mean() / scale
    across_classes = np.ptp(x, axis=1).min() / scale
    assert across_images > rtol, f"outputs are the same for every image (spread {across_images:.1e} of the scale)"
    assert across_classes > rtol, f"an image's outputs are the same for every class (spread {across_classes:.1e})"


def assert_matches_reference(logits, reference) -> None:
    """The golden comparison (tools/compare_golden.py): the reference is not degenerate and the logits are within
    RTOL of its scale."""
    assert_not_degenerate(reference)
    error = relative_error(logits, reference)
    assert error <= RTOL, f"logits differ from the reference by {error:.2e} of its scale (tolerance {RTOL:.0e})"


def predict(model, images) -> np.ndarray:
    return np.asarray(model.predict(images, verbose=0))


# === The battery (keras-hub's run_*_test): each compares a randomised model with a copy of it ===
def run_serialization_test(model, images) -> None:
    """JSON config round trip: `from_config` rebuilds the same config and, with the weights, the same outputs."""
    expected = predict(model, images)
    assert_not_degenerate(expected)
    config = json.loads(json.dumps(model.get_config()))
    clone = type(model).from_config(config)
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(predict(clone, images), expected)


def run_model_saving_test(model, images, path) -> None:
    """`.keras` save/load gives the same class, config and outputs."""
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_array_equal(predict(loaded, images), expected)


def run_litert_export_test(model, images, atol: float = 1e-5) -> None:
    """TFLite conversion with built-in ops only (the GELU op itself, no Flex/custom op) and float32 parity."""
    from ai_edge_litert.interpreter import Interpreter

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert "GELU" in ops and not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops
    runner = interpreter.get_signature_runner()
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_allclose(next(iter(runner(images=images).values())), expected, atol=atol)


def run_tf_keras_test(model, images, folder: Path, atol: float = 1e-5) -> None:
    """The same config and weights built under tf_keras (TF_USE_LEGACY_KERAS=1, used for QAT) give the same
    outputs (tests/legacy_forward.py, in a subprocess)."""
    folder = Path(folder)
    np.savez(folder / "weights.npz", *model.get_weights())
    np.save(folder / "images.npy", images)
    (folder / "config.json").write_text(json.dumps(model.get_config()))
    script = Path(__file__).with_name("legacy_forward.py")
    subprocess.run([sys.executable, str(script), type(model).__name__, str(folder)], check=True, timeout=300,
                   env=subprocess_env(TF_USE_LEGACY_KERAS="1"))
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_allclose(np.load(folder / "logits.npy"), expected, atol=atol)


def run_training_test(model, images, steps: int = 8) -> None:
    """A few Adam steps from the fresh init lower the loss, and then every variable gets a non-zero gradient."""
    labels = np.arange(len(images)) % model.num_classes
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(images, labels)) for _ in range(steps)]
    assert losses[-1] < losses[0], losses
    assert_every_variable_gets_a_gradient(model, gradients(model, images, labels))


def cancelled_by_layer_norm(model) -> set[str]:
    """Paths of the token-mixing output biases whose gradient is zero in exact arithmetic. Such a bias adds one
    constant per token; where only LayerNorms over channels read the block's output (every Mixer block, and the
    last block of the feed-forward ViT, whose token-axis LayerNorm sits in the next block) that constant cancels,
    so the loss does not depend on it. Rounding leaves it ~1e-8 or exactly 0, depending on the backend's kernels."""
    blocks = [layer for layer in model.layers if isinstance(layer, (MixerBlock, FFBlock))]
    if blocks and isinstance(blocks[-1], FFBlock):
        blocks = blocks[-1:]
    return {f"{block.name}/token_mixing/mlp/fc2/bias" for block in blocks}


def assert_every_variable_gets_a_gradient(model, grads, fake_quantized: bool = False) -> None:
    """Every trainable variable's gradient is non-zero, bar those `cancelled_by_layer_norm`, whose gradients must be
    nothing but rounding (under 1e-5 of the largest) unless the model is `fake_quantized` (clipping at the ranges
    breaks the cancellation there)."""
    exempt = cancelled_by_layer_norm(model)
    paths = {v.path for v in model.trainable_variables}
    assert exempt <= paths, sorted(exempt - paths)
    dead = [v.path for v, g in zip(model.trainable_variables, grads) if not np.any(g) and v.path not in exempt]
    assert not dead, f"variables without gradient: {dead}"
    if fake_quantized:
        return
    scale = max(float(np.abs(g).max()) for g in grads)
    live = [v.path for v, g in zip(model.trainable_variables, grads)
            if v.path in exempt and np.abs(g).max() > 1e-5 * scale]
    assert not live, f"gradients the LayerNorms should cancel: {live}"


def gradients(model, images, labels) -> list[np.ndarray]:
    """d(model.loss)/d(variable) of every trainable variable (zeros where none flows), by the Keras backend's own
    autodiff: `tf.GradientTape`, `jax.grad` or PyTorch's `backward` (imported only on that backend)."""
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "jax":
        import jax

        def loss(values):
            frozen = [v.value for v in model.non_trainable_variables]
            return model.loss(labels, model.stateless_call(values, frozen, images, training=True)[0])
        return [np.asarray(g) for g in jax.grad(loss)([v.value for v in variables])]
    if backend == "torch":
        model.zero_grad()
        model.loss(labels, model(images, training=True)).backward()
        return [np.zeros(v.shape) if v.value.grad is None else v.value.grad.numpy() for v in variables]
    with tf.GradientTape() as tape:
        loss = model.loss(labels, model(images, training=True))
    grads = tape.gradient(loss, variables)
    return [np.zeros(v.shape) if g is None else np.asarray(g) for v, g in zip(variables, grads)]
