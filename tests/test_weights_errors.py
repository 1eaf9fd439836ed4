"""Bad checkpoints fail with one clear message and load nothing; heads with other class counts load fresh."""
from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_mlp
from keras_mlp.weights.readers import CheckpointError
from tests.helpers import TINY, assert_matches_reference, flax_mixer_checkpoint, predict
from tools.compare_golden import build, golden_case

GOLDEN = Path(__file__).parent / "golden"
_, MIXER, _, _, _ = golden_case(GOLDEN, "mixer")  # the golden Mixer's configuration (5 classes)
SQUARE = dict(image_size=32, patch_size=8, **TINY["mixer"])  # create_model(weights=) needs a square patch grid


def _mixer(**extra):
    return keras_mlp.create_model("mixer_s16_224", **{**MIXER, **extra})


def test_unknown_file_type(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"Unknown checkpoint type '.h5'.*\.safetensors"):
        keras_mlp.create_model("mixer_s16_224", weights=tmp_path / "w.h5", **MIXER)


def test_keys_from_another_family():
    with pytest.raises(CheckpointError, match=r"ResMLP checkpoint \(timm ResMLP layout\).*MLPMixer.*list_models"):
        keras_mlp.load_checkpoint(_mixer(), GOLDEN / "resmlp.safetensors")


def test_missing_extra_and_shape_mismatch_listed_nothing_loaded(tmp_path):
    state = load_file(GOLDEN / "mixer.safetensors")
    del state["blocks.1.norm2.bias"]
    state["blocks.1.extra.weight"] = np.zeros(3, np.float32)
    model = keras_mlp.create_model("mixer_s16_224", **{**MIXER, "hidden_dim": 16, "num_classes": 5})
    before = [np.array(w) for w in model.weights]
    with pytest.raises(CheckpointError) as err:
        keras_mlp.load_checkpoint(model, state)
    message = str(err.value)
    assert "missing in the checkpoint: blocks.1.norm2.bias" in message
    assert "unexpected in the checkpoint: blocks.1.extra.weight" in message
    assert "stem/proj/kernel ← stem.proj.weight: checkpoint (8, 8, 3, 32), model (8, 8, 3, 16)" in message
    assert "nothing was loaded" in message
    assert all(np.array_equal(a, np.array(w)) for a, w in zip(before, model.weights))


def test_pth_without_torch_says_how_to_convert(tmp_path, monkeypatch):
    path = tmp_path / "resmlp_12_no_dist.pth"
    path.write_bytes(pickle.dumps({"blocks.0.attn.weight": [1.0]}))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(CheckpointError, match=r"(?s)needs torch.*safetensors.*save_file"):
        keras_mlp.create_model("resmlp_12_224", weights=path)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_code_pickle_refused_and_never_run(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": {"x": _Payload(marker)}}))
    with pytest.raises(CheckpointError, match=r"Refused .*imports pathlib.*no arbitrary code is ever unpickled"):
        keras_mlp.create_model("mixer_s16_224", weights=path)
    assert not marker.exists()


def test_other_class_count_gets_fresh_head(caplog):
    state = flax_mixer_checkpoint(tokens=16, classes=5)
    with caplog.at_level(logging.WARNING, logger="keras_mlp"):
        model = keras_mlp.create_model("mixer_s16_224", weights=state, num_classes=3, **SQUARE)
    assert "5-class head" in caplog.text and "fresh 3-class head" in caplog.text
    assert model.get_layer("head").kernel.shape == (32, 3)
    np.testing.assert_array_equal(np.array(model.get_layer("stem").proj.bias), state["stem/bias"])
    features = keras_mlp.create_model("mixer_s16_224", weights=state, include_top=False, **SQUARE)
    np.testing.assert_array_equal(np.array(features.get_layer("stem").proj.bias), state["stem/bias"])


def test_safetensors_round_trip_of_a_subset_is_refused(tmp_path):
    """A checkpoint with blocks missing (a shallower model's) does not load into a deeper model."""
    state = {k: v for k, v in load_file(GOLDEN / "mixer.safetensors").items() if not k.startswith("blocks.1.")}
    save_file(state, str(tmp_path / "one_block.safetensors"))
    with pytest.raises(CheckpointError, match=r"checkpoint: 1 blocks.*model: 2 blocks"):
        keras_mlp.load_checkpoint(_mixer(), tmp_path / "one_block.safetensors")


@pytest.mark.skipif("torch" not in sys.modules and __import__("importlib").util.find_spec("torch") is None,
                    reason="torch not installed (the reference venv has it)")
def test_pth_with_torch(tmp_path):
    import torch
    state = {k: torch.from_numpy(v) for k, v in load_file(GOLDEN / "resmlp_deit.safetensors").items()}
    torch.save({"model": state}, tmp_path / "resmlp.pth")
    name, overrides, _, images, reference = golden_case(GOLDEN, "resmlp_deit")
    model = build(name, overrides, tmp_path / "resmlp.pth")
    assert_matches_reference(predict(model, images), reference)


def test_checkpoint_without_head_gets_fresh_head(caplog):
    state = {k: v for k, v in flax_mixer_checkpoint(tokens=16).items() if not k.startswith("head/")}
    with caplog.at_level(logging.WARNING, logger="keras_mlp"):
        model = keras_mlp.create_model("mixer_s16_224", weights=state, num_classes=4, **SQUARE)
    assert "no classifier head" in caplog.text and model.get_layer("head").kernel.shape == (32, 4)


@pytest.mark.parametrize("name, cut, message", [
    ("bad.safetensors", 0, r"bad\.safetensors is not a readable \.safetensors file.*Download or export it again"),
    ("cut.safetensors", 9, r"cut\.safetensors is not a readable \.safetensors file.*corrupt or truncated"),
    ("bad.npz", 0, r"bad\.npz is not a readable \.npz \(zip\) file.*corrupt or truncated"),
    ("cut.npz", 9, r"cut\.npz is not a readable \.npz \(zip\) file.*Download or export it again"),
])
def test_corrupt_or_truncated_file(tmp_path, name, cut, message):
    """Garbage, or the first 90% of a good file (`cut`), fails as a CheckpointError naming the file."""
    good = (GOLDEN / f"mixer{Path(name).suffix}").read_bytes()
    data = good[: len(good) * cut // 10] if cut else np.random.default_rng(0).bytes(200)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        keras_mlp.create_model("mixer_s16_224", weights=tmp_path / name, **MIXER)


def test_npz_with_object_arrays_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"Refused .*obj\.npz: it holds object \(pickled\) arrays"):
        keras_mlp.create_model("mixer_s16_224", weights=tmp_path / "obj.npz", **MIXER)
