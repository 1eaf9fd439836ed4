"""keras-mlp-export: bad input (a clear message, exit code 2, nothing written), --gate, and an instant --help."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from export.cli import main
from export.convert import to_tflite
from export.errors import ExportError
from export.options import ExportOptions
from export.pipeline import export_model
from keras_mlp.data import load_dataset
from tests.backends import tensorflow_only
from tests.conftest import fail_conversion
from tests.helpers import assert_not_degenerate, randomize_weights, tiny_model

pytestmark = tensorflow_only("TFLite export")

DIGITS = dict(image_size=16, patch_size=4, num_classes=10)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny Mixer for digits (10 classes, 16x16) saved as .keras, with random weights: its logits on the digits
    images that the export gates with are not degenerate."""
    path = tmp_path_factory.mktemp("model") / "mixer.keras"
    model = randomize_weights(tiny_model("mixer_s16_224", **DIGITS))
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


def test_help_and_import_leave_tensorflow_out():
    code = ("import sys, runpy; sys.argv = ['keras-mlp-export', '--help']\n"
            "try:\n    runpy.run_module('export.cli', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "import export.litert, export.parity, export.timing\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: keras-mlp-export" in done.stdout, done.stderr[-2000:]


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
    (["--mean", "nan", "0.5", "0.5"], "`mean` must be one finite number per channel"),
    (["--mean", "0.5", "--std", "0.5", "0.5"], "`mean` has 1 value(s) but the model takes 3-channel images"),
    (["--threshold", "float32.bogus=1"], "Unknown threshold float32.bogus: the keys are max_rel"),
    (["--threshold", "int8.agrement=0.9"], "Unknown threshold int8.agrement"),
    (["--threshold", "float32.agreement=1.5"], "out of range: use a fraction in [0, 1]"),
    (["--threshold", "int4.agreement=0.9"], "unknown mode 'int4'"),
    (["--num-eval", "1"], "`num_eval`=1 is below the gate's minimum of 32 held-out images"),
])
def test_bad_normalisation_thresholds_and_gate_size(tmp_path, capsys, saved, extra, expected):
    run_bad([saved, "--data", "digits", "--modes", "float32", *extra], tmp_path / "out", capsys, expected)


