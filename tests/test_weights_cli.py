"""keras-mlp-convert: a checkpoint to a .keras file with the reference logits; bad input exits 2, writes nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_mlp.backend import keras
from keras_mlp.weights.cli import main

GOLDEN = Path(__file__).parent / "golden"
ARGS = ["--model", "gmlp_s16_224", "--set", "patch_size=8", "--set", "num_blocks=2", "--set", "hidden_dim=32",
        "--image-size", "32"]


def test_convert_writes_a_model_with_the_reference_logits(tmp_path, capsys):
    out = tmp_path / "gmlp.keras"
    assert main([str(GOLDEN / "gmlp.safetensors"), *ARGS, "--out", str(out)]) == 0
    assert "gmlp_s16_224 (GMLP), input 32x32, 5 classes" in capsys.readouterr().out
    io = np.load(GOLDEN / "gmlp.npz")
    logits = keras.saving.load_model(out).predict(io["images"], verbose=0)
    assert np.abs(logits - io["logits"]).max() <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["gmlp.keras"]  # no partial file left


def test_convert_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main([str(GOLDEN / "gmlp.safetensors"), "--model", "mixer_s16_224", "--out", str(out)]) == 2
    assert "gMLP checkpoint" in capsys.readouterr().err
    assert main([str(GOLDEN / "gmlp.safetensors"), *ARGS, "--out", str(tmp_path / "m.h5")]) == 2
    assert "--out must end with .keras" in capsys.readouterr().err
    assert main([str(GOLDEN / "gmlp.safetensors"), *ARGS, "--set", "depth", "--out", str(out)]) == 2
    assert not list(tmp_path.iterdir())


def test_convert_corrupt_checkpoint_exits_2_without_traceback(tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 100)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for name in ("bad.safetensors", "bad.npz"):
        assert main([str(tmp_path / name), *ARGS, "--out", str(tmp_path / "m.keras")]) == 2
        err = capsys.readouterr().err
        assert f"{name} is not a readable" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "bad.safetensors"]


def test_convert_unwritable_out_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    (tmp_path / "folder.keras").mkdir()
    for out, reason in ((tmp_path / "file" / "m.keras", "File exists"), (tmp_path / "folder.keras", "Is a directory")):
        assert main([str(GOLDEN / "gmlp.safetensors"), *ARGS, "--out", str(out)]) == 2
        assert f"cannot write {out} ({reason}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.keras"]
    assert not list((tmp_path / "folder.keras").iterdir())
