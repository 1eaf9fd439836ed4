"""`keras_mlp.save_checkpoint` writes every published layout the loaders read, from the same key maps: each layout
round-trips a tiny model with every weight randomised (head included) to the same weights and outputs; its keys
and shapes are the published ones (timm's and deit's from the golden files made with timm, Flax's and the FF-only
release's from the NumPy references, which also compute the file's outputs); the golden files come back bit for
bit; and (slow) timm loads the written files with `strict=True` and gives the same logits."""
from __future__ import annotations

import logging
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import keras_mlp
from keras_mlp.weights import find_layout, named_weights, read_checkpoint
from keras_mlp.weights.loading import LAYOUTS
from tests import numpy_reference as ref
from tests.helpers import GRID_IMAGE_SIZE, TINY, random_images, randomize_weights

ROOT = Path(__file__).parents[1]
GOLDEN = ROOT / "tests" / "golden"
ARCH = dict(patch_size=8, num_blocks=2, hidden_dim=32)  # the golden files' tiny models (tools/make_golden.py)
MIXER = {k: v for k, v in TINY["mixer"].items() if k not in ARCH}
GRID_TOKENS = (GRID_IMAGE_SIZE[0] // 8) * (GRID_IMAGE_SIZE[1] // 8)  # the goldens' non-square grid: 15 tokens


def _golden_shapes(name: str) -> dict:
    return {key: value.shape for key, value in load_file(GOLDEN / f"{name}.safetensors").items()}


def _vit_shapes() -> dict:
    shapes = {k: v for k, v in ref.ff_shapes(8, 32, 16, (4, 4), 2, 5).items() if not k.startswith("pos_encoding.")}
    return shapes | {"pos_embed": (1, 17, 32)}


# case → (model, layout tag, extra arguments, the published {key: shape} of that tiny model); every case on the
# goldens' non-square grid but the ViT-style one, whose square pos_embed tells no other grid
CASES = {
    "mixer-timm": ("mixer_s16_224", "timm", MIXER, lambda: _golden_shapes("mixer")),
    "mixer-flax": ("mixer_s16_224", "flax", MIXER,
                   lambda: ref.mixer_flax_shapes(8, 32, GRID_TOKENS, MIXER["tokens_mlp_dim"],
                                                 MIXER["channels_mlp_dim"], 2, 5)),
    "resmlp-timm": ("resmlp_12_224", "timm", {}, lambda: _golden_shapes("resmlp")),
    "resmlp-deit": ("resmlp_12_224", "deit", {}, lambda: _golden_shapes("resmlp_deit")),
    "gmlp-timm": ("gmlp_s16_224", "timm", {}, lambda: _golden_shapes("gmlp")),
    "ff-lukemelas": ("ff_ti16_224", "lukemelas", {"pos_embed_grid": (2, 8)},  # stored on another grid: split by it
                     lambda: ref.ff_shapes(8, 32, GRID_TOKENS, (2, 8), 2, 5)),
    "ff-vit": ("ff_ti16_224", "vit", {"image_size": 32}, _vit_shapes),
}
REFERENCE_FORWARD = {"flax": ref.mixer_flax_forward, "lukemelas": ref.ff_forward}


def _layout(name: str, tag: str):
    return next(x for x in keras_mlp.get_variant(name).family.layouts if x.tag == tag)


def test_every_layout_has_a_round_trip_case():
    assert {(keras_mlp.get_variant(m).family.block, tag) for m, tag, _, _ in CASES.values()} == {
        (layout.block, layout.tag) for layout in LAYOUTS}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(case, tmp_path):
    name, tag, extra, published = CASES[case]
    layout = _layout(name, tag)
    extra = {"image_size": GRID_IMAGE_SIZE, **extra}
    model = randomize_weights(keras_mlp.create_model(name, num_classes=5, **ARCH, **extra, **dict(layout.build_args)),
                              seed=len(case))
    images = random_images(size=extra["image_size"])
    path = tmp_path / f"model{layout.suffix}"
    assert keras_mlp.save_checkpoint(model, path, layout=tag) is layout
    state = read_checkpoint(path)
    assert {k: v.shape for k, v in state.items()} == {k: tuple(s) for k, s in published().items()}
    assert find_layout(state) is layout and {v.dtype for v in state.values()} == {np.dtype("float32")}

    # A non-square checkpoint's grid is told by the image size (its token count alone does not say 3x5 or 5x3).
    back = keras_mlp.create_model(name, weights=path, image_size=extra["image_size"], **ARCH,
                                  **(MIXER if "mixer" in name else {}))
    assert back.image_size == model.image_size
    mine, theirs = named_weights(model), named_weights(back)
    assert sorted(mine) == sorted(theirs)
    for key, variable in theirs.items():
        np.testing.assert_array_equal(variable.numpy(), mine[key].numpy(), err_msg=key)
    expected = np.asarray(model(images))
    assert expected.std(axis=0).min() > 1e-2  # the images give different logits: nothing degenerate
    np.testing.assert_array_equal(np.asarray(back(images)), expected)
    if tag in REFERENCE_FORWARD:  # the file means what the layout's own code computes
        out = REFERENCE_FORWARD[tag](state, images.astype("float64"), patch=8, blocks=2)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("golden, name, tag", [
    ("mixer", "mixer_s16_224", "timm"), ("resmlp", "resmlp_12_224", "timm"), ("resmlp_deit", "resmlp_12_224", "deit"),
    ("gmlp", "gmlp_s16_224", "timm")])
def test_golden_files_come_back_bit_for_bit(golden, name, tag, tmp_path):
    original = load_file(GOLDEN / f"{golden}.safetensors")
    model = keras_mlp.create_model(name, weights=GOLDEN / f"{golden}.safetensors", image_size=GRID_IMAGE_SIZE,
                                   **ARCH, **(MIXER if golden == "mixer" else {}))
    keras_mlp.save_checkpoint(model, tmp_path / "back.safetensors", layout=tag)
    written = load_file(tmp_path / "back.safetensors")
    assert sorted(written) == sorted(original)
    for key, value in original.items():
        assert (written[key].dtype, written[key].shape) == (value.dtype, value.shape), key
        assert written[key].tobytes() == value.tobytes(), key


def test_wrong_layout_or_file_type_is_refused_and_nothing_written(tmp_path):
    model = keras_mlp.create_model("resmlp_12_224", image_size=32, num_classes=5, **ARCH)
    for file, layout, message in [
            ("m.safetensors", "flax", r"Unknown layout 'flax' for a ResMLP\. Choose one of 'timm' \(timm ResMLP"),
            ("m.npz", "deit", r"deit resmlp_models.py layout is written as a \.safetensors file.*m\.safetensors"),
            ("m.pth", None, r"Cannot write a ResMLP checkpoint to .*m\.pth: its layouts are 'timm'")]:
        with pytest.raises(ValueError, match=message):
            keras_mlp.save_checkpoint(model, tmp_path / file, layout=layout)
    assert os.listdir(tmp_path) == []


def test_headless_model_and_a_gelu_other_than_the_layouts(tmp_path, images, caplog):
    """A feature extractor writes no head; a tanh-GELU Mixer in timm's (exact GELU) layout is written with a warning."""
    model = keras_mlp.create_model("mixer_s16_224", image_size=32, include_top=False, **ARCH, **MIXER)
    model = randomize_weights(model, 3)
    with caplog.at_level(logging.WARNING, logger="keras_mlp"):
        assert keras_mlp.save_checkpoint(model, tmp_path / "m.safetensors").tag == "timm"  # by the file type
    assert "approximate_gelu=True (the layout's models: False)" in caplog.text
    state = read_checkpoint(tmp_path / "m.safetensors")
    assert "head.weight" not in state and find_layout(state).tag == "timm"
    back = keras_mlp.create_model("mixer_s16_224", weights=tmp_path / "m.safetensors", include_top=False,
                                  approximate_gelu=True, **ARCH, **MIXER)
    np.testing.assert_array_equal(np.asarray(back(images)), np.asarray(model(images)))


TIMM_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from tools.make_golden import TINY, TINY_MODELS, _stub_torchvision
    _stub_torchvision()
    import torch
    from timm.models import load_checkpoint, mlp_mixer
    name, path, images, out, tag = sys.argv[2:7]
    kwargs = {k: getattr(mlp_mixer, v) if isinstance(v, str) else v for k, v in TINY_MODELS[name].items()}
    model = mlp_mixer.MlpMixer(**TINY, **kwargs).eval()
    load_checkpoint(model, path, strict=True, filter_fn=mlp_mixer.checkpoint_filter_fn if tag == "deit" else None)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(images)).permute(0, 3, 1, 2))
    np.save(out, logits.numpy())
