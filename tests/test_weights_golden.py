"""Imported checkpoints give the references' logits within RTOL of their scale (tools/compare_golden.py): timm's
for Mixer, ResMLP (timm and deit key names) and gMLP from the committed golden files (tools/make_golden.py), and
independent NumPy forward passes (tests/numpy_reference.py) for the official Flax Mixer `.npz` and the
feed-forward-only ViT. The golden configurations have a non-square 3x5 patch grid whose 15 tokens match no
token-mixing width, and the negative tests show the comparison rejects the other GELU, a LayerNorm ε of 1e-5 for
1e-6 and transposed token weights."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_mlp
from keras_mlp.backend import ops
from tests import numpy_reference as ref
from tests.helpers import (
    GRID_IMAGE_SIZE,
    TINY,
    assert_matches_reference,
    flax_mixer_checkpoint,
    predict,
    subprocess_env,
)
from tools.compare_golden import RTOL, build, golden_case, relative_error

GOLDEN = Path(__file__).parent / "golden"
TIMM = ["gmlp", "mixer", "resmlp", "resmlp_deit"]
FLAX_MIXER = dict(patch_size=8, num_classes=7, approximate_gelu=True, **TINY["mixer"])
FF = dict(patch_size=8, num_classes=6, **TINY["ff"])
TOKEN_WEIGHTS = ("mlp_tokens.", "linear_tokens.", "attn.", "gate.proj.", "token_mixing/", "mlp2.")


@pytest.mark.parametrize("golden", TIMM)
def test_timm_golden(golden):
    name, overrides, state, images, reference = golden_case(GOLDEN, golden)
    model = build(name, overrides, state)
    assert model.grid_size == (3, 5) and model.num_classes == reference.shape[1]
    assert_matches_reference(predict(model, images), reference)


def _flax_case(image_size, seed: int = 1):
    grid = (image_size[0] // 8, image_size[1] // 8)
    state = flax_mixer_checkpoint(grid[0] * grid[1], classes=7, seed=seed)
    images = ref_images(image_size, seed=2)
    return state, images, ref.mixer_flax_forward(state, images.astype("float64"), patch=8, blocks=2)


def ref_images(image_size, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(4, *image_size, 3)).astype("float32")


def test_official_mixer_npz_matches_numpy(tmp_path):
    state, images, expected = _flax_case(GRID_IMAGE_SIZE)
    np.savez(tmp_path / "Mixer-tiny.npz", **state)
    model = keras_mlp.create_model("mixer_s16_224", image_size=GRID_IMAGE_SIZE, **FLAX_MIXER)
    keras_mlp.load_checkpoint(model, tmp_path / "Mixer-tiny.npz")
    assert_matches_reference(predict(model, images), expected)


def test_official_mixer_npz_through_create_model(tmp_path):
    """`create_model(weights=)` reads the class count and the tanh GELU of the official weights off the file."""
    state, images, expected = _flax_case((32, 32))
    np.savez(tmp_path / "Mixer-tiny.npz", **state)
    model = keras_mlp.create_model("mixer_s16_224", weights=tmp_path / "Mixer-tiny.npz", image_size=32, patch_size=8,
                                   **TINY["mixer"])
    assert model.num_classes == 7 and model.block_config["approximate_gelu"]
    assert_matches_reference(predict(model, images), expected)


def _ff_case(tokens: int, pos_grid: tuple, seed: int = 3) -> dict:
    return ref.random_checkpoint(ref.ff_shapes(8, 32, tokens, pos_grid, 2, 6), seed=seed)


@pytest.mark.parametrize("pos_grid", [(3, 5), (4, 4)], ids=["own_grid", "stored_4x4"])
def test_ff_only_matches_numpy(tmp_path, pos_grid):
    """The checkpoint's own position grid is kept and resampled at run time, like the reference (ViT-L/32 case)."""
    state = _ff_case(15, pos_grid)
    save_file(state, str(tmp_path / "linear-tiny.safetensors"))
    model = keras_mlp.create_model("ff_ti16_224", image_size=GRID_IMAGE_SIZE, pos_embed_grid=pos_grid, **FF)
    keras_mlp.load_checkpoint(model, tmp_path / "linear-tiny.safetensors")
    images = ref_images(GRID_IMAGE_SIZE, seed=4)
    assert_matches_reference(predict(model, images), ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2))


def test_ff_only_through_create_model_reads_the_position_grid(tmp_path):
    state = _ff_case(16, (8, 8))
    save_file(state, str(tmp_path / "linear-tiny.safetensors"))
    model = keras_mlp.create_model("ff_ti16_224", weights=tmp_path / "linear-tiny.safetensors", image_size=32,
                                   patch_size=8, **TINY["ff"])
    assert model.pos_embed_grid == (8, 8) and model.num_classes == 6
    images = ref_images((32, 32), seed=4)
    assert_matches_reference(predict(model, images), ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2))


