"""Raw-pixel files (`export.pixels`: uint8 0..255 in, normalisation folded in) and the per-file runtime checks
(`export.runtimes`), on tiny models with random weights (a zero head would make every comparison trivial)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from export import runtimes
from export.cli import main
from export.convert import to_tflite
from export.errors import ExportError
from export.metadata import read_image_metadata
from export.options import ExportOptions
from export.pipeline import export_model
from export.pixels import PixelNormalization, normalize, pixel_model, to_pixels
from keras_mlp.backend import keras
from keras_mlp.preprocessing import Preprocessing
from tests.backends import tensorflow_only
from tests.helpers import random_tiny_model

pytestmark = tensorflow_only("TFLite export")

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # distinct per channel: what MediaPipe cannot apply to a float input


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)


def test_pixel_model_is_the_model_on_normalised_pixels(pixels):
    model = random_tiny_model("mixer_s16_224")
    wrapped = pixel_model(model, MEAN, STD)
    want = model.predict(normalize(pixels, MEAN, STD), verbose=0)
    assert np.std(want, axis=0).min() > 1e-3  # logits vary across images
    got = wrapped.predict(pixels.astype(np.float32), verbose=0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    np.testing.assert_array_equal(to_pixels(normalize(pixels, MEAN, STD), MEAN, STD), pixels)
    layer = PixelNormalization.from_config(wrapped.get_layer("pixel_normalization").get_config())
    assert (layer.mean, layer.std) == (list(MEAN), list(STD))
    assert not any(isinstance(sub, PixelNormalization) for sub in model._flatten_layers())  # the user's model as is


def test_raw_pixel_modes_refuse_normalised_data_and_a_missing_normalisation(pixels):
    model = random_tiny_model("mixer_s16_224")
    with pytest.raises(ExportError, match=r"normalization=\(mean, std\)"):
        to_tflite(model, "int8_uint8", pixels.astype(np.float32))
    with pytest.raises(ExportError, match="must be 0..255 pixels"):
        to_tflite(model, "int8_uint8", normalize(pixels, MEAN, STD), normalization=(MEAN, STD))
    with pytest.raises(ExportError, match="fine-tunes the model first"):
        to_tflite(model, "qat_uint8", pixels.astype(np.float32), normalization=(MEAN, STD))
    generic = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(5)], name="generic")
    with pytest.raises(ExportError, match="fold the normalisation into the file"):
        export_model(generic, "unused", ExportOptions(modes="int8_uint8", metadata=False),
                     eval_data=normalize(pixels, MEAN, STD))


def test_export_model_raw_pixel_file_gate_metadata_sidecar_and_runtimes(tmp_path, pixels):
    model = random_tiny_model("mixer_s16_224")
    images, labels = normalize(pixels, MEAN, STD), np.arange(len(pixels)) % 5
    loose = {"agreement": 0.0, "accuracy_drop": 1.0}  # untrained random nets have near-tied logits: check cosine
    modes = ("float32", "int8", "int8_uint8")
    calibration = normalize(np.clip(pixels, 10, 239), MEAN, STD)  # the uint8 input range is pinned all the same
    options = ExportOptions(modes=",".join(modes), class_names=list("abcde"), preprocessing=Preprocessing(MEAN, STD),
                            latency_runs=2, threads=(1,), progress=False,
                            thresholds={m: loose for m in modes if m != "float32"})
    summary = export_model(model, tmp_path, options, eval_data=(images, labels), calibration_data=calibration)
    assert summary["passed"] and list(summary["files"]) == list(modes), summary["rejected"]
    results = {r["mode"]: r for r in summary["results"]}
    parity = results["int8_uint8"]["parity"]  # gated on raw pixels against Keras on those pixels normalised
    assert parity["cosine"] > 0.99 and parity["max_abs"] < 0.1 * np.abs(model.predict(images, verbose=0)).max()
    assert results["int8_uint8"]["float_compute_ops"] == {} and "GELU" in results["int8_uint8"]["ops"]
    sidecar = json.loads((tmp_path / "mixer_s16_224_int8_uint8.json").read_text())
    assert sidecar["input"]["dtype"] == "uint8" and sidecar["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert sidecar["input"]["raw_pixels"] and sidecar["output"]["dtype"] == "float32"  # logits, not an 8-bit grid
    normalization = sidecar["input"]["normalization"]
    assert normalization["mean"] == [0.0] * 3 and normalization["std"] == [1.0] * 3
    assert normalization["in_model"] == {"formula": "(pixel / 255 - mean) / std", "mean": list(MEAN), "std": list(STD)}
    float_sidecar = json.loads((tmp_path / "mixer_s16_224_float32.json").read_text())
    assert not float_sidecar["input"]["raw_pixels"] and float_sidecar["input"]["normalization"]["mean"] == list(MEAN)
    raw = read_image_metadata((tmp_path / "mixer_s16_224_int8_uint8.tflite").read_bytes())
    assert raw == {"color": "RGB", "mean": [0.0] * 3, "std": [1.0] * 3}
    normalised = read_image_metadata((tmp_path / "mixer_s16_224_float32.tflite").read_bytes())
    np.testing.assert_allclose(normalised["mean"], np.multiply(MEAN, 255), rtol=1e-6)
    # Runtimes: ai_edge_litert runs every file; MediaPipe's rules refuse int8 input and per-channel float
    # normalisation; the raw-pixel file is left to a real MediaPipe run (slow tier, with int16x8).
    verified = {mode: r["verified_on"] for mode, r in results.items()}
    assert all(v["ai_edge_litert"]["runs"] for v in verified.values())
    assert "input is int8" in verified["int8"]["mediapipe"]["reasons"][0]
    assert "per-channel NormalizationOptions" in verified["float32"]["mediapipe"]["reasons"][0]
    assert verified["int8_uint8"]["mediapipe"]["runs"] is None and not verified["int8_uint8"]["mediapipe"]["reasons"]
    assert any("mediapipe cannot run this file" in n for n in results["int8"]["notes"])
    gpu_checked = runtimes.analyzer_checks_gpu()
    assert all((v["gpu_delegate"]["runs"] is None) == (not gpu_checked) for v in verified.values())
    assert sidecar["verified_on"] == verified["int8_uint8"]
    assert "mediapipe NO" in (tmp_path / "report.md").read_text()


def test_gpu_report_parsed_and_an_inert_analyzer_is_not_trusted():
    # The analyzer's format (tensorflow/lite/python/analyzer_wrapper/model_analyzer.cc), lines as TF 2.13 printed
    # them for a model with unsupported ops (tensorflow/tensorflow#61743).
    report = "\n".join(["Subgraph#0 main(T#0) -> [T#31]", "  Op#0 EXPAND_DIMS(T#0, T#13[1]) -> [T#15]",
                        "GPU COMPATIBILITY WARNING: Not supported op EXPAND_DIMS",
                        "  Op#1 TILE(T#15, T#7[1, 4, 1]) -> [T#16]", "",
                        "GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 0 "
                        "with TFLite runtime version 2.13.0"])
    parsed = runtimes.parse_gpu_report(report)
    assert parsed["runs"] is False and parsed["reasons"] == ["Op#0 EXPAND_DIMS: Not supported op EXPAND_DIMS"]
    assert runtimes.parse_gpu_report("Your model looks compatible with GPU delegate on TFLite 2.13.0.")["runs"]
    assert runtimes.parse_gpu_report("Failed to mmap the given model buffer.")["runs"] is None
    # A Flex op never runs on the GPU delegate: whatever this TF's analyzer says, it is not called compatible.
    import tensorflow as tf

    def determinant(x):
        return tf.linalg.det(x)
    fn = tf.function(determinant, input_signature=[tf.TensorSpec([1, 2, 2], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    assert runtimes.gpu_delegate(converter.convert())["runs"] is not True


def test_cli_exports_and_gates_a_raw_pixel_file(tmp_path, capsys):
    model = random_tiny_model("mixer_s16_224", image_size=16, patch_size=4, num_classes=10)
    model.save(tmp_path / "mixer.keras")
    out = tmp_path / "out"
    args = [str(tmp_path / "mixer.keras"), "--data", "digits", "--num-eval", "64", "--threshold",
            "int8_uint8.agreement=0", "--threshold", "int8_uint8.accuracy_drop=1"]
    assert main([*args, "--modes", "int8_uint8", "--out", str(out), "--quiet", "--latency-runs", "2",
                 "--threads", "1", "--mediapipe-venv", ""]) == 0, capsys.readouterr().err
    assert "| int8_uint8 |" in capsys.readouterr().out
    assert main([*args, "--gate", str(out / "mixer_s16_224_int8_uint8.tflite")]) == 0  # mode from the sidecar
    gated = json.loads(capsys.readouterr().out)
    assert gated["mode"] == "int8_uint8" and gated["cosine"] > 0.99  # fed raw pixels, as the export gate
