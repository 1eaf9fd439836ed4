"""keras-mlp-convert: a checkpoint to a .keras file with the reference logits; bad input exits 2, writes nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keras_mlp.backend import keras
from tests import numpy_reference as ref
from tests.helpers import TINY, assert_matches_reference, flax_mixer_checkpoint, predict, random_images
from training.convert_cli import main

ARGS = ["--model", "mixer_s16_224", *(a for k, v in TINY["mixer"].items() for a in ("--set", f"{k}={v}")),
        "--set", "patch_size=8", "--image-size", "32"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An official-layout Flax Mixer `.npz` with seeded random weights (a 4x4 grid of 8x8 patches, 5 classes)."""
    path = tmp_path_factory.mktemp("checkpoint") / "Mixer-tiny.npz"
    np.savez(path, **flax_mixer_checkpoint(tokens=16))
    return path


def test_convert_writes_a_model_with_the_reference_logits(tmp_path, capsys, checkpoint):
    out = tmp_path / "mixer.keras"
    assert main([str(checkpoint), *ARGS, "--out", str(out)]) == 0
    assert "mixer_s16_224 (MLPMixer), input 32x32, 5 classes" in capsys.readouterr().out
    images = random_images(4, seed=7)
    expected = ref.mixer_flax_forward(dict(np.load(checkpoint)), images.astype("float64"), patch=8, blocks=2)
    assert_matches_reference(predict(keras.saving.load_model(out), images), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["mixer.keras"]  # no partial file left


def test_convert_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, checkpoint):
    out = tmp_path / "m.keras"
    assert main([str(checkpoint), "--model", "gmlp_ti16_224", "--out", str(out)]) == 2
    assert "MLP-Mixer checkpoint" in capsys.readouterr().err
    assert main([str(checkpoint), *ARGS, "--out", str(tmp_path / "m.h5")]) == 2
    assert "--out must end with .keras" in capsys.readouterr().err
    assert main([str(checkpoint), *ARGS, "--set", "depth", "--out", str(out)]) == 2
    assert not list(tmp_path.iterdir())


def test_convert_corrupt_checkpoint_exits_2_without_traceback(tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 100)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for name in ("bad.safetensors", "bad.npz"):
        assert main([str(tmp_path / name), *ARGS, "--out", str(tmp_path / "m.keras")]) == 2
        err = capsys.readouterr().err
        assert f"{name} is not a readable" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "bad.safetensors"]


def test_convert_unwritable_out_exits_2(tmp_path, capsys, checkpoint):
    (tmp_path / "file").write_text("")
    (tmp_path / "folder.keras").mkdir()
    for out, reason in ((tmp_path / "file" / "m.keras", "File exists"), (tmp_path / "folder.keras", "Is a directory")):
        assert main([str(checkpoint), *ARGS, "--out", str(out)]) == 2
        assert f"cannot write {out} ({reason}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.keras"]
    assert not list((tmp_path / "folder.keras").iterdir())
