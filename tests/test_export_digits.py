"""Slow: the issue-4 figures on `digits`. Train a small Mixer (16x16, patch 4), export every mode, gate it, and
check QAT ≥ post-training int8 accuracy and within 0.3 points of float.

Run: `pytest tests/test_export_digits.py -m slow -s` (prints report.md; ~5 min on 2 CPU cores).
"""
from __future__ import annotations

import json

import pytest

import keras_mlp
from export.modes import MODES
from export.options import ExportOptions
from export.pipeline import export_model
from tests.backends import tensorflow_only

pytestmark = [pytest.mark.slow, tensorflow_only("TFLite export")]
MEAN = STD = (0.5, 0.5, 0.5)


def digits_arrays(split: str, size: int = 16):
    from keras_mlp.data import load_dataset
    from keras_mlp.preprocessing import Preprocessing
    ds = load_dataset("digits", split, image_size=(size, size), preprocessing=Preprocessing(MEAN, STD), batch_size=2048,
                      shuffle=False)
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy()


def train_digits_model(epochs: int = 60, seed: int = 0):
    import keras
    keras.utils.set_random_seed(seed)
    x, y = digits_arrays("train")
    model = keras_mlp.create_model("mixer_s16_224", image_size=16, patch_size=4, num_blocks=4, hidden_dim=64,
                                   tokens_mlp_dim=32, channels_mlp_dim=128, num_classes=10)
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return model


def test_digits_all_modes_qat_matches_float(tmp_path):
    model = train_digits_model()
    train, test = digits_arrays("train"), digits_arrays("test")
    options = ExportOptions(modes="all", class_names=[str(i) for i in range(10)], qat_epochs=3,
                            qat_learning_rate=1e-4, latency_runs=100, progress=False)
    summary = export_model(model, tmp_path, options, train_data=train, eval_data=test)
    print((tmp_path / "report.md").read_text())
    print(json.dumps({r["mode"]: r.get("qat", {}) for r in summary["results"] if r["mode"] == "qat"}))
    acc = {r["mode"]: r["parity"]["tflite_accuracy"] for r in summary["results"]}
    assert summary["passed"], summary["rejected"]
    assert summary["float_accuracy"] > 0.9
    assert acc["qat"] >= acc["int8"]
    assert acc["qat"] >= summary["float_accuracy"] - 0.003
    for mode in ("int8", "qat"):
        assert summary["results"][MODES.index(mode)]["float_compute_ops"] == {}
