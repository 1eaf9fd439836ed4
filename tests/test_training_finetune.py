"""Fine-tuning (`keras-mlp-train --weights`): the model is built from a checkpoint in a published layout (the
official Flax `.npz` of MLP-Mixer, written here with np.savez), its head is fresh unless the labels are the
checkpoint's own, frozen layers stay as loaded, a resumed run never reads the checkpoint again, and layer-wise
learning-rate decay scales each layer's step."""
from __future__ import annotations

import dataclasses
import json
import re

import keras
import numpy as np
import pytest

import keras_mlp
from keras_mlp.models import keymap
from keras_mlp.models.mixer_weights import flax_spec
from keras_mlp.weights import named_weights
from tests.helpers import TINY, TINY_RUN, random_tiny_model, tiny_overrides, write_photos
from training import cli, finetune, recipes
from training.config import TrainConfig, UsageError
from training.optim import make_optimizer

ARCH = {"image_size": 8, "patch_size": 2, **TINY["mixer"]}  # the model of TINY_RUN
DIGITS = [str(i) for i in range(10)]


def _flax_checkpoint(path, num_blocks: int = ARCH["num_blocks"]) -> dict:
    """A Mixer with random weights (head included) saved as the official Flax .npz; its {key: array}."""
    model = keras_mlp.create_model("mixer_s16_224", **{**ARCH, "num_blocks": num_blocks}, num_classes=10)
    rng = np.random.default_rng(0)
    weights = named_weights(model)
    state = {}
    for target, (keys, convert) in flax_spec(num_blocks).items():
        assert convert is keymap.same  # the Flax layout stores Keras' arrays as they are
        state[keys[0]] = rng.normal(0, 0.2, weights[target].shape).astype("float32")
    np.savez(path, **state)
    return state


def test_linear_probe_from_a_flax_checkpoint_then_resume_without_it(tmp_path):
    ckpt = tmp_path / "Mixer-tiny.npz"
    state = _flax_checkpoint(ckpt)
    work = tmp_path / "run"
    args = ["--work-dir", str(work), *TINY_RUN, "--weights", str(ckpt), "--set", "linear_probe=true"]
    assert cli.main(args) == 0

    def check_model():
        model = keras.saving.load_model(work / "model.keras")
        weights = named_weights(model)
        assert model.class_names == tuple(DIGITS) and model.preprocessing == keras_mlp.get_variant(
            "mixer_s16_224").preprocessing
        for target, (keys, _) in flax_spec(ARCH["num_blocks"]).items():
            value = np.asarray(weights[target])
            if target.startswith("head/"):  # a fresh (zero-initialised) head, trained
                assert np.any(value) and not np.allclose(value, state[keys[0]])
            else:  # the frozen backbone is the checkpoint's
                np.testing.assert_array_equal(value, state[keys[0]], err_msg=target)

    check_model()
    assert json.loads((work / "results.json").read_text())["weights"] == str(ckpt)
    # A resumed run (one more epoch) rebuilds the model from the work dir and restores its own checkpoint: the
    # checkpoint file it started from is gone and never needed.
    ckpt.unlink()
    assert cli.main([*args, "--epochs", "2", "--resume"]) == 0
    results = json.loads((work / "results.json").read_text())
    assert (results["resumed_at_step"], results["steps"]) == (11, 22)
    check_model()


def test_head_is_kept_only_for_the_checkpoints_own_labels(tmp_path, monkeypatch):
    ckpt = tmp_path / "Mixer-tiny.npz"
    state = _flax_checkpoint(ckpt)
    config = TrainConfig(model="mixer_s16_224", model_overrides=dict(ARCH), weights=str(ckpt))
    head = state["head/kernel"]

    fresh = finetune.build_pretrained(config, DIGITS)  # a state dict names no classes: a fresh head
    assert not np.any(fresh.get_layer("head").kernel.numpy()) and fresh.class_names == tuple(DIGITS)
    np.testing.assert_array_equal(fresh.get_layer("stem").weights[0].numpy(), state["stem/kernel"])
    kept = finetune.build_pretrained(dataclasses.replace(config, head="keep"), DIGITS)
    np.testing.assert_array_equal(kept.get_layer("head").kernel.numpy(), head)
    assert kept.class_names == tuple(DIGITS)
    with pytest.raises(UsageError, match="head=keep needs a dataset of the checkpoint's 10 classes"):
        finetune.build_pretrained(dataclasses.replace(config, head="keep"), DIGITS[:5])
    assert finetune.build_pretrained(config, DIGITS[:5]).num_classes == 5
    resized = finetune.build_pretrained(dataclasses.replace(config, model_overrides={**ARCH, "image_size": 16}),
                                        DIGITS)
    assert resized.image_size == (16, 16)

    real = keras_mlp.create_model

    def with_labels(*args, **kwargs):  # a checkpoint that names its classes, as a preset does
        model = real(*args, **kwargs)
        model.class_names = tuple(DIGITS)
        return model

    monkeypatch.setattr(keras_mlp, "create_model", with_labels)
    own = finetune.build_pretrained(config, DIGITS)
    np.testing.assert_array_equal(own.get_layer("head").kernel.numpy(), head)
    assert not np.any(finetune.build_pretrained(dataclasses.replace(config, head="fresh"), DIGITS)
                      .get_layer("head").kernel.numpy())
    assert not np.any(finetune.build_pretrained(config, DIGITS[::-1]).get_layer("head").kernel.numpy())


