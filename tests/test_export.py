"""export/: every post-training mode on a tiny model of each family, the gate, files and QAT (issue 4)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import export
from export.convert import float_compute_ops
from export.metadata import read_metadata
from tests.backends import tensorflow_only
from tests.helpers import FAMILY_REPRESENTATIVES, random_tiny_model, tiny_model

pytestmark = tensorflow_only("TFLite export")

PTQ_MODES = ("float32", "float16", "dynamic", "int8", "int8_float_io", "int16x8")
INPUT_DTYPE = {"int8": np.int8}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 5, 32)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_every_ptq_mode_builtin_and_close(name, data):
    model = random_tiny_model(name)
    images, labels = data
    for mode in PTQ_MODES:
        flatbuffer = export.to_tflite(model, mode, images, num_calibration=32, progress=False)
        ops = export.op_histogram(flatbuffer)
        assert "GELU" in ops, (mode, ops)  # the built-in op, not an erf/tanh expansion
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)
        report = export.check_parity(model, flatbuffer, images, labels, mode=mode)
        details = export.parity.interpreter(flatbuffer).get_input_details()[0]
        assert details["dtype"] == INPUT_DTYPE.get(mode, np.float32)
        assert details["name"].endswith("images:0") and list(details["shape"]) == [1, 32, 32, 3]
        if mode == "float32":
            assert report.passed and report.max_abs <= 1e-4 and report.agreement == 1.0
        else:  # untrained random nets have near-tied logits: check the logits, not the argmax
            assert report.cosine > (0.999 if mode == "float16" else 0.95), (mode, report)
        if mode in ("int8", "int8_float_io", "int16x8"):
            assert float_compute_ops(flatbuffer) == {}, (mode, ops)


def test_dynamic_batch_and_roundtrip_helper(data):
    model = random_tiny_model("mixer_s16_224")
    images, _ = data
    flatbuffer = export.to_tflite(model, "float32", batch_size=None, progress=False)
    assert export.parity.interpreter(flatbuffer).get_input_details()[0]["shape_signature"][0] == -1
    np.testing.assert_allclose(export.run_tflite(flatbuffer, images), model.predict(images, verbose=0), atol=1e-4)
    _, logits = export.float32_roundtrip(model, images[:3])
    np.testing.assert_allclose(logits, model.predict(images[:3], verbose=0), atol=1e-4)
    with pytest.raises(export.ExportError, match=r"expects images of shape \(32, 32, 3\), got \(16, 16, 3\)"):
        export.run_tflite(flatbuffer, images[:2, :16, :16])  # plain ints, not np.int32(32)


def test_export_model_files_gate_and_rejection(tmp_path, data):
    model = random_tiny_model("gmlp_s16_224")
    images, labels = data
    names = ["a", "b", "c", "d", "e"]
    summary = export.export_model(model, tmp_path, "float32,int8", train_data=(images, labels),
                                  eval_data=(images, labels), class_names=names, latency_runs=3,
                                  thresholds={"int8": {"max_abs": 0.0}}, progress=False)
    assert not summary["passed"] and list(summary["files"]) == ["float32"] and list(summary["rejected"]) == ["int8"]
    assert (tmp_path / "rejected" / "gmlp_s16_224_int8.REJECTED.tflite").exists()
    assert not (tmp_path / "gmlp_s16_224_int8.tflite").exists()
    sidecar = json.loads((tmp_path / "gmlp_s16_224_float32.json").read_text())
    assert sidecar["labels"] == names and sidecar["input"]["normalization"]["mean"] == [0.5, 0.5, 0.5]
    assert sidecar["input"]["quantization"] is None and sidecar["output"]["quantization"] is None  # float I/O
    assert (tmp_path / "gmlp_s16_224_labels.txt").read_text().split() == names
    raw, files = read_metadata((tmp_path / "gmlp_s16_224_float32.tflite").read_bytes())
    assert raw[4:8] == b"M001" and files == {"gmlp_s16_224_labels.txt": b"a\nb\nc\nd\ne\n"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["mode"] for r in report["results"]] == ["float32", "int8"]
    assert report["results"][0]["ops"]["GELU"] == 2 and set(report["results"][0]["latency_ms"]) == {"1", "2"}
    assert (tmp_path / "report.png").stat().st_size > 0 and "| float32 |" in (tmp_path / "report.md").read_text()
    # Again into the same folder, outcomes swapped: no stale file of the earlier export stays beside the report.
    again = export.export_model(model, tmp_path, "float32,int8", train_data=(images, labels), eval_data=images,
                                latency_runs=1, threads=(1,), progress=False,
                                thresholds={"float32": {"max_abs": 0.0}, "int8": {"agreement": 0.0}})
    assert list(again["files"]) == ["int8"] and list(again["rejected"]) == ["float32"]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "gmlp_s16_224_float32.REJECTED.json", "gmlp_s16_224_float32.REJECTED.tflite"]
    assert not (tmp_path / "gmlp_s16_224_float32.tflite").exists() and (tmp_path / "gmlp_s16_224_int8.tflite").exists()
    assert any("removed gmlp_s16_224_float32.tflite" in n for n in again["results"][0]["notes"])
    int8_io = json.loads((tmp_path / "gmlp_s16_224_int8.json").read_text())["input"]["quantization"]
    assert int8_io["scale"] > 0 and -128 <= int8_io["zero_point"] <= 127


def test_compare_agreement_counts_output_grid_ties_not_flips():
    # int8 seed 15 of the generic model: two logits 7.5e-4 apart in float land on one int8 output step
    reference = np.array([[0.1966, 0.1973, -0.35], [1.0, 0.0, 0.5], [0.2, 0.9, 0.1]], np.float32)
    logits = np.array([[0.1979, 0.1979, -0.3493], [0.0, 1.0, 0.5], [0.3, 0.9, 0.1]], np.float32)
    report = export.parity.compare(reference, logits, np.array([1, 0, 1]), "int8")
    assert report.agreement == pytest.approx(2 / 3)  # the tie agrees; the real flip (row 2) does not
    assert report.tflite_accuracy == pytest.approx(1 / 3) and report.float_accuracy == 1.0
    assert [f.split()[0] for f in report.failures] == ["top-1", "accuracy"]


def test_compare_fails_non_finite_logits_and_refuses_a_broken_float_model():
    reference = np.tile(np.array([[3.0, 1.0, 0.5]], np.float32), (100, 1))
    logits = reference.copy()
    logits[0] = np.nan  # one image of 100: 99% agreement would pass int8's 98%, and NaN > limit is False
    report = export.parity.compare(reference, logits, np.zeros(100, int), "int8")
    assert not report.passed and report.failures[0] == "non-finite TFLite logits (NaN/inf) on 1 of 100 images"
    assert report.max_abs == 0.0 and report.agreement == 0.99 and report.tflite_accuracy == 0.99
    every = export.parity.compare(reference[:5], np.full((5, 3), np.inf), None, "float32")
    assert not every.passed and every.max_abs is None and "5 of 5" in every.failures[0]
    with pytest.raises(export.ExportError, match="float Keras model's own logits are NaN/inf on 5 of 5"):
        export.parity.compare(np.full((5, 3), np.nan), reference[:5], None, "float32")


def test_qat_is_gated_on_accuracy_when_labels_are_known():
    # Fine-tuning fixed 10 of the float model's 100 errors: agreement 90%, accuracy 80% -> 90%.
    labels = np.zeros(100, int)
    reference = np.tile(np.array([[1.0, 0.0]]), (100, 1))
    reference[:20] = [0.0, 1.0]
    logits = reference.copy()
    logits[:10] = [1.0, 0.0]
    assert export.parity.compare(reference, logits, labels, "qat").passed
    assert not export.parity.compare(reference, logits, labels, "int8").passed  # PTQ: the same model, 98% agreement
    unlabelled = export.parity.compare(reference, logits, None, "qat")
    assert unlabelled.failures == ["top-1 agreement 90.00% < 98.00%"]
    assert not export.parity.compare(reference, logits, labels, "qat", {"agreement": 0.95}).passed  # asked for
    worse = reference.copy()
    worse[20:22] = [0.0, 1.0]  # 2 points below float
    assert export.parity.compare(reference, worse, labels, "qat").failures[0].startswith("accuracy 78.00%")


@pytest.mark.parametrize("thresholds, message", [
    ({"float32": {"bogus": 1}}, r"Unknown threshold float32.bogus: the keys are max_abs, mean_abs"),
    ({"int8": {"agrement": 0.9}}, r"Unknown threshold int8.agrement"),
    ({"int4": {"agreement": 0.9}}, r"unknown mode 'int4'"),
    ({"float32": {"agreement": 1.5}}, r"float32.agreement=1.5 is out of range: use a fraction in \[0, 1\]"),
    ({"int8": {"accuracy_drop": -0.1}}, r"int8.accuracy_drop=-0.1 is out of range: use a value >= 0"),
    ({"int8": {"max_abs": float("nan")}}, r"int8.max_abs must be a finite number"),
])
def test_thresholds_checked_before_anything_is_written(tmp_path, thresholds, message):
    model = tiny_model("mixer_s16_224")
    with pytest.raises(export.ExportError, match=message):
        export.export_model(model, tmp_path / "out", "float32", eval_data=np.zeros((2, 32, 32, 3), np.float32),
                            thresholds=thresholds)
    assert not (tmp_path / "out").exists()
    with pytest.raises(export.ExportError, match=message):
        mode, limits = next(iter(thresholds.items()))
        export.parity.compare(np.eye(3), np.eye(3), None, mode, limits)


def test_failed_conversion_is_a_rejected_mode_and_the_report_is_written(tmp_path, data, monkeypatch):
    import export.pipeline
    real = export.pipeline.to_tflite

    def failing(model, mode, *args, **kwargs):
        if mode == "int8":
            raise RuntimeError("converter crashed")
        return real(model, mode, *args, **kwargs)
    monkeypatch.setattr(export.pipeline, "to_tflite", failing)
    images, labels = data
    (tmp_path / "mixer_s16_224_int8.tflite").write_bytes(b"from an earlier export")
    summary = export.export_model(random_tiny_model("mixer_s16_224"), tmp_path, "float32,int8,dynamic",
                                  train_data=(images, labels), eval_data=(images, labels), latency_runs=1,
                                  threads=(1,), progress=False)
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
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype("float32")
    run = dict(eval_data=images, latency_runs=1, threads=(1,), progress=False)
    message = r"`mean` has 3 value\(s\) \(the model's preprocessing.*1-channel images"
    with pytest.raises(export.ExportError, match=message):
        export.export_model(gray, tmp_path / "a", "float32", **run)
    with pytest.raises(export.ExportError, match="`std` has 2 value\\(s\\) but the model takes 1-channel"):
        export.export_model(gray, tmp_path / "a", "float32", mean=[0.5], std=[0.5, 0.5], **run)
    for bad, message in (([0.0], "`std` must be > 0"), ([float("nan")], "`std` must be finite")):
        with pytest.raises(export.ExportError, match=message):
            export.export_model(gray, tmp_path / "a", "float32", mean=[0.5], std=bad, **run)
    assert not (tmp_path / "a").exists()
    export.export_model(gray, tmp_path / "g", "float32", mean=[0.5], std=[0.25], **run)
    sidecar = json.loads((tmp_path / "g" / "gmlp_s16_224_float32.json").read_text())["input"]
    assert sidecar["color"] == "GRAYSCALE" and sidecar["channels"] == 1
    assert sidecar["normalization"]["mean"] == [0.5] and sidecar["normalization"]["std"] == [0.25]
    raw, _ = read_metadata((tmp_path / "g" / "gmlp_s16_224_float32.tflite").read_bytes())
    assert b"GRAYSCALE image" in raw and b"RGB" not in raw
    rgba = random_tiny_model("gmlp_s16_224", input_shape=(32, 32, 4))
    summary = export.export_model(rgba, tmp_path / "c", "float32", mean=[0.5] * 4, std=[0.5] * 4,
                                  **{**run, "eval_data": np.zeros((2, 32, 32, 4), np.float32)})
    assert json.loads((tmp_path / "c" / "gmlp_s16_224_float32.json").read_text())["input"]["color"] == "UNKNOWN"
    assert "RGB (3) and GRAYSCALE (1) only" in summary["results"][0]["notes"][0]


def test_feature_model_and_path_names_refused(tmp_path):
    import keras_mlp
    features = keras_mlp.create_model("mixer_s16_224", image_size=16, include_top=False, pooling=None)
    with pytest.raises(export.ExportError, match=r"one 2-D \(batch, classes\) output; this model's output is"):
        export.export_model(features, tmp_path / "f", "float32", eval_data=np.zeros((2, 16, 16, 3), np.float32))
    model = tiny_model("mixer_s16_224")
    for name in ("../../escaped", "a/b", "..", "a\\b"):
        with pytest.raises(export.ExportError, match="plain file-name stem"):
            export.export_model(model, tmp_path / "n" / "out", "float32", name=name,
                                eval_data=np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(export.ExportError, match="`num_eval` must be a positive integer, got 0"):
        export.export_model(model, tmp_path / "n" / "out", "float32", num_eval=0,
                            eval_data=np.zeros((2, 32, 32, 3), np.float32))
    assert not (tmp_path / "n").exists() and not (tmp_path / "f").exists()


def test_qat_transfers_exactly_and_converts_to_full_int8(data):
    from export.pixels import normalize, to_pixels
    from export.qat import qat_files
    model = random_tiny_model("mixer_s16_224")
    images, labels = data
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    pixels = to_pixels(images, mean, std)
    files, info = qat_files(model, images, labels, images[:8], modes=("qat", "qat_uint8"), epochs=1, progress=False,
                            pixel_calibration=pixels[:8], normalization=(mean, std),
                            signature_batch=None)  # as export_model(batch_size=None)
    flatbuffer = files["qat"]
    assert info["transfer_max_abs"] <= 1e-5
    assert export.parity.interpreter(flatbuffer).get_input_details()[0]["shape_signature"][0] == -1
    assert float_compute_ops(flatbuffer) == {} and "GELU" in export.op_histogram(flatbuffer)
    report = export.check_parity(model, flatbuffer, images, labels, mode="qat")
    assert report.cosine > 0.98, report
    # The same fine-tune behind the folded normalisation: raw uint8 pixels in (scale 1, zero point 0), float32 out.
    raw = files["qat_uint8"]
    inp = export.parity.interpreter(raw).get_input_details()[0]
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0) and float_compute_ops(raw) == {}
    reference = model.predict(normalize(pixels, mean, std), verbose=0)
    report = export.parity.compare(reference, export.run_tflite(raw, pixels), labels, "qat_uint8")
    assert report.cosine > 0.98, report


def test_qat_transfer_check_is_relative_to_the_logit_scale(data):
    from export.qat import quantization_aware_training
    model = random_tiny_model("mixer_s16_224")
    for v in model.weights:
        if v.path.startswith("head"):
            v.assign(v.numpy() * 3e4)  # logits ~1e4: float32 rounding alone differs by ~1e-3
    images, labels = data
    _, info = quantization_aware_training(model, images[:16], labels[:16], images[:8], epochs=1, progress=False)
    assert 1e-4 < info["transfer_max_abs"] <= info["transfer_tolerance"] < 1e-4 * 1e5, info


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"])
def test_qat_other_families(name, data):
    from export.qat import quantization_aware_training
    images, labels = data
    flatbuffer, info = quantization_aware_training(random_tiny_model(name), images, labels, images[:8], epochs=1,
                                                   progress=False)
    assert info["transfer_max_abs"] <= 1e-5 and float_compute_ops(flatbuffer) == {}
