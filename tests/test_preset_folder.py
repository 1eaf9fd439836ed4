"""Preset folders (`keras_mlp.save_preset` → `create_model(folder)`): the model comes back exactly, with its
preprocessing, class names and provenance; overrides rebuild it; only preset folders are ever written into; a folder
that is not a preset says what is missing; and `create_model` checks its arguments before it downloads anything."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from keras_mlp.weights import CheckpointError, DownloadError, named_weights
from tests.helpers import TINY, randomize_weights, tiny_model

PREPROCESSING = keras_mlp.Preprocessing((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 0.9, "bilinear")
SOURCE = "mixer_b16_224.goog_in21k_ft_in1k"


@pytest.fixture
def mixer():
    """A tiny randomised Mixer with class names and its own preprocessing, compiled (so it has an optimizer)."""
    model = randomize_weights(tiny_model("mixer_s16_224", class_names=["cat", "dog", "owl", "bee", "ant"],
                                  preprocessing=PREPROCESSING), seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_round_trip_with_provenance(mixer, tmp_path, images):
    folder = Path(keras_mlp.save_preset(mixer, tmp_path / "preset", source_weights=SOURCE))
    assert sorted(os.listdir(folder)) == ["labels.txt", "model.keras", "preset.json"]
    assert (folder / "labels.txt").read_text() == "cat\ndog\nowl\nbee\nant\n"
    info = json.loads((folder / "preset.json").read_text())
    assert {k: info[k] for k in ("format", "version", "model_class", "registry_name", "source_weights", "image_size",
                                 "num_channels", "num_classes", "labels", "preprocessing", "keras_mlp_version")} == {
        "format": "keras_mlp preset", "version": 1, "model_class": "MLPMixer", "registry_name": "mixer_s16_224",
        "source_weights": SOURCE, "image_size": [32, 32], "num_channels": 3, "num_classes": 5, "labels": "labels.txt",
        "preprocessing": PREPROCESSING.get_config(), "keras_mlp_version": keras_mlp.__version__}
    age = datetime.datetime.now(datetime.timezone.utc) - datetime.datetime.fromisoformat(info["date"])
    assert abs(age.total_seconds()) < 600

    loaded = keras_mlp.create_model(folder)
    assert type(loaded) is keras_mlp.MLPMixer and loaded.name == "mixer_s16_224"
    assert getattr(loaded, "optimizer", None) is None  # architecture and weights, no training state
    assert loaded.class_names == mixer.class_names and loaded.preprocessing == PREPROCESSING
    expected = np.asarray(mixer(images))
    assert expected.std(axis=0).min() > 1e-2
    np.testing.assert_array_equal(np.asarray(loaded(images)), expected)


def test_overrides_rebuild_it(mixer, tmp_path, images, caplog):
    folder = keras_mlp.save_preset(mixer, tmp_path / "preset")
    fresh = keras_mlp.create_model(folder, num_classes=3, dropout_rate=0.1)
    assert fresh.num_classes == 3 and fresh.class_names is None and fresh.dropout_rate == 0.1
    assert fresh.preprocessing == PREPROCESSING and "a fresh 3-class head" in caplog.text
    trained, rebuilt = named_weights(mixer), named_weights(fresh)
    for path, variable in rebuilt.items():
        if not path.startswith("head/"):
            np.testing.assert_array_equal(variable.numpy(), trained[path].numpy(), err_msg=path)
    larger = keras_mlp.create_model(folder, image_size=64)
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(np.asarray(larger(big)), np.asarray(keras_mlp.resize(mixer, 64)(big)), atol=1e-5)
    assert larger.class_names == mixer.class_names


def test_weights_from_a_folder(mixer, tmp_path, images):
    """`create_model(name, weights=folder)` takes the folder's weights, preprocessing and class names."""
    folder = keras_mlp.save_preset(mixer, tmp_path / "preset")
    model = keras_mlp.create_model("mixer_s16_224", weights=folder, patch_size=8, **TINY["mixer"])
    assert model.class_names == mixer.class_names and model.preprocessing == PREPROCESSING
    np.testing.assert_array_equal(np.asarray(model(images)), np.asarray(mixer(images)))


def test_updates_a_preset_folder_but_writes_into_no_other(mixer, tmp_path):
    folder = tmp_path / "preset"
    keras_mlp.save_preset(mixer, folder)
    (folder / "README.md").write_text("mine")
    unnamed = tiny_model("gmlp_s16_224")
    keras_mlp.save_preset(unnamed, folder)  # a preset folder: its own files replaced, stale labels.txt removed
    assert sorted(os.listdir(folder)) == ["README.md", "model.keras", "preset.json"]
    assert type(keras_mlp.create_model(folder)) is keras_mlp.GMLP and (folder / "README.md").read_text() == "mine"

    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(FileExistsError, match=r"photos holds other files \(cat.jpg\) and no keras_mlp preset.json"):
        keras_mlp.save_preset(mixer, other)
    assert os.listdir(other) == ["cat.jpg"] and (other / "cat.jpg").read_bytes() == b"jpeg"


def test_a_folder_that_is_not_a_preset_says_what_is_missing(mixer, tmp_path):
    folder = tmp_path / "preset"
    keras_mlp.save_preset(mixer, folder)
    with pytest.raises(FileNotFoundError, match="No preset folder at .*nowhere"):
        keras_mlp.create_model(str(tmp_path / "nowhere"))
    (folder / "labels.txt").write_text("cat\ndog\nowl\nbee\nwasp\n")
    with pytest.raises(CheckpointError, match="labels.txt does not list the class names in model.keras"):
        keras_mlp.create_model(folder)
    (folder / "labels.txt").unlink()
    with pytest.raises(CheckpointError, match="missing labels.txt, the class names its preset.json lists"):
        keras_mlp.create_model(folder)
    (folder / "preset.json").write_text("{}")
    with pytest.raises(CheckpointError, match="preset.json is not a keras_mlp preset description"):
        keras_mlp.create_model(folder)
    (folder / "preset.json").unlink()
    with pytest.raises(CheckpointError, match=r"not a keras_mlp preset folder: preset.json missing \(it holds "
                                              r"model.keras\)"):
        keras_mlp.create_model(folder)
    (folder / "model.keras").unlink()
    with pytest.raises(CheckpointError, match="model.keras and preset.json missing .it holds nothing"):
        keras_mlp.create_model(folder)


def test_arguments_are_checked_before_any_download(server, home):  # noqa: F811 (the imported fixtures)
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['bad_argument'\] for mixer_b16_224"):
        keras_mlp.create_model(SOURCE, bad_argument=1)
    assert server.requests == []
    with pytest.raises(DownloadError):  # the same call with good arguments does ask the server (404 here)
        keras_mlp.create_model(SOURCE, num_classes=3)
    assert server.requests


def test_folder_arguments_are_checked_first(mixer, tmp_path):
    folder = keras_mlp.save_preset(mixer, tmp_path / "preset")
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['tokens'\] for .*preset \(MLPMixer\)"):
        keras_mlp.create_model(folder, tokens=3)
    with pytest.raises(ValueError, match="is a preset folder, which holds its own weights"):
        keras_mlp.create_model(folder, weights="x.npz")
