"""Each family's TFLite graph on the TensorFlow backend is pinned: the op histograms of a tiny model (float32 and
full int8 at batch 1) equal the committed baseline `tests/golden/op_histograms.json`.

The layers' maths is written once for every Keras backend; this test is what keeps the TensorFlow lowering (built-in
ops only, the GELU op, LayerNorm as SUB/MUL/MEAN/RSQRT/ADD, no float op in int8) exactly as it was. After an
intended graph change, regenerate the baseline and review its diff: `python -m tests.test_op_histograms`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from export import litert
from export.convert import to_tflite
from keras_mlp.io import write_atomic
from tests.backends import tensorflow_only

pytestmark = tensorflow_only("TFLite conversion")

GOLDEN = Path(__file__).parent / "golden" / "op_histograms.json"
TINY = dict(image_size=32, num_blocks=2, hidden_dim=32, num_classes=5)
# One tiny model per family (the family representatives), plus the feed-forward-only ViT whose position embedding
# is stored on another grid (the resampling matmul must fold away), also with a dynamic batch (class token tiling).
CASES = {
    "mixer_s16_224": dict(TINY, patch_size=8, tokens_mlp_dim=16, channels_mlp_dim=64),
    "resmlp_12_224": dict(TINY, patch_size=8),
    "gmlp_s16_224": dict(TINY, patch_size=8),
    "ff_ti16_224": dict(TINY, patch_size=8),
    "ff_l32_224": dict(TINY, patch_size=16, pos_embed_grid=(3, 3)),
}
MODES = {"float32": dict(mode="float32"), "int8": dict(mode="int8")}
EXTRA_MODES = {"ff_l32_224": {"float32_dynamic_batch": dict(mode="float32", batch_size=None)}}


def histograms(name: str) -> dict[str, dict[str, int]]:
    """{mode: op histogram} of the tiny `name` (random calibration images: the graph does not depend on them)."""
    model = keras_mlp.create_model(name, **CASES[name])
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    out = {}
    for key, kwargs in {**MODES, **EXTRA_MODES.get(name, {})}.items():
        flatbuffer = to_tflite(model, calibration=images, num_calibration=8, progress=False, **kwargs)
        out[key] = dict(sorted(litert.op_histogram(flatbuffer).items()))
        if kwargs["mode"] == "int8":
            assert litert.float_compute_ops(flatbuffer) == {}, (name, out[key])
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_tflite_op_histogram_equals_the_baseline(name):
    golden = json.loads(GOLDEN.read_text())[name]
    found = histograms(name)
    assert found == golden, f"{name}: the TFLite graph changed (baseline {GOLDEN.name}): {found} != {golden}"
    assert all("GELU" in ops for ops in found.values()), found
    assert not any(op in ops for ops in found.values() for op in ("SQUARED_DIFFERENCE", "NEG", "TANH", "ERF")), found


if __name__ == "__main__":
    baseline = {name: histograms(name) for name in CASES}
    write_atomic(GOLDEN, json.dumps(baseline, indent=1) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
