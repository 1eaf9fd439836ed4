"""keras-mlp-export bad input: each a clear message, exit code 2 and nothing written to the output directory."""
from __future__ import annotations

import json

import numpy as np
import pytest

import export
from export.cli import main
from keras_mlp.data import load_dataset
from tests.backends import tensorflow_only
from tests.helpers import assert_not_degenerate, randomize_weights, tiny_model

pytestmark = tensorflow_only("TFLite export")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny Mixer for digits (10 classes, 16x16) saved as .keras, with random weights: its logits on the digits
    images that the export gates with are not degenerate."""
    path = tmp_path_factory.mktemp("model") / "mixer.keras"
    model = randomize_weights(tiny_model("mixer_s16_224", image_size=16, patch_size=4, num_classes=10))
    images, _ = next(iter(load_dataset("digits", "test", preprocessing=model.preprocessing, image_size=(16, 16),
                                       batch_size=100)))
    assert_not_degenerate(model.predict(images, verbose=0))
    model.save(path)
    return path


def run_bad(argv, out, capsys, expected: str):
    assert main([*map(str, argv), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert not out.exists(), list(out.iterdir())  # bad input creates nothing, not even an empty folder


def test_missing_model(tmp_path, capsys):
    run_bad([tmp_path / "nope.keras", "--data", "digits"], tmp_path / "out", capsys, "does not exist")


def test_corrupt_model(tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    run_bad([bad, "--data", "digits"], tmp_path / "out", capsys, "Cannot load")


def test_corrupt_tflite(tmp_path, capsys, saved):
    bad = tmp_path / "bad_float32.tflite"
    bad.write_bytes(b"\x00" * 64)
    run_bad([saved, "--data", "digits", "--gate", bad], tmp_path / "out", capsys, "Not a valid TFLite model")


def test_unknown_mode(tmp_path, capsys, saved):
    run_bad([saved, "--data", "digits", "--modes", "float32,int4"], tmp_path / "out", capsys,
            "Unknown export mode 'int4'")


def test_unwritable_output(tmp_path, capsys, saved):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([str(saved), "--data", "digits", "--out", str(blocker / "out"), "--quiet"]) == 2
    assert "not writable" in capsys.readouterr().err and blocker.read_text() == "x"


def test_class_count_mismatch(tmp_path, capsys):
    path = tmp_path / "five.keras"
    tiny_model("mixer_s16_224", image_size=16, patch_size=4).save(path)  # 5 classes, digits has 10
    run_bad([path, "--data", "digits"], tmp_path / "out", capsys, "10 classes")


@pytest.mark.parametrize("extra, expected", [
    (["--std", "0", "0", "0"], "`std` must be > 0"),
    (["--mean", "nan", "0.5", "0.5"], "`mean` must be finite"),
    (["--mean", "0.5", "--std", "0.5", "0.5"], "`mean` has 1 value(s) but the model takes 3-channel images"),
    (["--threshold", "float32.bogus=1"], "Unknown threshold float32.bogus: the keys are max_abs"),
    (["--threshold", "int8.agrement=0.9"], "Unknown threshold int8.agrement"),
    (["--threshold", "float32.agreement=1.5"], "out of range: use a fraction in [0, 1]"),
    (["--threshold", "int4.agreement=0.9"], "unknown mode 'int4'"),
])
def test_bad_normalisation_and_thresholds(tmp_path, capsys, saved, extra, expected):
    run_bad([saved, "--data", "digits", "--modes", "float32", *extra], tmp_path / "out", capsys, expected)


@pytest.mark.parametrize("flag", ["--num-eval", "--num-calibration", "--latency-runs", "--qat-epochs", "--threads"])
def test_counts_must_be_positive(tmp_path, capsys, saved, flag):
    with pytest.raises(SystemExit) as exit_:
        main([str(saved), "--data", "digits", flag, "0", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and f"argument {flag}: '0': use a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failed_mode_exits_1_with_the_report(tmp_path, capsys, saved, monkeypatch):
    import export.pipeline
    real = export.pipeline.to_tflite

    def failing(model, mode, *args, **kwargs):
        if mode == "dynamic":
            raise RuntimeError("boom")
        return real(model, mode, *args, **kwargs)
    monkeypatch.setattr(export.pipeline, "to_tflite", failing)
    out = tmp_path / "out"
    assert main([str(saved), "--data", "digits", "--modes", "float32,dynamic", "--out", str(out), "--quiet",
                 "--num-eval", "20", "--latency-runs", "1", "--threads", "1"]) == 1
    captured = capsys.readouterr()
    assert "REJECTED dynamic" in captured.err and "Traceback" not in captured.err
    assert "conversion failed: RuntimeError: boom" in captured.out  # report.md printed
    assert (out / "mixer_s16_224_float32.tflite").exists() and (out / "mixer_s16_224_labels.txt").exists()
    assert json.loads((out / "report.json").read_text())["num_eval"] == 20


def test_cli_exports_and_gates(tmp_path, capsys, saved):
    out = tmp_path / "out"
    code = main([str(saved), "--data", "digits", "--modes", "float32,dynamic", "--out", str(out), "--quiet",
                 "--latency-runs", "2", "--threads", "1"])
    assert code == 0 and (out / "mixer_s16_224_float32.tflite").exists(), capsys.readouterr()
    capsys.readouterr()
    dynamic = out / "mixer_s16_224_dynamic.tflite"
    assert main([str(saved), "--data", "digits", "--gate", str(dynamic)]) == 0  # mode from the sidecar
    assert json.loads(capsys.readouterr().out)["mode"] == "dynamic"
    renamed = tmp_path / "copy_dynamic.tflite"  # no sidecar: the name's suffix
    renamed.write_bytes(dynamic.read_bytes())
    assert main([str(saved), "--data", "digits", "--gate", str(renamed)]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "dynamic"
    run_bad([saved, "--data", "digits", "--gate", dynamic, "--modes", "float32"], tmp_path / "y", capsys,
            "is a dynamic file (its sidecar .json says so)")
    anonymous = tmp_path / "model.tflite"
    anonymous.write_bytes(dynamic.read_bytes())
    run_bad([saved, "--data", "digits", "--gate", anonymous], tmp_path / "x", capsys, "pass it with --modes")


# === library: bad data, generic models ===
def test_empty_and_misshaped_calibration(tmp_path):
    model = tiny_model("resmlp_12_224")
    good = np.zeros((4, 32, 32, 3), np.float32)
    with pytest.raises(export.ExportError, match="empty"):
        export.to_tflite(model, "int8", np.zeros((0, 32, 32, 3), np.float32))
    with pytest.raises(export.ExportError, match=r"shape \(16, 16, 3\).*expects \(32, 32, 3\)"):
        export.to_tflite(model, "int8", np.zeros((4, 16, 16, 3), np.float32))
    with pytest.raises(export.ExportError, match="needs calibration data"):
        export.to_tflite(model, "int16x8", None)
    with pytest.raises(export.ExportError, match="fine-tunes the model first"):
        export.to_tflite(model, "qat", good)
    with pytest.raises(export.ExportError, match=r"shape \(16, 16, 3\)"):  # eval data of another size
        export.export_model(model, tmp_path / "out", "float32", eval_data=(good[:, :16, :16], np.zeros(4)))
    assert not (tmp_path / "out").exists()


def test_generic_keras_model(tmp_path):
    import keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, activation="gelu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)), name="generic")
    images = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32")
    with pytest.raises(export.ExportError, match="Pass mean=... and std"):
        export.export_model(model, tmp_path / "a", "float32", eval_data=images)
    with pytest.raises(export.ExportError, match="needs a keras_mlp model"):
        export.export_model(model, tmp_path / "b", "qat", eval_data=images, train_data=(images, np.zeros(8)),
                            mean=(0.5,) * 3, std=(0.5,) * 3, progress=False)
    summary = export.export_model(model, tmp_path / "c", "float32,int8", eval_data=images, calibration_data=images,
                                  mean=(0.5,) * 3, std=(0.5,) * 3, latency_runs=2, threads=(1,), progress=False)
    assert summary["passed"] and set(summary["files"]) == {"float32", "int8"}
