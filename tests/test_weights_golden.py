"""Imported checkpoints give the references' outputs (≤ 1e-4 abs): timm's logits for Mixer, ResMLP (timm and deit
key names) and gMLP from the committed golden files (tools/make_golden.py), and independent NumPy forward passes
for the official Flax Mixer `.npz` and the feed-forward-only ViT checkpoints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from tests import numpy_reference as ref

GOLDEN = Path(__file__).parent / "golden"
TINY = dict(image_size=32, patch_size=8, num_blocks=2, hidden_dim=32)
TIMM = {"mixer": ("mixer_s16_224", dict(tokens_mlp_dim=16, channels_mlp_dim=128)),
        "resmlp": ("resmlp_12_224", {}), "resmlp_deit": ("resmlp_12_224", {}), "gmlp": ("gmlp_s16_224", {})}


@pytest.mark.parametrize("golden", sorted(TIMM))
def test_timm_golden(golden):
    name, extra = TIMM[golden]
    model = keras_mlp.create_model(name, weights=GOLDEN / f"{golden}.safetensors", **TINY, **extra)
    io = np.load(GOLDEN / f"{golden.split('_')[0]}.npz")
    logits = model.predict(io["images"], verbose=0)
    assert model.num_classes == io["logits"].shape[1]
    assert np.abs(logits - io["logits"]).max() <= 1e-4


def test_official_mixer_npz_matches_numpy(tmp_path):
    state = ref.random_checkpoint(ref.mixer_flax_shapes(8, 32, 16, 16, 64, 2, 7), seed=1)
    np.savez(tmp_path / "Mixer-tiny.npz", **state)
    model = keras_mlp.create_model("mixer_s16_224", weights=tmp_path / "Mixer-tiny.npz", **TINY, tokens_mlp_dim=16,
                                   channels_mlp_dim=64)
    images = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    expected = ref.mixer_flax_forward(state, images.astype("float64"), patch=8, blocks=2)
    assert model.num_classes == 7 and model.block_config["approximate_gelu"]
    assert np.abs(model.predict(images, verbose=0) - expected).max() <= 1e-4


@pytest.mark.parametrize("image_size, pos_grid", [(32, (4, 4)), (32, (8, 8))])
def test_ff_only_matches_numpy(tmp_path, image_size, pos_grid):
    """The checkpoint's own position grid is kept and resampled at run time, like the reference (ViT-L/32 case)."""
    state = ref.random_checkpoint(ref.ff_shapes(8, 32, 16, pos_grid, 2, 6), seed=3)
    path = tmp_path / "linear-tiny.safetensors"
    from safetensors.numpy import save_file
    save_file(state, str(path))
    model = keras_mlp.create_model("ff_ti16_224", weights=path, **{**TINY, "image_size": image_size})
    images = np.random.default_rng(4).normal(size=(2, 32, 32, 3)).astype("float32")
    expected = ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2)
    assert np.abs(model.predict(images, verbose=0) - expected).max() <= 1e-4


def test_golden_under_tf_keras():
    """The same importers serve tf_keras models (TF_USE_LEGACY_KERAS=1, used for quantisation-aware training)."""
    import os
    import subprocess
    import sys
    root = Path(__file__).parents[1]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, str(root / "tools" / "compare_golden.py"), str(GOLDEN)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("max abs diff") == len(TIMM)


def test_ff_only_with_vit_style_pos_embed():
    """The same model saved with a timm-ViT `pos_embed` (1, 1 + N, C) instead of the learned (C, H, W) grid."""
    state = ref.random_checkpoint(ref.ff_shapes(8, 32, 16, (4, 4), 2, 6), seed=5)
    vit = {k: v for k, v in state.items() if not k.startswith("pos_encoding.")}
    vit["pos_embed"] = np.concatenate([state["pos_encoding.cls_pos_embed"],
                                       state["pos_encoding.pos_embed"].reshape(1, 32, 16).transpose(0, 2, 1)], 1)
    model = keras_mlp.create_model("ff_ti16_224", weights=vit, **TINY)
    images = np.random.default_rng(6).normal(size=(2, 32, 32, 3)).astype("float32")
    expected = ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2)
    assert np.abs(model.predict(images, verbose=0) - expected).max() <= 1e-4
