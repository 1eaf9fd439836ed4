"""keras_mlp.resize: the Mixer paper's block-diagonal scheme is exact on patch-repeated images, interpolation
serves other sizes and the FF-only ViT, refusals name the fix, and create_model(weights=, image_size=) resizes."""
from __future__ import annotations

import numpy as np
import pytest

import keras_mlp
from keras_mlp.backend import keras
from tests.helpers import (
    FAMILY_REPRESENTATIVES,
    TINY,
    assert_not_degenerate,
    flax_mixer_checkpoint,
    predict,
    random_images,
    randomize_weights,
    tiny_model,
)


def _random_model(name: str, seed: int = 0):
    return randomize_weights(tiny_model(name), seed)  # every weight matters, none left at its zero/one init


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES[:3])
def test_block_diagonal_is_exact_on_repeated_patches(name):
    model, images = _random_model(name), random_images(2, seed=1)
    resized = keras_mlp.resize(model, (64, 96))  # grid 4x4 -> 8x12: 2x3 copies
    tiles = images.reshape(2, 4, 8, 4, 8, 3)  # (batch, grid row, pixel row, grid col, pixel col, channel)
    big = np.repeat(np.repeat(tiles, 2, axis=1), 3, axis=3).reshape(2, 64, 96, 3)  # each patch repeated 2x3
    assert resized.image_size == (64, 96)
    if name == "mixer_s16_224":
        assert resized.block_config["tokens_mlp_dim"] == 24 * 6
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_allclose(predict(resized, big), expected, atol=1e-5)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_interpolate_serves_other_sizes(name):
    model = _random_model(name)
    same = keras_mlp.resize(model, 32)
    images = random_images(2, seed=2)
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_array_equal(predict(same, images), expected)
    resized = keras_mlp.resize(model, 48, method="interpolate")  # grid 4x4 -> 6x6
    assert np.isfinite(resized.predict(np.zeros((1, 48, 48, 3)), verbose=0)).all()
    if name == "ff_ti16_224":
        old, new = model.get_layer("embed").pos_embed, resized.get_layer("embed").pos_embed
        assert new.shape == (1, 37, 32)
        np.testing.assert_array_equal(np.array(new)[:, 0], np.array(old)[:, 0])  # class-token position kept
        fc2 = np.array(resized.get_layer("FFBlock_0").token_mixing.mix.fc2.kernel)  # width 4·17 -> 4·37
        assert fc2.shape == (148, 37) and not fc2[68:].any() and fc2[:68].any()


def test_refusals():
    mixer, ff = _random_model("mixer_s16_224"), _random_model("ff_ti16_224")
    with pytest.raises(ValueError, match="not divisible by `patch_size`=8"):
        keras_mlp.resize(mixer, 36)
    with pytest.raises(ValueError, match=r"4x4 does not grow by whole factors to 6x6.*method='interpolate'"):
        keras_mlp.resize(mixer, 48, method="block_diagonal")
    with pytest.raises(ValueError, match="class token and token LayerNorm"):
        keras_mlp.resize(ff, 64, method="block_diagonal")
    with pytest.raises(ValueError, match="fewer tokens would drop trained hidden units"):
        keras_mlp.resize(ff, 16)
    with pytest.raises(ValueError, match="Unknown resize method"):
        keras_mlp.resize(mixer, 64, method="bicubic")


def test_create_model_with_weights_and_new_size(tmp_path):
    checkpoint = flax_mixer_checkpoint(tokens=16)  # a 4x4 grid of 8x8 patches: 32x32 images
    model = keras_mlp.create_model("mixer_s16_224", weights=checkpoint, image_size=64, patch_size=8, **TINY["mixer"])
    assert model.image_size == (64, 64) and model.block_config["tokens_mlp_dim"] == 24 * 4
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    images = random_images(2, 64, seed=3)
    expected = predict(model, images)
    assert_not_degenerate(expected)
    np.testing.assert_allclose(predict(again, images), expected, atol=1e-6)
