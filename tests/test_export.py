"""export/: every post-training mode on a tiny model of each family, the gate, files and QAT."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from export import litert
from export.convert import SavedModels, float32_roundtrip, nested_layers, to_tflite
from export.errors import ExportError
from export.metadata import read_metadata
from export.modes import MODES
from export.options import ExportOptions
from export.parity import DEFAULT_THRESHOLDS, check_parity, compare
from export.pipeline import export_model
from keras_mlp.preprocessing import Preprocessing
from tests.backends import tensorflow_only
from tests.conftest import fail_conversion
from tests.helpers import FAMILY_REPRESENTATIVES, random_tiny_model, tiny_model

pytestmark = tensorflow_only("TFLite export")

PTQ_MODES = ("float32", "float16", "dynamic", "int8", "int8_float_io", "int16x8")
INPUT_DTYPE = {"int8": np.int8}
QUIET = dict(latency_runs=1, threads=(1,), progress=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 5, 32)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_every_ptq_mode_builtin_and_close(name, data):
    model = random_tiny_model(name)
    images, labels = data
    for mode in PTQ_MODES:
        flatbuffer = to_tflite(model, mode, images, num_calibration=32, progress=False)
        ops = litert.op_histogram(flatbuffer)
        assert "GELU" in ops, (mode, ops)  # the built-in op, not an erf/tanh expansion
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops) and not litert.non_builtin_ops(flatbuffer)
        report = check_parity(model, flatbuffer, images, labels, mode=mode)
        details = litert.load(flatbuffer).get_input_details()[0]
        assert details["dtype"] == INPUT_DTYPE.get(mode, np.float32)
        assert details["name"].endswith("images:0") and list(details["shape"]) == [1, 32, 32, 3]
        assert report.passed, (mode, report)  # the default gate of every mode
        if mode == "float32":
            assert report.max_abs <= 1e-4 and report.agreement == 1.0
        else:  # untrained random nets have near-tied logits: check the logits, not the argmax
            assert report.cosine > (0.999 if mode == "float16" else 0.95), (mode, report)
        if mode in ("int8", "int8_float_io", "int16x8"):
            assert litert.float_compute_ops(flatbuffer) == {}, (mode, ops)


def test_dynamic_batch_and_roundtrip_helper(data):
    model = random_tiny_model("mixer_s16_224")
    images, _ = data
    flatbuffer = to_tflite(model, "float32", batch_size=None, progress=False)
    assert litert.load(flatbuffer).get_input_details()[0]["shape_signature"][0] == -1
    np.testing.assert_allclose(litert.run(flatbuffer, images), model.predict(images, verbose=0), atol=1e-4)
    _, logits = float32_roundtrip(model, images[:3])
    np.testing.assert_allclose(logits, model.predict(images[:3], verbose=0), atol=1e-4)
    with pytest.raises(ExportError, match=r"expects images of shape \(32, 32, 3\), got \(16, 16, 3\)"):
        litert.run(flatbuffer, images[:2, :16, :16])  # plain ints, not np.int32(32)


def test_modes_share_one_saved_model_per_model_and_input_kind(data):
    model, other = random_tiny_model("mixer_s16_224"), random_tiny_model("mixer_s16_224", seed=1)
    normalization = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with SavedModels() as saved:
        first = saved.path(model)
        assert saved.path(model) == first and saved.path(model, batch_size=None) != first
        assert saved.path(other) != first and saved.path(model, normalization=normalization) != first
        shared = to_tflite(model, "float16", progress=False, saved_models=saved)
        folder = os.path.dirname(first)
    assert not os.path.exists(folder)  # removed on exit
    assert shared == to_tflite(model, "float16", progress=False)  # the same file as from its own SavedModel
    assert shared != to_tflite(other, "float16", progress=False)


def test_export_model_files_gate_and_rejection(tmp_path, data):
    model = random_tiny_model("gmlp_s16_224")
    images, labels = data
    names = ("a", "b", "c", "d", "e")
    summary = export_model(model, tmp_path, ExportOptions(
        modes="float32,int8", class_names=names, latency_runs=3, thresholds={"int8": {"max_abs": 0.0}},
        progress=False), train_data=(images, labels), eval_data=(images, labels))
    assert not summary["passed"] and list(summary["files"]) == ["float32"] and list(summary["rejected"]) == ["int8"]
    assert (tmp_path / "rejected" / "gmlp_s16_224_int8.REJECTED.tflite").exists()
    assert not (tmp_path / "gmlp_s16_224_int8.tflite").exists()
    sidecar = json.loads((tmp_path / "gmlp_s16_224_float32.json").read_text())
    assert sidecar["labels"] == list(names) and sidecar["input"]["normalization"]["mean"] == [0.5, 0.5, 0.5]
    assert sidecar["input"]["preprocessing"] == model.preprocessing.get_config()
    assert sidecar["input"]["quantization"] is None and sidecar["output"]["quantization"] is None  # float I/O
    assert (tmp_path / "gmlp_s16_224_labels.txt").read_text().split() == list(names)
    raw, files = read_metadata((tmp_path / "gmlp_s16_224_float32.tflite").read_bytes())
    assert raw[4:8] == b"M001" and files == {"gmlp_s16_224_labels.txt": b"a\nb\nc\nd\ne\n"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["mode"] for r in report["results"]] == ["float32", "int8"]
    assert report["results"][0]["ops"]["GELU"] == 2 and set(report["results"][0]["latency_ms"]) == {"1", "2"}
    assert (tmp_path / "report.png").stat().st_size > 0 and "| float32 |" in (tmp_path / "report.md").read_text()
    # Again into the same folder, outcomes swapped: no stale file of the earlier export stays beside the report.
    again = export_model(model, tmp_path, ExportOptions(
        modes="float32,int8", thresholds={"float32": {"max_abs": 0.0}, "int8": {"agreement": 0.0}}, **QUIET),
        train_data=(images, labels), eval_data=images)
    assert list(again["files"]) == ["int8"] and list(again["rejected"]) == ["float32"]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "gmlp_s16_224_float32.REJECTED.json", "gmlp_s16_224_float32.REJECTED.tflite"]
    assert not (tmp_path / "gmlp_s16_224_float32.tflite").exists() and (tmp_path / "gmlp_s16_224_int8.tflite").exists()
    assert any("removed gmlp_s16_224_float32.tflite" in n for n in again["results"][0]["notes"])
    int8_io = json.loads((tmp_path / "gmlp_s16_224_int8.json").read_text())["input"]["quantization"]
    assert int8_io["scale"] > 0 and -128 <= int8_io["zero_point"] <= 127


def test_reexport_with_fewer_modes_removes_the_old_models_files_only(tmp_path, data):
    images, labels = data
    old = random_tiny_model("mixer_s16_224")
    export_model(old, tmp_path, ExportOptions(modes="float32,dynamic", **QUIET), eval_data=(images, labels))
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "other.tflite").write_bytes(b"not written by export")  # no export sidecar beside it
    (tmp_path / "other.json").write_text('{"mode": "int8"}')
    new = random_tiny_model("mixer_s16_224", seed=1)
    summary = export_model(new, tmp_path, ExportOptions(modes="float32", name="new", **QUIET),
                           eval_data=(images, labels))
    assert summary["passed"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "new_float32.json", "new_float32.tflite", "new_labels.txt", "notes.txt", "other.json", "other.tflite",
        "report.json", "report.md", "report.png"]
    assert sum("not gated against this model" in note for note in summary["notes"]) == 5  # 2 files, 2 sidecars, labels
    again = export_model(new, tmp_path, ExportOptions(modes="float32", name="new", **QUIET), eval_data=images)
    assert again["passed"] and (tmp_path / "new_float32.tflite").exists() and (tmp_path / "notes.txt").exists()


def test_compare_forgives_a_flip_only_within_the_modes_error():
    # int8 seed 15 of the generic model: two logits 7.5e-4 apart in float land on one int8 output step
    reference = np.array([[0.1966, 0.1973, -0.35], [1.0, 0.0, 0.5], [0.2, 0.9, 0.1]], np.float32)
    logits = np.array([[0.1979, 0.1979, -0.3493], [0.0, 1.0, 0.5], [0.3, 0.9, 0.1]], np.float32)
    report = compare(reference, logits, np.array([1, 0, 1]), "int8")
    assert report.agreement == pytest.approx(2 / 3)  # the near-tie flip is forgiven; the real flip (row 2) is not
    assert report.flips == 2 and report.forgiven == 1
    assert report.tflite_accuracy == pytest.approx(1 / 3) and report.float_accuracy == 1.0
    # max_rel 2.47 is inside int8's calibrated bound (3); every other figure fails, and max_rel does under a tighter one
    assert 2.47 < report.max_rel < DEFAULT_THRESHOLDS["int8"]["max_rel"]
    assert [f.split()[0] for f in report.failures] == ["mean", "cosine", "top-1", "accuracy"]
    tighter = compare(reference, logits, np.array([1, 0, 1]), "int8", thresholds={"max_rel": 1.0})
    assert [f.split()[0] for f in tighter.failures] == ["max", "mean", "cosine", "top-1", "accuracy"]
    # An exact tie on the output grid is not agreement: a file giving every image the same scores agrees nowhere.
    confident = np.eye(3)[np.arange(40) % 3] * 4.0
    constant = compare(confident, np.zeros_like(confident), np.arange(40) % 3, "float16")
    assert constant.agreement == constant.tflite_accuracy == pytest.approx(14 / 40) and constant.forgiven == 0
    assert constant.cosine == 0.0
    assert constant.failures[0].startswith("degenerate output")


def test_gate_figures_are_relative_to_the_logit_scale():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(64, 10))
    logits = reference + rng.normal(scale=0.01, size=reference.shape)
    small, large = compare(reference, logits, None, "dynamic"), compare(100 * reference, 100 * logits, None, "dynamic")
    assert small.passed and large.passed and large.max_abs == pytest.approx(100 * small.max_abs)
    for key in ("max_rel", "mean_rel", "typical_rel", "cosine", "spread", "agreement"):
        assert getattr(large, key) == pytest.approx(getattr(small, key)), key
    shifted = compare(reference, logits + 5.0, None, "dynamic", {"max_rel": 10.0, "mean_rel": 10.0})
    assert shifted.cosine == pytest.approx(small.cosine) and shifted.passed  # softmax ignores a per-image shift
    # Degenerate output fails whatever the thresholds allow.
    flat = compare(reference, 5.0 + 1e-4 * reference, None, "int8",  # every top-1 right, the scale collapsed
                   {"max_rel": 1e9, "mean_rel": 1e9, "cosine": 0.0, "agreement": 0.0})
    assert flat.cosine > 0.99 and flat.spread < 1e-3
    assert flat.failures == [f"degenerate output: the logits hardly vary across images (spread {flat.spread:.3g} of "
                             "the float model's)"]


def test_every_mode_has_gate_thresholds_on_error_cosine_agreement_and_accuracy():
    assert set(DEFAULT_THRESHOLDS) == set(MODES)
    for mode, limits in DEFAULT_THRESHOLDS.items():
        assert {"max_rel", "mean_rel", "cosine", "agreement", "flip_margin", "accuracy_drop"} <= set(limits), mode


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_bounds_the_relative_logit_error(mode):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(64, 10)) + 12.0 * np.eye(10)[np.arange(64) % 10]  # clear top-1: no flip possible
    logits = reference + rng.normal(scale=0.6 * reference.std(), size=reference.shape)  # mean_rel 0.46
    assert (logits.argmax(1) == reference.argmax(1)).all()
    for labels in (None, np.arange(64) % 10):  # same top-1 everywhere: agreement and accuracy alone would pass
        report = compare(reference, logits, labels, mode)
        assert report.agreement == 1.0 and not report.passed
        assert any(f.startswith("mean logit error / float logit scale") for f in report.failures), report.failures


def test_gate_needs_enough_images(data):
    model = random_tiny_model("resmlp_12_224")
    images, labels = data
    flatbuffer = to_tflite(model, "float32", progress=False)
    with pytest.raises(ExportError, match="needs at least 32 held-out images, got 31"):
        check_parity(model, flatbuffer, images[:31], labels[:31])
    with pytest.raises(ExportError, match="`num_eval`=1 is below the gate's minimum of 32"):
        ExportOptions(num_eval=1)
    with pytest.raises(ExportError, match="same scores to all 32 held-out images"):  # zero head: nothing to gate
        check_parity(tiny_model("resmlp_12_224"), flatbuffer, images, labels)


def test_compare_fails_non_finite_logits_and_refuses_a_broken_float_model():
    reference = np.array([[3.0, 1.0, 0.5]]) + np.random.default_rng(0).uniform(0, 0.1, (100, 3))
    logits = reference.copy()
    logits[0] = np.nan  # one image of 100: 99% agreement would pass int8's 98%, and NaN > limit is False
    report = compare(reference, logits, np.zeros(100, int), "int8")
    assert not report.passed and report.failures[0] == "non-finite TFLite logits (NaN/inf) on 1 of 100 images"
    assert report.max_abs == 0.0 and report.agreement == 0.99 and report.tflite_accuracy == 0.99
    every = compare(reference[:5], np.full((5, 3), np.inf), None, "float32")
    assert not every.passed and every.max_abs is None and "5 of 5" in every.failures[0]
    with pytest.raises(ExportError, match="float Keras model's own logits are NaN/inf on 5 of 5"):
        compare(np.full((5, 3), np.nan), reference[:5], None, "float32")


def test_qat_parity_is_against_the_qat_model_and_accuracy_against_float():
    # Fine-tuning fixed 10 of the float model's 100 errors: its file agrees with the QAT model it came from, and
    # its accuracy (80% -> 90%) is compared with the float model's.
    labels = np.zeros(100, int)
    rng = np.random.default_rng(0)
    reference = np.tile(np.array([[1.0, 0.0]]), (100, 1)) + rng.uniform(-0.1, 0.1, (100, 2))
    reference[:20] = reference[:20, ::-1]
    logits = reference.copy()
    logits[:10] = logits[:10, ::-1]
    assert compare(logits, logits, labels, "qat", accuracy_reference=reference).passed
    assert not compare(reference, logits, labels, "int8").passed  # PTQ: the same model, 90% agreement
    unlabelled = compare(reference, logits, None, "qat")  # against the float model, no labels: agreement decides
    assert unlabelled.failures == ["cosine 0.80000 < 0.95",
                                   "top-1 agreement 90.00% < 98.00% (10 flip(s), 0 within the measured error)"]
    assert not compare(reference, logits, labels, "qat", {"agreement": 0.95}).passed  # asked for
    worse = reference.copy()
    worse[20:22] = worse[20:22, ::-1]  # 2 points below float
    failures = compare(worse, worse, labels, "qat", accuracy_reference=reference).failures
    assert failures[0].startswith("accuracy 78.00%")


@pytest.mark.parametrize("thresholds, message", [
    ({"float32": {"bogus": 1}}, r"Unknown threshold float32.bogus: the keys are max_rel, mean_rel"),
    ({"int8": {"agrement": 0.9}}, r"Unknown threshold int8.agrement"),
    ({"int4": {"agreement": 0.9}}, r"unknown mode 'int4'"),
    ({"float32": {"agreement": 1.5}}, r"float32.agreement=1.5 is out of range: use a fraction in \[0, 1\]"),
    ({"int8": {"accuracy_drop": -0.1}}, r"int8.accuracy_drop=-0.1 is out of range: use a value >= 0"),
    ({"int8": {"max_abs": float("nan")}}, r"int8.max_abs must be a finite number"),
])
def test_thresholds_checked_before_anything_is_written(tmp_path, thresholds, message):
    with pytest.raises(ExportError, match=message):
        export_model(tiny_model("mixer_s16_224"), tmp_path / "out", ExportOptions(modes="float32",
                                                                                   thresholds=thresholds),
                     eval_data=np.zeros((32, 32, 32, 3), np.float32))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match=message):
        mode, limits = next(iter(thresholds.items()))
        compare(np.eye(3), np.eye(3), None, mode, limits)


def test_failed_conversion_is_a_rejected_mode_and_the_report_is_written(tmp_path, data, monkeypatch):
    fail_conversion(monkeypatch, "int8")
    images, labels = data
    (tmp_path / "mixer_s16_224_int8.tflite").write_bytes(b"from an earlier export")
    summary = export_model(random_tiny_model("mixer_s16_224"), tmp_path, ExportOptions(modes="float32,int8,dynamic",
                                                                                 **QUIET),
                           train_data=(images, labels), eval_data=(images, labels))
    assert not summary["passed"] and set(summary["files"]) == {"float32", "dynamic"}
    assert summary["rejected"] == {"int8": str(tmp_path / "rejected" / "mixer_s16_224_int8.REJECTED.json")}
    int8 = {r["mode"]: r for r in summary["results"]}["int8"]
    assert int8["failures"] == ["conversion failed: RuntimeError: converter crashed"] and int8["parity"] is None
    assert not (tmp_path / "mixer_s16_224_int8.tflite").exists()  # stale file of an earlier export removed
    assert not (tmp_path / "rejected" / "mixer_s16_224_int8.REJECTED.tflite").exists()
    assert (tmp_path / "mixer_s16_224_labels.txt").read_text().split() == ["0", "1", "2", "3", "4"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(r["mode"], r["passed"]) for r in report["results"]] == [("float32", True), ("dynamic", True),
                                                                       ("int8", False)]
    assert "| int8 | – |" in (tmp_path / "report.md").read_text() and (tmp_path / "report.png").exists()


def test_channels_set_normalisation_length_and_colour_space(tmp_path):
    gray = random_tiny_model("gmlp_s16_224", input_shape=(32, 32, 1))
    images = np.random.default_rng(0).normal(size=(32, 32, 32, 1)).astype("float32")
    run = dict(eval_data=images)
    with pytest.raises(ExportError, match=r"preprocessing \(the model's own\) has 3 channel\(s\) .*1-channel images"):
        export_model(gray, tmp_path / "a", ExportOptions(modes="float32", **QUIET), **run)
    with pytest.raises(ExportError, match="`mean` and `std` need one value per channel each, got 1 and 2"):
        ExportOptions(preprocessing={"mean": [0.5], "std": [0.5, 0.5]})
    for bad, message in (([0.0], "`std` must be > 0"), ([float("nan")], "`std` must be one finite number")):
        with pytest.raises(ExportError, match=message):
            ExportOptions(preprocessing=dict(mean=[0.5], std=bad))
    assert not (tmp_path / "a").exists()
    options = ExportOptions(modes="float32", preprocessing=Preprocessing([0.5], [0.25]), **QUIET)
    export_model(gray, tmp_path / "g", options, **run)
    sidecar = json.loads((tmp_path / "g" / "gmlp_s16_224_float32.json").read_text())["input"]
    assert sidecar["color"] == "GRAYSCALE" and sidecar["channels"] == 1
    assert sidecar["normalization"]["mean"] == [0.5] and sidecar["normalization"]["std"] == [0.25]
    raw, _ = read_metadata((tmp_path / "g" / "gmlp_s16_224_float32.tflite").read_bytes())
    assert b"GRAYSCALE image" in raw and b"RGB" not in raw
    rgba = random_tiny_model("gmlp_s16_224", input_shape=(32, 32, 4))
    four = Preprocessing([0.5] * 4, [0.5] * 4)
    summary = export_model(rgba, tmp_path / "c", dataclasses.replace(options, preprocessing=four),
                           eval_data=np.random.default_rng(1).normal(size=(32, 32, 32, 4)).astype("float32"))
    assert json.loads((tmp_path / "c" / "gmlp_s16_224_float32.json").read_text())["input"]["color"] == "UNKNOWN"
    assert "RGB (3) and GRAYSCALE (1) only" in summary["results"][0]["notes"][0]


def test_feature_model_and_path_names_refused(tmp_path):
    import keras_mlp
    features = keras_mlp.create_model("mixer_s16_224", image_size=16, include_top=False, pooling=None)
    with pytest.raises(ExportError, match=r"one 2-D \(batch, classes\) output; this model's output is"):
        export_model(features, tmp_path / "f", ExportOptions(modes="float32"),
                     eval_data=np.zeros((32, 16, 16, 3), np.float32))
    assert not (tmp_path / "f").exists()  # refused before its output folder was made
    for name in ("../../escaped", "a/b", "..", "a\\b"):
        with pytest.raises(ExportError, match="plain file-name stem"):
            ExportOptions(modes="float32", name=name)
    with pytest.raises(ExportError, match="`num_eval` must be a positive integer, got 0"):
        ExportOptions(modes="float32", num_eval=0)


def test_nested_layer_norms_of_a_generic_model_are_found_and_quantised(data):
    import keras

    class Block(keras.layers.Layer):  # a plain LayerNormalization held as an attribute, two levels down
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norms = [keras.layers.LayerNormalization()]
            self.dense = keras.layers.Dense(8)

        def call(self, x):
            return self.dense(self.norms[0](x))

    inner = keras.Sequential([keras.layers.Dense(8), Block()])
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(inner(inputs))))
    found = nested_layers(model)
    assert found[0] is model and sum(isinstance(layer, keras.layers.LayerNormalization) for layer in found) == 1
    assert len(found) == len({id(layer) for layer in found})
    flatbuffer = to_tflite(model, "int8", data[0], num_calibration=8, progress=False)
    assert litert.float_compute_ops(flatbuffer) == {}  # the norm traced in its quantisable form


def test_op_list_reads_custom_and_flex_ops_from_the_flatbuffer(data):
    from ai_edge_litert import schema_py_generated as schema
    flatbuffer = to_tflite(random_tiny_model("ff_ti16_224"), "float32", progress=False)
    ops = litert.op_histogram(flatbuffer)
    assert ops["GELU"] == 4 and ops["FULLY_CONNECTED"] == 9 and litert.non_builtin_ops(flatbuffer) == []  # 2 blocks
    graph = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    gelu = next(code for code in graph.operatorCodes if max(code.builtinCode, code.deprecatedBuiltinCode) == 150)
    gelu.builtinCode, gelu.deprecatedBuiltinCode, gelu.customCode = 32, 32, "FlexErf"
    import flatbuffers
    builder = flatbuffers.Builder(len(flatbuffer))
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    edited = bytes(builder.Output())
    assert litert.non_builtin_ops(edited) == ["FlexErf"] and litert.op_histogram(edited)["FlexErf"] == 4
    with pytest.raises(ExportError, match="Not a valid TFLite model"):
        litert.ops(b"\x00" * 64)


def test_qat_transfers_exactly_and_converts_to_full_int8(data):
    from export.pixels import normalize, to_pixels
    from export.qat import quantization_aware_training
    model = random_tiny_model("mixer_s16_224")
    images, labels = data
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    pixels = to_pixels(images, mean, std)
    qat = quantization_aware_training(
        model, images, labels, images[:8], modes=("qat", "qat_uint8"), pixel_calibration=pixels[:8],
        normalization=(mean, std), gate_images={"qat": images, "qat_uint8": normalize(pixels, mean, std)}, epochs=1,
        progress=False, signature_batch=None)  # as export_model(batch_size=None)
    flatbuffer, qat_logits = qat.files["qat"], qat.gate_logits["qat"]
    assert qat.info["transfer_max_abs"] <= 1e-5 and qat_logits.shape == (32, 5)
    assert qat.info["qat_engine"] == "tfmot" and set(qat.info["versions"]) == {"tensorflow_model_optimization",
                                                                               "tf_keras"}
    assert litert.load(flatbuffer).get_input_details()[0]["shape_signature"][0] == -1
    assert litert.float_compute_ops(flatbuffer) == {} and "GELU" in litert.op_histogram(flatbuffer)
    # Parity against the fine-tuned model it came from (the labels are random: no accuracy to gate on).
    report = check_parity(model, flatbuffer, images, mode="qat", reference=qat_logits)
    assert report.cosine > 0.98 and report.passed, report
    # ... and still near the float model it started from (one QAT epoch), as before the gate was split.
    drift = check_parity(model, flatbuffer, images, mode="qat")
    assert drift.cosine > 0.98, drift
    # The same fine-tune behind the folded normalisation: raw uint8 pixels in (scale 1, zero point 0), float32 out,
    # gated against the fine-tuned model on the same pixels normalised.
    raw = qat.files["qat_uint8"]
    inp = litert.load(raw).get_input_details()[0]
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0) and litert.float_compute_ops(raw) == {}
    report = check_parity(model, raw, pixels, mode="qat_uint8", reference=qat.gate_logits["qat_uint8"])
    assert report.cosine > 0.98 and report.passed, report


def test_qat_transfer_check_is_relative_to_the_logit_scale(data):
    from export.qat import quantization_aware_training
    model = random_tiny_model("mixer_s16_224")
    for v in model.weights:
        if v.path.startswith("head"):
            v.assign(v.numpy() * 3e4)  # logits ~1e4: float32 rounding alone differs by ~1e-3
    images, labels = data
    _, info, _ = quantization_aware_training(model, images[:16], labels[:16], images[:8], epochs=1, progress=False)
    assert 1e-4 < info["transfer_max_abs"] <= info["transfer_tolerance"] < 1e-4 * 1e5, info


def test_keras_qat_engine_files_pass_the_same_gate_and_say_so(data, tmp_path):
    images, labels = data
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    options = ExportOptions(modes="qat,qat_uint8", qat_engine="keras", qat_epochs=1,
                            preprocessing=Preprocessing(mean, std), **QUIET)
    summary = export_model(random_tiny_model("mixer_s16_224"), tmp_path, options, train_data=(images, labels),
                           eval_data=(images, labels))
    assert summary["passed"] and summary["qat_engine"] == "keras", summary["results"]
    for result in summary["results"]:
        flatbuffer = (tmp_path / result["file"]).read_bytes()
        assert litert.float_compute_ops(flatbuffer) == {} and result["float_compute_ops"] == {}
        assert result["qat"]["qat_engine"] == "keras" and "keras" in result["qat"]["versions"]
        sidecar = json.loads((tmp_path / result["file"]).with_suffix(".json").read_text())
        assert sidecar["qat_engine"] == "keras" and sidecar["qat_versions"] == result["qat"]["versions"]
    inp = litert.load((tmp_path / summary["files"]["qat_uint8"]).read_bytes()).get_input_details()[0]
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0)  # raw pixels, as the tfmot engine's
    assert "QAT engine: keras" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["qat_engine"] == "keras"


def test_unknown_qat_engine_is_refused():
    with pytest.raises(ExportError, match="Unknown `qat_engine` 'jax'. Choose from tfmot, keras."):
        ExportOptions(modes="qat", qat_engine="jax")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"])
def test_qat_other_families(name, data):
    from export.qat import quantization_aware_training
    images, labels = data
    files, info, _ = quantization_aware_training(random_tiny_model(name), images, labels, images[:8], epochs=1,
                                                 progress=False)
    assert info["transfer_max_abs"] <= 1e-5 and litert.float_compute_ops(files["qat"]) == {}
