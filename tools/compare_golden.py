"""Compare the Keras models, loaded through the importers, with the reference logits that tools/make_golden.py wrote.

    python tools/compare_golden.py tests/golden     # what CI checks (tests/test_weights_golden.py)
    python tools/compare_golden.py /tmp/full        # after make_golden.py --out /tmp/full --full

Prints, per checkpoint, the largest logit error relative to the reference logits' scale (max |Δ| / max |logit|)
and exits 1 if any exceeds --rtol. RTOL = 2e-6: float32 against timm measured at most 3.2e-7 on the tiny golden files
(Keras 3 and tf_keras alike) and 6.8e-7 at 224x224 (gmlp_s16_224, 30 blocks), 4.0e-7 against the NumPy references
of tests/numpy_reference.py; a wrong model moves the tiny goldens' logits at least 1.2e-5 (the negative tests of
tests/test_weights_golden.py: the other GELU 2.9e-5 to 2.6e-4, a LayerNorm ε of 1e-5 for 1e-6 1.2e-5 to 3.5e-5,
transposed (N, N) token weights 8.6e-2 to 3.9e-1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from safetensors.numpy import load_file

import keras_mlp

RTOL = 2e-6


def relative_error(logits: np.ndarray, reference: np.ndarray) -> float:
    """max |logits - reference| / max |reference|: the error on the reference logits' own scale."""
    reference = np.asarray(reference, np.float64)
    return float(np.abs(np.asarray(logits, np.float64) - reference).max() / np.abs(reference).max())


def golden_case(folder: str, stem: str) -> tuple[str, dict, dict, np.ndarray, np.ndarray]:
    """(variant, overrides, state, images, reference logits) of `<stem>.safetensors` (`x_deit` shares `x.npz`)."""
    io = np.load(os.path.join(folder, f"{stem.removesuffix('_deit')}.npz"))
    args = json.loads(str(io["keras"]))
    return args.pop("model"), args, load_file(os.path.join(folder, f"{stem}.safetensors")), io["images"], io["logits"]


def build(name: str, overrides: dict, state: dict):
    """The variant with `overrides`, the checkpoint `state` loaded (all or nothing)."""
    model = keras_mlp.create_model(name, **overrides)
    keras_mlp.load_checkpoint(model, state)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"largest relative error passed (default {RTOL})")
    args = parser.parse_args(argv)
    worst = 0.0
    for file in sorted(f for f in os.listdir(args.folder) if f.endswith(".safetensors")):
        start = time.perf_counter()
        name, overrides, state, images, reference = golden_case(args.folder, file[: -len(".safetensors")])
        model = build(name, overrides, state)
        logits = model.predict(images, verbose=0)
        error = relative_error(logits, reference)
        worst = max(worst, error)
        print(f"{file}: {name} {model.image_size[0]}x{model.image_size[1]}, {model.count_params():,} params, "
              f"|logits| max {np.abs(reference).max():.3f}, max abs diff {np.abs(logits - reference).max():.2e}, "
              f"relative error {error:.2e} ({time.perf_counter() - start:.1f}s)", flush=True)
    return 0 if worst <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