def test_ff_only_with_vit_style_pos_embed():
    """The same model saved with a timm-ViT `pos_embed` (1, 1 + N, C) instead of the learned (C, H, W) grid."""
    state = _ff_case(16, (4, 4), seed=5)
    vit = {k: v for k, v in state.items() if not k.startswith("pos_encoding.")}
    vit["pos_embed"] = np.concatenate([state["pos_encoding.cls_pos_embed"],
                                       state["pos_encoding.pos_embed"].reshape(1, 32, 16).transpose(0, 2, 1)], 1)
    model = keras_mlp.create_model("ff_ti16_224", weights=vit, image_size=32, patch_size=8, **TINY["ff"])
    images = ref_images((32, 32), seed=6)
    assert_matches_reference(predict(model, images), ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2))


def test_golden_under_tf_keras():
    """The same importers serve tf_keras models (TF_USE_LEGACY_KERAS=1, used for quantisation-aware training)."""
    root = Path(__file__).parents[1]
    run = subprocess.run([sys.executable, str(root / "tools" / "compare_golden.py"), str(GOLDEN)],
                         env=subprocess_env(TF_USE_LEGACY_KERAS="1"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("relative error") == len(TIMM)


# === Negative tests: a wrong model or wrong weights fail the comparison ===
def _other_gelu(monkeypatch) -> None:
    """Every GELU of the model the other way (tanh for erf and back): how a port that picked the wrong one runs.
    The layers call `keras_mlp.backend.ops.gelu` (`keras.ops`), so that is the op flipped."""
    gelu = ops.gelu
    monkeypatch.setattr(ops, "gelu", lambda x, approximate=True: gelu(x, approximate=not approximate))


def _transposed_token_weights(state: dict) -> dict:
    """Token-mixing matrices left in the other orientation (a key map that forgot a transpose)."""
    return {k: v.swapaxes(-1, -2).copy() if v.ndim == 2 and any(t in k for t in TOKEN_WEIGHTS) else v
            for k, v in state.items()}


def _wrong_case(golden: str, wrong: str, monkeypatch):
    """(model builder, images, reference) of `golden` with the mistake `wrong`."""
    if golden in TIMM:
        name, overrides, state, images, reference = golden_case(GOLDEN, golden)
    elif golden == "flax_mixer":
        name, overrides = "mixer_s16_224", dict(image_size=GRID_IMAGE_SIZE, **FLAX_MIXER)
        state, images, reference = _flax_case(GRID_IMAGE_SIZE)
    else:
        name, overrides, state = "ff_ti16_224", dict(image_size=GRID_IMAGE_SIZE, **FF), _ff_case(15, (3, 5))
        images = ref_images(GRID_IMAGE_SIZE, seed=4)
        reference = ref.ff_forward(state, images.astype("float64"), patch=8, blocks=2)
    if wrong == "other_gelu":
        _other_gelu(monkeypatch)
    elif wrong == "layer_norm_epsilon":
        overrides = {**overrides, "layer_norm_epsilon": 1e-5}  # the references use 1e-6
    else:
        state = _transposed_token_weights(state)
    return lambda: build(name, overrides, state), images, reference


@pytest.mark.parametrize("golden, wrong", [
    *[(g, w) for g in ("mixer", "gmlp", "flax_mixer", "ff") for w in ("other_gelu", "layer_norm_epsilon")],
    ("resmlp", "other_gelu"),  # ResMLP has no LayerNorm (Affine)
    ("resmlp", "transposed_token_weights"), ("gmlp", "transposed_token_weights"),  # (N, N): only numbers tell
])
def test_golden_comparison_rejects_a_wrong_model(golden, wrong, monkeypatch):
    model, images, reference = _wrong_case(golden, wrong, monkeypatch)
    error = relative_error(predict(model(), images), reference)
    assert error > RTOL, f"{wrong} moved {golden}'s logits only {error:.2e} of their scale"


@pytest.mark.parametrize("golden", ["mixer", "flax_mixer", "ff"])
def test_transposed_token_weights_cannot_load(golden, monkeypatch):
    """15 tokens against a 24- (Mixer) or 64-wide (FF, 4·16) token MLP: the transposed kernel does not fit."""
    model, _, _ = _wrong_case(golden, "transposed_token_weights", monkeypatch)
    with pytest.raises(ValueError, match=r"does not fit .*nothing was loaded(?s:.*)shape mismatches"):
        model()
