"""export/: every post-training mode on a tiny model of each family, the gate, files and QAT (issue 4)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import export
from export.convert import float_compute_ops
from export.metadata import read_metadata
from tests.conftest import FAMILY_REPRESENTATIVES, tiny_model

PTQ_MODES = ("float32", "float16", "dynamic", "int8", "int8_float_io", "int16x8")
INPUT_DTYPE = {"int8": np.int8}


def randomised(name: str, seed: int = 0):
    """Tiny model with random weights (the head starts at zero, which would make every mode trivially equal)."""
    model = tiny_model(name)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 5, 32)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_every_ptq_mode_builtin_and_close(name, data):
    model = randomised(name)
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
    model = randomised("mixer_s16_224")
    images, _ = data
    flatbuffer = export.to_tflite(model, "float32", batch_size=None, progress=False)
    assert export.parity.interpreter(flatbuffer).get_input_details()[0]["shape_signature"][0] == -1
    np.testing.assert_allclose(export.run_tflite(flatbuffer, images), model.predict(images, verbose=0), atol=1e-4)
    _, logits = export.float32_roundtrip(model, images[:3])
    np.testing.assert_allclose(logits, model.predict(images[:3], verbose=0), atol=1e-4)


def test_export_model_files_gate_and_rejection(tmp_path, data):
    model = randomised("gmlp_s16_224")
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
                                thresholds={"float32": {"agreement": 1.01}, "int8": {"agreement": 0.0}})
    assert list(again["files"]) == ["int8"] and list(again["rejected"]) == ["float32"]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "gmlp_s16_224_float32.REJECTED.json", "gmlp_s16_224_float32.REJECTED.tflite"]
    assert not (tmp_path / "gmlp_s16_224_float32.tflite").exists() and (tmp_path / "gmlp_s16_224_int8.tflite").exists()
    assert any("removed gmlp_s16_224_float32.tflite" in n for n in again["results"][0]["notes"])


def test_compare_agreement_counts_output_grid_ties_not_flips():
    # int8 seed 15 of the generic model: two logits 7.5e-4 apart in float land on one int8 output step
    reference = np.array([[0.1966, 0.1973, -0.35], [1.0, 0.0, 0.5], [0.2, 0.9, 0.1]], np.float32)
    logits = np.array([[0.1979, 0.1979, -0.3493], [0.0, 1.0, 0.5], [0.3, 0.9, 0.1]], np.float32)
    report = export.parity.compare(reference, logits, np.array([1, 0, 1]), "int8")
    assert report.agreement == pytest.approx(2 / 3)  # the tie agrees; the real flip (row 2) does not
    assert report.tflite_accuracy == pytest.approx(1 / 3) and report.float_accuracy == 1.0
    assert [f.split()[0] for f in report.failures] == ["top-1", "accuracy"]


def test_qat_transfers_exactly_and_converts_to_full_int8(data):
    from export.qat import quantization_aware_training
    model = randomised("mixer_s16_224")
    images, labels = data
    flatbuffer, info = quantization_aware_training(model, images, labels, images[:8], epochs=1, progress=False)
    assert info["transfer_max_abs"] <= 1e-5
    assert float_compute_ops(flatbuffer) == {} and "GELU" in export.op_histogram(flatbuffer)
    report = export.check_parity(model, flatbuffer, images, labels, mode="qat")
    assert report.cosine > 0.98, report


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"])
def test_qat_other_families(name, data):
    from export.qat import quantization_aware_training
    images, labels = data
    flatbuffer, info = quantization_aware_training(randomised(name), images, labels, images[:8], epochs=1,
                                                   progress=False)
    assert info["transfer_max_abs"] <= 1e-5 and float_compute_ops(flatbuffer) == {}
