"""Bad arguments and inputs: one clear ValueError/TypeError that names the argument and the fix."""
from __future__ import annotations

import numpy as np
import pytest

import keras_mlp
from tests.helpers import tiny_model, tiny_overrides


def test_image_size_not_divisible_by_patch():
    with pytest.raises(ValueError, match=r"30x30 is not divisible by `patch_size`=8.*image_size=32"):
        keras_mlp.create_model("gmlp_s16_224", **{**tiny_overrides("gmlp_s16_224"), "image_size": 30})


@pytest.mark.parametrize("size", [32.0, "32", (32,), None])
def test_image_size_of_the_wrong_type(size):
    with pytest.raises(ValueError, match=r"`image_size` must be an int or \(height, width\).*image_size=224"):
        keras_mlp.create_model("mixer_s16_224", image_size=size, num_classes=3)


def test_preprocessing_refuses_other_channel_counts():
    with pytest.raises(ValueError, match="3-channel images, got 1 channels"):
        keras_mlp.get_variant("mixer_s16_224").preprocessing(np.zeros((2, 40, 40, 1), np.uint8), 32)


def test_unknown_variant_suggests_closest():
    with pytest.raises(ValueError, match=r"Unknown model 'mixer_b16'.*Did you mean 'mixer_b16_224'"):
        keras_mlp.create_model("mixer_b16")


def test_unknown_override_key():
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['tokens_mlp_dim'\] for resmlp_12_224"):
        keras_mlp.create_model("resmlp_12_224", tokens_mlp_dim=3)


@pytest.mark.parametrize("key, value", [("hidden_dim", 0), ("num_blocks", -1), ("patch_size", 2.5),
                                        ("num_classes", -3), ("tokens_mlp_dim", 0), ("channels_mlp_dim", -8)])
def test_non_positive_sizes(key, value):
    with pytest.raises(ValueError, match=f"`{key}` must be"):
        tiny_model("mixer_s16_224", **{key: value})


def test_include_top_without_classes():
    with pytest.raises(ValueError, match=r"`include_top=True` needs `num_classes` > 0.*include_top=False"):
        tiny_model("ff_ti16_224", num_classes=0)


@pytest.mark.parametrize("name, pooling", [("mixer_s16_224", "mean"), ("gmlp_s16_224", "token")])
def test_bad_pooling(name, pooling):
    with pytest.raises(ValueError, match="pooling"):
        tiny_model(name, pooling=pooling)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_drop_path_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=r"`drop_path_rate` must be a float in \[0, 1\)"):
        tiny_model("resmlp_12_224", drop_path_rate=rate)


@pytest.mark.parametrize("shape, message", [((2, 32, 32, 1), r"with 3 channels, or build the model with input_shape"),
                                            ((32, 32, 3), r"add a batch axis"),
                                            ((2, 16, 16, 3), r"Resize the images to 32x32")])
def test_wrong_input_at_call_time(shape, message):
    model = tiny_model("mixer_s16_224")
    with pytest.raises(ValueError, match=message):
        model(np.zeros(shape, "float32"))


def test_other_channel_counts_are_built_on_request():
    model = tiny_model("mixer_s16_224", input_shape=(32, 32, 1))
    assert model(np.zeros((1, 32, 32, 1), "float32")).shape == (1, 5)
