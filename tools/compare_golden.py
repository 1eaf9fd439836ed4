"""Compare the Keras models, loaded through the importers, with the reference logits that tools/make_golden.py wrote.

    /work/venv/bin/python tools/compare_golden.py /tmp/full     # after make_golden.py --out /tmp/full --full

Prints the max and mean absolute logit difference per model; exits 1 if any exceeds --atol.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# golden file name → (registry variant, overrides); the full-size names are registry names themselves
TINY = {"mixer": ("mixer_s16_224", dict(tokens_mlp_dim=16, channels_mlp_dim=128)),
        "resmlp": ("resmlp_12_224", {}), "resmlp_deit": ("resmlp_12_224", {}), "gmlp": ("gmlp_s16_224", {})}
TINY_ARGS = dict(image_size=32, patch_size=8, num_blocks=2, hidden_dim=32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args(argv)
    import keras_mlp
    worst = 0.0
    for file in sorted(f for f in os.listdir(args.folder) if f.endswith(".safetensors")):
        stem = file[: -len(".safetensors")]
        name, extra = TINY.get(stem, (stem.removesuffix("_deit"), {}))
        extra = {**TINY_ARGS, **extra} if stem in TINY else {}
        io = np.load(os.path.join(args.folder, f"{stem.removesuffix('_deit')}.npz"))
        start = time.perf_counter()
        model = keras_mlp.create_model(name, weights=os.path.join(args.folder, file), **extra)
        diff = np.abs(model.predict(io["images"], verbose=0) - io["logits"])
        worst = max(worst, float(diff.max()))
        print(f"{file}: {name} {model.image_size[0]}x{model.image_size[1]}, {model.count_params():,} params, "
              f"|logits| max {np.abs(io['logits']).max():.3f}, max abs diff {diff.max():.2e}, mean {diff.mean():.2e} "
              f"({time.perf_counter() - start:.1f}s)", flush=True)
    return 0 if worst <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
