"""Every preset is consistent with the registry and its sources (no download); class names; create_model's
weights argument resolution; checkpoints keep their native image size."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets

import keras_mlp
from keras_mlp.weights import PRESETS, class_names, get_preset, preset_class_names, resolve_weights
from keras_mlp.weights.labels import synsets
from keras_mlp.weights.presets import FLAX_MIXER, LABEL_SETS
from keras_mlp.weights.readers import SUFFIXES
from tests.helpers import TINY, flax_mixer_checkpoint

GOLDEN = Path(__file__).parent / "golden"
TINY_MIXER = {"patch_size": 8, **TINY["mixer"]}
# Named in the issue; timm's tags (timm/models/mlp_mixer.py default_cfgs) and the official files.
REQUIRED = ["mixer_b16_224.goog_in21k_ft_in1k", "mixer_b16_224.goog_in21k", "mixer_b16_224.miil_in21k_ft_in1k",
            "mixer_b16_224.miil_in21k", "mixer_l16_224.goog_in21k_ft_in1k", "mixer_l16_224.goog_in21k",
            "resmlp_12_224.fb_in1k", "resmlp_12_224.fb_distilled_in1k", "resmlp_big_24_224.fb_in22k_ft_in1k",
            "gmlp_s16_224.ra3_in1k", "mixer_b16_224.flax_in1k", "mixer_b16_224.flax_in21k",
            "mixer_b16_224.flax_sam_in1k", "ff_ti16_224.lukemelas_in1k", "ff_b16_224.lukemelas_in1k"]


def test_required_presets_listed():
    assert set(REQUIRED) <= set(keras_mlp.list_presets())
    assert keras_mlp.list_presets("gmlp_s16_224") == ["gmlp_s16_224.ra3_in1k"]
    assert len(keras_mlp.list_presets()) == len(PRESETS) == 30


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_consistent_with_registry(name):
    preset = PRESETS[name]
    variant = keras_mlp.get_variant(preset.model)
    family_layouts = {layout.name for layout in variant.family.layouts}
    assert preset.files and preset.image_size % variant.kwargs["patch_size"] == 0
    for file in preset.files:
        suffix = Path(file.url).suffix
        assert file.url.startswith("https://") and suffix in SUFFIXES
        assert file.layout in family_layouts, (file.layout, family_layouts)
        assert (suffix == ".npz") == (file.layout == FLAX_MIXER)
        release = re.search(r"-([0-9a-f]{8})\.pth$", file.url)
        assert file.sha256 == (release.group(1) if release else None)
    if "huggingface.co" in preset.files[0].url:
        assert preset.files[0].url == f"https://huggingface.co/timm/{name}/resolve/main/model.safetensors"
    if preset.label_set is None:
        assert preset.tag == "fb_dino" and preset.num_classes is None and preset.top1 is None
    else:
        assert preset.num_classes == LABEL_SETS[preset.label_set] == len(preset_class_names(preset))
    assert preset.top1 is None or (50 < preset.top1 < 90 and preset.label_set == "imagenet-1k")
    assert preset.top1_source and preset.license and preset.provenance
    pre = preset.preprocessing
    assert isinstance(pre, keras_mlp.Preprocessing) and pre.channels == 3
    assert pre.interpolation in ("bicubic", "bilinear") and 0.8 <= pre.crop_pct <= 1.0


def test_preprocessing_is_the_files_own():
    half = keras_mlp.Preprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), crop_pct=0.875, interpolation="bicubic")
    assert get_preset("mixer_b16_224.goog_in21k_ft_in1k").preprocessing == half
    miil = get_preset("mixer_b16_224.miil_in21k_ft_in1k").preprocessing
    assert miil == keras_mlp.Preprocessing((0, 0, 0), (1, 1, 1), crop_pct=0.875, interpolation="bilinear")
    assert get_preset("resmlp_12_224.fb_in1k").preprocessing.mean == (0.485, 0.456, 0.406)


def test_class_names_follow_tfds_imagenet_order_and_are_unique():
    tfds_labels = Path(tensorflow_datasets.__file__).parent / "datasets" / "imagenet2012" / "labels.txt"
    assert synsets("imagenet-1k") == tuple(tfds_labels.read_text().split())
    for label_set, count in LABEL_SETS.items():
        names = class_names(label_set)
        assert len(names) == len(set(names)) == count
    names = preset_class_names("mixer_b16_224.goog_in21k")
    assert names[0] == "organism, being" and len(names) == 21843
    in1k = preset_class_names("resmlp_12_224.fb_in1k")
    assert in1k[0] == "tench, Tinca tinca" and {"crane (n02012849)", "crane (n03126707)"} <= set(in1k)
    assert preset_class_names("resmlp_12_224.fb_dino") is None


def test_bad_weights_arguments_name_the_fix():
    with pytest.raises(ValueError, match=r"neither a file nor a preset of mixer_b16_224 .*goog_in21k_ft_in1k"):
        keras_mlp.create_model("mixer_b16_224", weights="goog_in1k")
    with pytest.raises(ValueError, match=r"Unknown preset 'mixer_b16_224.goog_in21k_ft'.*Did you mean"):
        keras_mlp.create_model("mixer_b16_224.goog_in21k_ft")
    with pytest.raises(ValueError, match=r"pass one"):
        keras_mlp.create_model("mixer_b16_224.goog_in21k", weights="goog_in21k")
    with pytest.raises(ValueError, match=r"holds resmlp_12_224 weights, not mixer_b16_224"):
        keras_mlp.create_model("mixer_b16_224", weights="resmlp_12_224.fb_in1k")
    assert resolve_weights("mixer_s16_224", GOLDEN / "mixer.safetensors", {"num_classes": 3}) == (
        "mixer_s16_224", GOLDEN / "mixer.safetensors", {"num_classes": 3})


def test_checkpoint_keeps_its_native_image_size(tmp_path):
    golden = tmp_path / "Mixer-tiny.npz"  # a 4x4 grid of 8x8 patches: trained at 32x32
    np.savez(golden, **flax_mixer_checkpoint(tokens=16))
    native = keras_mlp.create_model("mixer_s16_224", weights=golden, **TINY_MIXER)
    explicit = keras_mlp.create_model("mixer_s16_224", weights=golden, image_size=32, **TINY_MIXER)
    resized = keras_mlp.create_model("mixer_s16_224", weights=golden, image_size=64, **TINY_MIXER)
    assert tuple(native.image_size) == (32, 32) and tuple(resized.image_size) == (64, 64)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    out = native.predict(images, verbose=0)
    assert np.std(out) > 1e-3 and np.array_equal(out, explicit.predict(images, verbose=0))