""")


@pytest.mark.slow
@pytest.mark.parametrize("family, name, tag", [("mixer", "mixer_s16_224", "timm"), ("resmlp", "resmlp_12_224", "timm"),
                                               ("resmlp", "resmlp_12_224", "deit"), ("gmlp", "gmlp_s16_224", "timm")])
def test_timm_loads_the_written_file_strictly(family, name, tag, tmp_path, images):
    """timm's `load_checkpoint(strict=True)` (deit's names through timm's `checkpoint_filter_fn`, as timm loads
    deit's files) takes the file and computes the same logits. Needs the reference venv of tools/make_golden.py:
    KERAS_MLP_REFERENCE_PYTHON=/path/to/venv-ref/bin/python."""
    python = os.environ.get("KERAS_MLP_REFERENCE_PYTHON")
    if not python:
        pytest.skip("set KERAS_MLP_REFERENCE_PYTHON to a python with torch and timm (tools/make_golden.py)")
    extra = {**MIXER, "approximate_gelu": False} if family == "mixer" else {}  # timm's exact GELU
    model = randomize_weights(keras_mlp.create_model(name, image_size=32, num_classes=5, **ARCH, **extra), seed=7)
    keras_mlp.save_checkpoint(model, tmp_path / "model.safetensors", layout=tag)
    np.save(tmp_path / "images.npy", images)
    run = subprocess.run([python, "-c", TIMM_SCRIPT, str(ROOT), family, str(tmp_path / "model.safetensors"),
                          str(tmp_path / "images.npy"), str(tmp_path / "logits.npy"), tag],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = np.asarray(model(images))
    assert expected.std(axis=0).min() > 1e-2
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-4, atol=1e-4)
