"""The battery every variant passes on a tiny override: forward, config and .keras round trips, training, TFLite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_mlp
from keras_mlp.backend import keras
from tests.conftest import FAMILY_REPRESENTATIVES, tiny_model

ALL = keras_mlp.list_models()


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_finite_and_config_round_trip(name, images):
    model = tiny_model(name)
    logits = model(images).numpy()
    assert logits.shape == (4, 5) and np.isfinite(logits).all()
    config = json.loads(json.dumps(model.get_config()))
    clone = type(model).from_config(config)
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(images).numpy(), logits)


@pytest.mark.parametrize("name", ALL)
def test_keras_save_load_same_class_same_outputs(name, images, tmp_path):
    model = tiny_model(name, drop_path_rate=0.1, dropout_rate=0.1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_training_lowers_loss_and_every_variable_gets_a_gradient(name, images):
    keras.utils.set_random_seed(0)
    model = tiny_model(name)
    labels = np.arange(4) % 5
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(images, labels)) for _ in range(8)]
    assert losses[-1] < losses[0]
    with tf.GradientTape() as tape:  # after a few steps: the zero-initialised head no longer blocks gradients
        loss = model.loss(labels, model(images, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    dead = [v.path for v, g in zip(model.trainable_variables, grads) if g is None or not np.any(g.numpy())]
    assert not dead, f"variables without gradient: {dead}"


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_features_are_reachable(name, images):
    model = tiny_model(name)
    tokens = keras.Model(model.input, model.get_layer(model.final_norm_name).output)(images)
    assert tokens.shape[-1] == 32
    backbone = tiny_model(name, include_top=False, num_classes=0)
    assert backbone.output_shape == (None, *tokens.shape[1:])
    pooled = tiny_model(name, include_top=False, num_classes=0, pooling="max")
    assert pooled.output_shape == (None, 32)


def test_drop_path_only_in_training(images):
    model = tiny_model("resmlp_12_224", drop_path_rate=0.5, include_top=False, num_classes=0, pooling="avg")
    np.testing.assert_array_equal(model(images, training=False).numpy(), model(images).numpy())
    assert not np.allclose(model(images, training=True).numpy(), model(images, training=True).numpy())


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_tflite_builtins_only_and_float32_parity(name, images):
    from ai_edge_litert.interpreter import Interpreter

    model = tiny_model(name)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert "GELU" in ops and not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops
    runner = interpreter.get_signature_runner()
    out = next(iter(runner(images=images).values()))
    np.testing.assert_allclose(out, model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_tf_keras_build_gives_same_outputs(name, images, tmp_path):
    model = tiny_model(name)
    np.savez(tmp_path / "weights.npz", *model.get_weights())
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "config.json").write_text(json.dumps(model.get_config()))
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    script = Path(__file__).with_name("legacy_forward.py")
    subprocess.run([sys.executable, str(script), type(model).__name__, str(tmp_path)], check=True, env=env,
                   timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_blocks_and_models(policy, images):
    """A block's sublayers (DropPath and ResMLP's Affine/LayerScale included) follow its own dtype policy."""
    for block in keras_mlp.layers.BLOCKS.values():
        layer = block(dtype=policy, **({"tokens_mlp_dim": 8, "channels_mlp_dim": 16} if block.__name__ ==
                                       "MixerBlock" else {}))
        assert layer(images[:, :8, :8].reshape(4, 16, 12)).dtype == policy[len("mixed_"):]
        assert len(layer._layers) >= 4 and {sub.dtype_policy.name for sub in layer._layers} == {policy}
    keras.mixed_precision.set_global_policy(policy)
    try:
        logits = tiny_model("resmlp_12_224", drop_path_rate=0.1)(images, training=True)
        assert logits.dtype == policy[len("mixed_"):] and np.isfinite(np.float32(logits)).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")
