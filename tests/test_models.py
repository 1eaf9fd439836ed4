"""The battery every registered variant passes on its family's tiny configuration (tests/helpers.py): forward,
config and .keras round trips, training, TFLite, tf_keras. Every equality runs on randomised weights."""
from __future__ import annotations

import numpy as np
import pytest

import keras_mlp
from keras_mlp.backend import keras
from tests.helpers import (
    FAMILY_REPRESENTATIVES,
    assert_not_degenerate,
    randomize_weights,
    run_litert_export_test,
    run_model_saving_test,
    run_serialization_test,
    run_tf_keras_test,
    run_training_test,
    tiny_model,
)

ALL = keras_mlp.list_models()


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_finite_and_config_round_trip(name, images):
    model = randomize_weights(tiny_model(name))
    logits = model(images).numpy()
    assert logits.shape == (4, 5) and np.isfinite(logits).all()
    run_serialization_test(model, images)


@pytest.mark.parametrize("name", ALL)
def test_keras_save_load_same_class_same_outputs(name, images, tmp_path):
    model = randomize_weights(tiny_model(name, drop_path_rate=0.1, dropout_rate=0.1), seed=1)
    run_model_saving_test(model, images, tmp_path / "model.keras")


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_training_lowers_loss_and_every_variable_gets_a_gradient(name, images):
    keras.utils.set_random_seed(0)
    run_training_test(tiny_model(name), images)  # from the papers' init (zero head), as training starts


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
    features = model(images).numpy()
    assert_not_degenerate(features)
    np.testing.assert_array_equal(model(images, training=False).numpy(), features)
    assert not np.allclose(model(images, training=True).numpy(), model(images, training=True).numpy())


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_tflite_builtins_only_and_float32_parity(name, images):
    run_litert_export_test(randomize_weights(tiny_model(name), seed=2), images)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_tf_keras_build_gives_same_outputs(name, images, tmp_path):
    run_tf_keras_test(randomize_weights(tiny_model(name), seed=3), images, tmp_path)


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
