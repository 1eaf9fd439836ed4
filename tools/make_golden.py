"""Make the golden files of tests/test_weights_golden.py from the reference implementation (timm). Run by hand,
once; CI only reads the files it writes.

Reference environment (a separate venv; never install torch into the project's):
    python3.11 -m venv /tmp/venv-ref
    /tmp/venv-ref/bin/pip install torch==2.13.0            # the CPU wheel; install it first, pinned
    /tmp/venv-ref/bin/pip install --no-deps timm==1.0.31   # pinned; see TORCHVISION below
    /tmp/venv-ref/bin/pip install safetensors numpy pillow pyyaml huggingface_hub
    /tmp/venv-ref/bin/python tools/make_golden.py --out tests/golden           # tiny configs, committed
    /tmp/venv-ref/bin/python tools/make_golden.py --out /tmp/full --full       # 224x224 check, not committed
    python tools/compare_golden.py /tmp/full                                   # the Keras side, project venv

Each model gets seeded random weights with every tensor perturbed (no zero or one init left, so a mis-mapped
tensor changes the logits; see `perturb`), saved as `<name>.safetensors` in timm's layout (ResMLP also in deit's
layout, produced by inverting timm's `checkpoint_filter_fn` and checked by loading it back through that function), and
`<name>.npz` with `images` (NHWC, float32), timm's `logits` and `keras`, the JSON of the keras_mlp variant and
arguments that build the same model (`{"model": name, **overrides}`, read by tools/compare_golden.py).

The tiny configurations use a non-square 3x5 patch grid (24x40 images, patch 8): 15 tokens, never equal to a
token-mixing width (the Mixer's token MLP is 24 wide), so a transposed token kernel cannot load unnoticed and a
transposed grid is a different model.

TORCHVISION: timm imports torchvision at import time, but PyPI's torchvision wheel cannot load beside the CPU
torch wheel on this machine. The Mixer/ResMLP/gMLP code paths never call torchvision, so when it cannot be
imported a stand-in module is installed before timm is imported (nothing of it is used by these models).
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types

import numpy as np

TIMM_VERSION = "1.0.31"
TORCH_VERSION = "2.13.0"
IMAGE_SIZE = (24, 40)  # a 3x5 grid of 8x8 patches
NUM_IMAGES = 4
TINY = dict(img_size=IMAGE_SIZE, patch_size=8, num_blocks=2, embed_dim=32, num_classes=5)
KERAS_TINY = dict(image_size=IMAGE_SIZE, patch_size=8, num_blocks=2, hidden_dim=32, num_classes=5)
# golden name → (timm MlpMixer arguments (block type as in timm's resmlp_*/gmlp_* constructors), the keras_mlp
# variant and overrides that build the same model)
TINY_MODELS = {
    "mixer": (dict(mlp_ratio=(0.75, 2.0)),
              ("mixer_s16_224", dict(tokens_mlp_dim=24, channels_mlp_dim=64, approximate_gelu=False))),
    "resmlp": (dict(mlp_ratio=4, block_layer="ResBlock", norm_layer="Affine"), ("resmlp_12_224", dict(mlp_ratio=4.0))),
    "gmlp": (dict(mlp_ratio=6, block_layer="SpatialGatingBlock", mlp_layer="GatedMlp"),
             ("gmlp_s16_224", dict(mlp_ratio=6.0))),
}
# The patch embeddings (variance ~0.1, not ~1) make the first LayerNorm's ε matter: ε 1e-5 for 1e-6 then moves the
# tiny goldens' logits 1.2e-5 (Mixer) and 3.5e-5 (gMLP) of their scale, not ~2e-6 (measured).
STEM_SCALE = 0.3
# timm name → keras_mlp overrides (timm's Mixer uses the exact GELU)
FULL_MODELS = {"mixer_b16_224": dict(approximate_gelu=False), "resmlp_12_224": {}, "gmlp_s16_224": {}}


def _stub_torchvision() -> None:
    try:
        import torchvision  # noqa: F401
        return
    except Exception:
        sys.modules.pop("torchvision", None)

    class _Any(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            sub = _Any(name, (cls,), {})
            setattr(cls, name, sub)
            return sub

    class Dummy(metaclass=_Any):
        def __init__(self, *args, **kwargs):
            pass

    class Stub(types.ModuleType):
        __path__: list = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Dummy

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return Stub(spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())


def perturb(model, seed: int) -> None:
    """Seeded random values for every tensor: matrices ~ N(0, 1/fan_in), vectors around their init mean ± 0.2;
    then the stem times STEM_SCALE."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() >= 2 and p.shape[-1] > 1 and p.numel() != p.shape[-1]:
                p.copy_(noise / np.sqrt(p[0].numel()))
            else:
                p.copy_(p.mean() + 0.2 * noise)
            if key.startswith("stem."):
                p.mul_(STEM_SCALE)


def to_deit(state: dict) -> dict:
    """timm ResMLP keys → deit `resmlp_models.py` keys (the inverse of timm's checkpoint_filter_fn)."""
    out = {}
    for key, value in state.items():
        key = key.replace("stem.", "patch_embed.").replace("linear_tokens.", "attn.")
        key = key.replace("mlp_channels.", "mlp.").replace(".ls1", ".gamma_1").replace(".ls2", ".gamma_2")
        out[key] = value.reshape(-1) if key.endswith((".alpha", ".beta")) else value
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--full", action="store_true", help="the 224x224 variants instead of the tiny configs")
    args = parser.parse_args(argv)
    _stub_torchvision()
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.models.mlp_mixer import checkpoint_filter_fn
    if timm.__version__ != TIMM_VERSION or not torch.__version__.startswith(TORCH_VERSION):
        print(f"warning: made with timm {TIMM_VERSION} / torch {TORCH_VERSION}, running timm {timm.__version__} / "
              f"torch {torch.__version__}", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    from timm.models import mlp_mixer
    if args.full:
        jobs = {name: (lambda n=name: timm.create_model(n, pretrained=False), (224, 224), {"model": name, **kw})
                for name, kw in FULL_MODELS.items()}
    else:
        jobs = {name: (lambda kw=kw: mlp_mixer.MlpMixer(**TINY, **{k: getattr(mlp_mixer, v) if isinstance(v, str) else v
                                                                 for k, v in kw.items()}),
                       IMAGE_SIZE, {"model": variant, **KERAS_TINY, **overrides})
                for name, (kw, (variant, overrides)) in TINY_MODELS.items()}
    for seed, (name, (build, size, keras_args)) in enumerate(sorted(jobs.items())):
        model = build().eval()
        perturb(model, seed)
        images = torch.randn(NUM_IMAGES, 3, *size, generator=torch.Generator().manual_seed(100 + seed))
        with torch.no_grad():
            logits = model(images).numpy()
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(args.out, f"{name}.safetensors"))
        if "linear_tokens" in "".join(state):
            deit = to_deit(state)
            assert all(torch.equal(a, deit_b) for a, deit_b in zip(
                [state[k] for k in sorted(state)],
                [v for _, v in sorted(checkpoint_filter_fn(dict(deit), model).items())])), "deit inversion broken"
            save_file({k: v.contiguous() for k, v in deit.items()}, os.path.join(args.out, f"{name}_deit.safetensors"))
        np.savez(os.path.join(args.out, f"{name}.npz"), images=images.permute(0, 2, 3, 1).numpy(), logits=logits,
                 keras=json.dumps(keras_args))
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
              f"logits {logits.shape}, |logits| max {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
