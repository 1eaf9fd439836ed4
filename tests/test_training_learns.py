"""The `digits_tiny` recipe learns (>= 90% held-out top-1 on the digits), and the main job's whole export path
runs on what it learned: every TFLite mode, calibration and QAT from the tf.data train split, each file gated."""
from __future__ import annotations

import json
import os

import pytest
import tensorflow as tf

from export.modes import MODES
from export.pipeline import export_model
from training import cli

COMMAND = ["--recipe", "digits_tiny", "--set", "verbose=0"]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("digits_tiny") / "run"
    assert cli.main([*COMMAND, "--work-dir", str(work), "--export", "none"]) == 0
    return work


def test_tiny_recipe_learns_the_digits(work_dir):
    results = json.loads((work_dir / "results.json").read_text())
    assert results["test_examples"] == 360 and results["steps"] == 8 * (1437 // 64)
    assert results["test_top1"] >= 0.90, results


def test_main_job_exports_every_mode_with_tf_data_calibration_and_qat(work_dir, monkeypatch, capsys):
    seen = {}

    def spy(model, out_dir, options, **kwargs):
        seen.update(kwargs, options=options)
        return export_model(model, out_dir, options, **kwargs)

    monkeypatch.setattr("training.main_job.export_model", spy)
    assert cli.main([*COMMAND, "--work-dir", str(work_dir)]) == 0  # the finished run: exported, not retrained
    results = json.loads((work_dir / "results.json").read_text())
    assert results["images_per_second"] is None and seen["options"].modes == MODES
    assert isinstance(seen["train_data"], tf.data.Dataset) and "calibration_data" not in seen  # calibration, QAT
    assert seen["options"].qat_epochs == 1 and seen["options"].num_calibration == 64
    exported = results["export"]
    assert exported["passed"] and set(exported["files"]) == set(MODES) and not exported["rejected"]
    assert all(os.path.exists(path) for path in exported["files"].values())
    for mode, parity in exported["parity"].items():
        assert parity["passed"] and parity["tflite_accuracy"] >= 0.9, (mode, parity)
    assert "export (all passed)" in capsys.readouterr().out
