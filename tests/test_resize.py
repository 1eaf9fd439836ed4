"""keras_mlp.resize: the Mixer paper's block-diagonal scheme is exact on patch-repeated images, interpolation
serves other sizes and the FF-only ViT, refusals name the fix, and create_model(weights=, image_size=) resizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from keras_mlp.backend import keras

TINY = dict(image_size=16, patch_size=4, num_blocks=2, hidden_dim=16, num_classes=5)
EXTRA = {"mixer_s16_224": dict(tokens_mlp_dim=8, channels_mlp_dim=32)}
FAMILIES = ["mixer_s16_224", "resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"]


def _random_model(name: str, seed: int = 0):
    model = keras_mlp.create_model(name, **TINY, **EXTRA.get(name, {}))
    rng = np.random.default_rng(seed)
    for w in model.weights:  # every weight matters, none left at its zero/one init
        w.assign(rng.normal(0, 0.3, w.shape).astype("float32"))
    return model


@pytest.mark.parametrize("name", FAMILIES[:3])
def test_block_diagonal_is_exact_on_repeated_patches(name):
    model, images = _random_model(name), np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    resized = keras_mlp.resize(model, (32, 48))  # grid 4x4 -> 8x12: 2x3 copies
    tiles = images.reshape(2, 4, 4, 4, 4, 3)  # (batch, grid row, pixel row, grid col, pixel col, channel)
    big = np.repeat(np.repeat(tiles, 2, axis=1), 3, axis=3).reshape(2, 32, 48, 3)  # each patch repeated 2x3
    assert resized.image_size == (32, 48)
    if name == "mixer_s16_224":
        assert resized.block_config["tokens_mlp_dim"] == 8 * 6
    np.testing.assert_allclose(resized.predict(big, verbose=0), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_interpolate_serves_other_sizes(name):
    model = _random_model(name)
    same = keras_mlp.resize(model, 16)
    images = np.random.default_rng(2).normal(size=(1, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(same.predict(images, verbose=0), model.predict(images, verbose=0))
    resized = keras_mlp.resize(model, 24, method="interpolate")  # grid 4x4 -> 6x6
    assert np.isfinite(resized.predict(np.zeros((1, 24, 24, 3)), verbose=0)).all()
    if name == "ff_ti16_224":
        old, new = model.get_layer("embed").pos_embed, resized.get_layer("embed").pos_embed
        assert new.shape == (1, 37, 16)
        np.testing.assert_array_equal(np.array(new)[:, 0], np.array(old)[:, 0])  # class-token position kept
        fc2 = np.array(resized.get_layer("FFBlock_0").token_mixing.mix.fc2.kernel)  # width 4·17 -> 4·37
        assert fc2.shape == (148, 37) and not fc2[68:].any() and fc2[:68].any()


def test_refusals():
    mixer, ff = _random_model("mixer_s16_224"), _random_model("ff_ti16_224")
    with pytest.raises(ValueError, match="not divisible by `patch_size`=4"):
        keras_mlp.resize(mixer, 18)
    with pytest.raises(ValueError, match=r"4x4 does not grow by whole factors to 6x6.*method='interpolate'"):
        keras_mlp.resize(mixer, 24, method="block_diagonal")
    with pytest.raises(ValueError, match="class token and token LayerNorm"):
        keras_mlp.resize(ff, 32, method="block_diagonal")
    with pytest.raises(ValueError, match="fewer tokens would drop trained hidden units"):
        keras_mlp.resize(ff, 8)
    with pytest.raises(ValueError, match="Unknown resize method"):
        keras_mlp.resize(mixer, 32, method="bicubic")


def test_create_model_with_weights_and_new_size(tmp_path):
    golden = Path(__file__).parent / "golden" / "mixer.safetensors"
    model = keras_mlp.create_model("mixer_s16_224", weights=golden, image_size=64, patch_size=8, num_blocks=2,
                                   hidden_dim=32, tokens_mlp_dim=16, channels_mlp_dim=128)
    assert model.image_size == (64, 64) and model.block_config["tokens_mlp_dim"] == 64
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    images = np.ones((1, 64, 64, 3), "float32")
    np.testing.assert_allclose(again.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
