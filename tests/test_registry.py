"""The registry against the papers' parameter counts; a registered variant missing from this table fails."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from keras_mlp.backend import keras
from keras_mlp.models import FAMILIES

# 1000-class head at 224x224, from the papers' reference code (timm / vision_transformer / deit / lukemelas).
EXPECTED_PARAMS = {
    "mixer_s32_224": 19_104_624, "mixer_s16_224": 18_528_264, "mixer_b32_224": 60_293_428,
    "mixer_b16_224": 59_880_472, "mixer_l32_224": 206_939_264, "mixer_l16_224": 208_196_168,
    "mixer_h14_224": 432_350_952, "resmlp_12_224": 15_350_872, "resmlp_24_224": 30_020_680,
    "resmlp_36_224": 44_690_488, "resmlp_b24_224": 115_736_776, "resmlp_big_24_224": 129_138_280,
    "gmlp_ti16_224": 5_867_328, "gmlp_s16_224": 19_422_656, "gmlp_b16_224": 73_075_392,
    "ff_ti16_224": 7_676_332, "ff_b16_224": 61_943_020, "ff_l32_224": 206_363_576,
}


def test_every_registered_variant_has_an_expected_count():
    assert set(keras_mlp.list_models()) == set(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", keras_mlp.list_models())
def test_exact_parameter_count(name):
    model = keras_mlp.create_model(name)
    try:
        assert model.count_params() == EXPECTED_PARAMS[name] == keras_mlp.get_variant(name).params
        assert model.name == name and model.get_layer("head").units == 1000
    finally:
        del model
        keras.backend.clear_session()


def test_list_models_filters_by_family():
    assert keras_mlp.list_models("gmlp") == ["gmlp_b16_224", "gmlp_s16_224", "gmlp_ti16_224"]
    assert all(n.startswith("ff_") for n in keras_mlp.list_models("ff"))


def test_overrides_win_and_metadata_is_recorded():
    model = keras_mlp.create_model("resmlp_24_224", image_size=32, num_blocks=1, num_classes=7)
    assert model.get_layer("ResMLPBlock_0").init_values == 1e-5 and model.output_shape == (None, 7)
    variant = keras_mlp.get_variant("resmlp_24_224")
    assert variant.preprocessing.mean == (0.485, 0.456, 0.406) and variant.classifier == "head"
    assert keras_mlp.get_variant("mixer_b16_224").preprocessing.std == (0.5, 0.5, 0.5)


def test_readme_model_table_is_the_registry():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = keras_mlp.registry.markdown_table()
    assert table in readme, "README model table is stale: paste `python -m keras_mlp.registry` output"
    assert len(re.findall(r"^\| `", table, flags=re.M)) == len(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", ["mixer_s16_224", "resmlp_12_224", "gmlp_s16_224"])
def test_pos_embed_grid_refused_without_position_embedding(name):
    with pytest.raises(ValueError, match=r"`pos_embed_grid` is for models with a position embedding.*Leave it out"):
        keras_mlp.create_model(name, image_size=32, num_blocks=1, pos_embed_grid=(3, 3))
    assert keras_mlp.create_model("ff_ti16_224", image_size=32, num_blocks=1, pos_embed_grid=(3, 3)) \
        .get_layer("embed").pos_embed.shape == (1, 10, 192)


def test_center_crop_sizes_and_offsets_are_timms():
    """Shorter side floor(size / crop_pct), longer floored in proportion, centre offset rounded half to even."""
    image = np.arange(6 * 15 * 3, dtype="float32").reshape(6, 15, 3) % 256
    # floor(4 / 0.6) = 6 = the shorter side: no resize; offsets round(1), round(5.5) = 6 (9 // 2 = 4 would be off)
    np.testing.assert_array_equal(keras_mlp.center_crop(image, 4, 0.6, "nearest"), image[1:5, 6:10])
    np.testing.assert_array_equal(keras_mlp.center_crop(image[:, :13], 4, 0.6, "nearest"), image[1:5, 4:8])
    batch = keras_mlp.center_crop(np.stack([image, image]), (4, 2), 0.6, "nearest")
    np.testing.assert_array_equal(batch[1], image[1:5, 6:8])  # 13 columns left over: round(6.5) = 6
    with pytest.raises(ValueError, match=r"`crop_pct` must be a float in \(0, 1\]"):
        keras_mlp.center_crop(image, 4, 1.5)
    with pytest.raises(ValueError, match=r"Unknown `interpolation`='cubic'"):
        keras_mlp.Preprocessing(interpolation="cubic")(image, 4)


# Each family's evaluation preprocessing, as timm's default_cfgs give it (mlp_mixer.py `_cfg`: mean/std 0.5, crop
# 0.875, bicubic; ResMLP's cfgs take IMAGENET_DEFAULT_MEAN/STD) and, for the feed-forward-only ViT, DeiT's
# ImageNet normalisation, with which its release was trained.
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
EXPECTED_PREPROCESSING = {"MLPMixer": ((0.5,) * 3, (0.5,) * 3), "GMLP": ((0.5,) * 3, (0.5,) * 3),
                          "ResMLP": IMAGENET, "FeedForwardViT": IMAGENET}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_each_familys_default_preprocessing_is_the_published_one(family):
    mean, std = EXPECTED_PREPROCESSING[family.__name__]
    assert family.default_preprocessing == keras_mlp.Preprocessing(mean, std, crop_pct=0.875, interpolation="bicubic")