def test_freeze_blocks_and_layer_decay_scale_each_layers_step():
    model = keras_mlp.create_model("mixer_s16_224", **{**ARCH, "num_blocks": 2}, num_classes=3)
    finetune.freeze(model, freeze_blocks=1)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"MixerBlock_1", "pre_head_layer_norm", "head"}
    with pytest.raises(UsageError, match="freeze_blocks=3 exceeds the model's 2 blocks"):
        finetune.freeze(model, freeze_blocks=3)

    model = keras_mlp.create_model("mixer_s16_224", **{**ARCH, "num_blocks": 2}, num_classes=3)
    scales = finetune.layer_scales(model, 0.5)  # L = 2: stem 0.5^3, block i 0.5^(2 - i), norm and head 1
    expected = {"stem": 0.125, "MixerBlock_0": 0.25, "MixerBlock_1": 0.5, "pre_head_layer_norm": 1.0, "head": 1.0}
    assert {path.split("/")[0]: s for path, s in scales.items()} == expected
    for name in ("sgd", "adamw"):
        config = TrainConfig(optimizer=name, momentum=0.0, lr=0.1, warmup_epochs=0, weight_decay=0.0, epochs=1)
        variables = model.trainable_variables
        optimizer = make_optimizer(config, 10, scales)
        optimizer.build(variables)
        before = [v.numpy() for v in variables]
        optimizer.apply([keras.ops.ones_like(v) for v in variables], variables)
        for variable, old in zip(variables, before):  # SGD: lr * scale * 1; Adam's first step: lr * scale * sign
            np.testing.assert_allclose(old - variable.numpy(), 0.1 * scales[variable.path], rtol=1e-3,
                                       err_msg=f"{name} {variable.path}")


@pytest.mark.parametrize("args, message", [
    (["--set", "linear_probe=true"], r"linear_probe=true applies to fine-tuning only. Pass --weights"),
    (["--set", "head=keep", "--set", "layer_decay=0.7"], r"head=\"keep\", layer_decay=0.7 apply to fine-tuning"),
    (["--weights", "w.npz", "--set", "linear_probe=true", "--set", "freeze_blocks=1"], "linear_probe freezes"),
    (["--weights", "w.npz", "--set", "layer_decay=1.5"], r"`layer_decay` must be in \(0, 1\] or null"),
    (["--weights", "missing.npz"], r"Cannot build 'mixer_s16_224' from weights 'missing.npz': No checkpoint file"),
])
def test_bad_fine_tuning_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY_RUN, *args]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not work.exists()


@pytest.mark.parametrize("recipe", [r for r in recipes.list_recipes() if r.startswith("finetune_")])
def test_every_fine_tuning_recipe_trains_end_to_end(recipe, tmp_path):
    """Each fine-tuning recipe, on its own model shrunk to the tiny configuration and a tiny checkpoint of it in
    the family's first published layout, trains one epoch on a folder of photos with its augmentation, optimiser
    and schedule (peak lr 1e-2 at this batch: the recipes' own, scaled to batch 4, is too small to move a weight in
    3 steps), and ends with a fresh head for the folder's classes and every backbone weight moved (the Mixer
    recipe's zero-initialised head passes no gradient back on the first step, but does after it)."""
    name = recipes.get_recipe(recipe)["model"]
    source = random_tiny_model(name, num_classes=7)
    layout = source.layouts[0]
    checkpoint = tmp_path / f"tiny{layout.suffix}"
    keras_mlp.save_checkpoint(source, checkpoint, layout=layout.tag)
    photos = write_photos(tmp_path / "photos", per_class=6, size=(32, 32))
    shrink = [a for key, value in tiny_overrides(name).items() if key != "num_classes"
              for a in ("--set", f"model.{key}={json.dumps(value)}")]
    work = tmp_path / "run"
    assert cli.main(["--recipe", recipe, "--weights", str(checkpoint), "--dataset", str(photos), "--work-dir",
                     str(work), "--epochs", "1", "--batch-size", "4", "--lr", "1e-2", "--set", "lr_batch_size=4",
                     "--export", "none", "--set", "verbose=0", *shrink]) == 0
    tuned = keras.saving.load_model(work / "model.keras")
    assert tuned.class_names == ("cat", "dog", "fox")
    before, after = named_weights(source), named_weights(tuned)
    # A Mixer token-mixing output bias adds one value per token to every channel, which each following LayerNorm
    # removes: its gradient is zero up to rounding, and SGD does not move it.
    backbone = [p for p in after if not p.startswith("head/") and not p.endswith("token_mixing/mlp/fc2/bias")]
    assert [p for p in backbone if np.array_equal(before[p], after[p])] == []
    assert np.any(np.asarray(after["head/kernel"])), "the fresh head did not train"