@pytest.mark.parametrize("flag", ["--num-eval", "--num-calibration", "--latency-runs", "--qat-epochs", "--threads"])
def test_counts_must_be_positive(tmp_path, capsys, saved, flag):
    with pytest.raises(SystemExit) as exit_:
        main([str(saved), "--data", "digits", flag, "0", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and f"argument {flag}: '0': use a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_qat_engine_exits_2(tmp_path, capsys, saved):
    with pytest.raises(SystemExit) as exit_:
        main([str(saved), "--data", "digits", "--qat-engine", "jax", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "argument --qat-engine: invalid choice: 'jax'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failed_mode_exits_1_with_the_report(tmp_path, capsys, saved, monkeypatch):
    fail_conversion(monkeypatch, "dynamic", "boom")
    out = tmp_path / "out"
    assert main([str(saved), "--data", "digits", "--modes", "float32,dynamic", "--out", str(out), "--quiet",
                 "--num-eval", "40", "--latency-runs", "1", "--threads", "1"]) == 1
    captured = capsys.readouterr()
    assert "REJECTED dynamic" in captured.err and "Traceback" not in captured.err
    assert "conversion failed: RuntimeError: boom" in captured.out  # report.md printed
    assert (out / "mixer_s16_224_float32.tflite").exists() and (out / "mixer_s16_224_labels.txt").exists()
    assert json.loads((out / "report.json").read_text())["num_eval"] == 40


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


def test_gate_rejects_a_file_with_the_same_logits_for_every_image(tmp_path, capsys, saved):
    """A digits model with its head zeroed, as float16: every image gets the same scores. The model is trained for
    2 epochs first, so its accuracy is well above chance and the file's loss of it shows (a random model's is not)."""
    import keras
    model = keras.saving.load_model(saved)
    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(load_dataset("digits", "train", batch_size=64, preprocessing=model.preprocessing, image_size=(16, 16)),
              epochs=2, verbose=0)
    trained = tmp_path / "trained.keras"
    model.save(trained)
    for v in model.weights:
        if v.path.startswith("head"):
            v.assign(np.zeros(v.shape, "float32"))
    broken = tmp_path / "mixer_float16.tflite"
    broken.write_bytes(to_tflite(model, "float16", progress=False))
    assert main([str(trained), "--data", "digits", "--gate", str(broken)]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert not report["passed"] and report["cosine"] == 0.0 and report["spread"] == 0.0
    assert report["float_accuracy"] > 0.5, report["float_accuracy"]
    assert report["failures"][0].startswith("degenerate output") and any("accuracy" in f for f in report["failures"])
    # Quarantined exactly as export does: moved under rejected/ with its gate result beside it.
    quarantined = tmp_path / "rejected" / "mixer_float16.REJECTED.tflite"
    assert not broken.exists() and quarantined.exists() and f"REJECTED float16: {quarantined}" in captured.err
    result = json.loads((tmp_path / "rejected" / "mixer_float16.REJECTED.json").read_text())
    assert result["mode"] == "float16" and not result["passed"] and result["failures"] == report["failures"]


def test_gate_checks_ops_and_updates_the_folders_report(tmp_path, capsys, saved):
    """--gate runs export's op check: a float file presented as int8 (its name and sidecar say int8) fails it, is
    quarantined and the folder's report no longer lists it as deployable."""
    import keras
    out = tmp_path / "out"
    model = keras.saving.load_model(saved)
    images = np.random.default_rng(0).normal(size=(32, 16, 16, 3)).astype("float32")
    export_model(model, out, ExportOptions(modes="float32,int8", latency_runs=1, threads=(1,), progress=False),
                 eval_data=images, calibration_data=images)
    int8 = out / "mixer_s16_224_int8.tflite"
    int8.write_bytes((out / "mixer_s16_224_float32.tflite").read_bytes())  # parity exact, compute in float
    assert main([str(saved), "--data", "digits", "--gate", str(int8)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["float_compute_ops"]["FULLY_CONNECTED"] > 0
    assert report["failures"][-1].startswith("float compute ops remain in an integer model")
    assert not int8.exists() and not (out / "mixer_s16_224_int8.json").exists()  # no sidecar calls it deployable
    assert (out / "rejected" / "mixer_s16_224_int8.REJECTED.tflite").exists()
    summary = json.loads((out / "report.json").read_text())
    assert not summary["passed"] and list(summary["files"]) == ["float32"] and "int8" in summary["rejected"]
    assert "REJECTED" in (out / "report.md").read_text()
    run_bad([saved, "--data", "digits", "--gate", out / "mixer_s16_224_float32.tflite", "--modes", "qat"],
            tmp_path / "z", capsys, "is a float32 file")


# === library: bad data, generic models ===
def test_empty_and_misshaped_calibration(tmp_path):
    model = tiny_model("resmlp_12_224")
    good = np.zeros((4, 32, 32, 3), np.float32)
    with pytest.raises(ExportError, match="empty"):
        to_tflite(model, "int8", np.zeros((0, 32, 32, 3), np.float32))
    with pytest.raises(ExportError, match=r"shape \(16, 16, 3\).*expects \(32, 32, 3\)"):
        to_tflite(model, "int8", np.zeros((4, 16, 16, 3), np.float32))
    with pytest.raises(ExportError, match="needs calibration data"):
        to_tflite(model, "int16x8", None)
    with pytest.raises(ExportError, match="fine-tunes the model first"):
        to_tflite(model, "qat", good)
    with pytest.raises(ExportError, match=r"shape \(16, 16, 3\)"):  # eval data of another size
        export_model(model, tmp_path / "out", ExportOptions(modes="float32"),
                     eval_data=(good[:, :16, :16], np.zeros(4)))
    assert not (tmp_path / "out").exists()


def test_generic_keras_model(tmp_path):
    import keras

    from keras_mlp.preprocessing import Preprocessing
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, activation="gelu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)), name="generic")
    images = np.random.default_rng(0).normal(size=(32, 8, 8, 3)).astype("float32")
    with pytest.raises(ExportError, match="Pass preprocessing=keras_mlp.Preprocessing"):
        export_model(model, tmp_path / "a", ExportOptions(modes="float32"), eval_data=images)
    half = Preprocessing((0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ExportError, match="needs a keras_mlp model"):
        export_model(model, tmp_path / "b", ExportOptions(modes="qat", preprocessing=half, progress=False),
                     eval_data=images, train_data=(images, np.zeros(32)))
    summary = export_model(model, tmp_path / "c", ExportOptions(modes="float32,int8", preprocessing=half,
                                                                latency_runs=2, threads=(1,), progress=False),
                           eval_data=images, calibration_data=images)
    assert summary["passed"] and set(summary["files"]) == {"float32", "int8"}
