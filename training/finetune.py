"""Fine-tuning from a checkpoint: the model it describes, a fresh head unless the labels are its own, frozen
layers (linear probe, the first k blocks) and layer-wise learning-rate decay.

The model is `keras_mlp.create_model(name, weights=...)`: the checkpoint's architecture, resized for another
image size (`keras_mlp.resize`), with the preprocessing the model (or preset) carries. Its head is kept only when
the dataset's class names are the checkpoint's own, in the same order (`head="auto"`), as the Mixer paper's
transfer runs replace the head by a zero-initialised one (Tolstikhin et al. 2021, arXiv:2105.01601).
Layer-wise learning-rate decay follows BEiT (Bao et al. 2022, arXiv:2106.08254) and timm's
`param_groups_layer_decay`: with L blocks, layer l gets lr * decay ** (L + 1 - l), where l is 0 for the stem
(and class token / position embedding), 1..L for the blocks and L + 1 for the final norm and the head.
"""
from __future__ import annotations

import json
import os

import keras

import keras_mlp
from keras_mlp.io import write_atomic
from keras_mlp.layers.blocks import BLOCKS
from training.config import TrainConfig, UsageError
from training.workdir import ARCHITECTURE


def build_pretrained(config: TrainConfig, class_names: list[str]) -> keras.Model:
    """`config.model` built from `config.weights` for a dataset of `class_names`, head kept or fresh by
    `config.head`, with `config.drop_path_rate` and `config.model_overrides` (e.g. `image_size`)."""
    overrides = {"drop_path_rate": config.drop_path_rate, **config.model_overrides}
    try:
        base = keras_mlp.create_model(config.model, weights=config.weights, **overrides)
    except (TypeError, ValueError, OSError, ImportError) as err:  # CheckpointError is a ValueError
        raise UsageError(f"Cannot build {config.model!r} from weights {config.weights!r}: {err}") from err
    names = tuple(class_names)
    own = base.class_names is not None and tuple(base.class_names) == names
    keep = config.head == "keep" or (config.head == "auto" and own)
    if keep and base.num_classes != len(names):
        raise UsageError(f"head=keep needs a dataset of the checkpoint's {base.num_classes} classes; "
                         f"{config.dataset!r} has {len(names)}. Drop --set head=keep (a fresh head is made).")
    if keep and own:
        return base
    model = type(base).from_config({**base.get_config(), "num_classes": len(names), "class_names": list(names)})
    source = {weight.path: weight for weight in base.weights}
    for weight in model.weights:
        if keep or not weight.path.startswith("head/"):
            weight.assign(source[weight.path])
    return model


def save_architecture(model: keras.Model, work_dir: str) -> None:
    """The model's Keras config (architecture, preprocessing, class names), for `load_architecture`."""
    write_atomic(os.path.join(work_dir, ARCHITECTURE), json.dumps(keras.saving.serialize_keras_object(model)))


def load_architecture(work_dir: str) -> keras.Model | None:
    """The model saved by `save_architecture`, freshly initialised (the training checkpoint restores its
    weights); None when there is none."""
    path = os.path.join(work_dir, ARCHITECTURE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return keras.saving.deserialize_keras_object(json.load(f))


def layer_ids(model: keras_mlp.MLPTrunk) -> dict[str, int]:
    """Each layer's depth: 0 before the first block, i + 1 for block i, num_blocks + 1 after the last."""
    block_cls, ids, seen = BLOCKS[model.block], {}, 0
    for layer in model.layers:
        if isinstance(layer, block_cls):
            seen += 1
            ids[layer.name] = seen
        else:
            ids[layer.name] = 0 if seen == 0 else model.num_blocks + 1
    return ids


def freeze(model: keras_mlp.MLPTrunk, *, linear_probe: bool = False, freeze_blocks: int = 0) -> None:
    """Linear probe: every layer but the head frozen; `freeze_blocks` = k > 0: the stem and the first k blocks."""
    if freeze_blocks > model.num_blocks:
        raise UsageError(f"freeze_blocks={freeze_blocks} exceeds the model's {model.num_blocks} blocks. Pass at "
                         f"most {model.num_blocks}, or --set linear_probe=true to train the head alone.")
    ids = layer_ids(model)
    for layer in model.layers:
        frozen = layer.name != "head" if linear_probe else freeze_blocks > 0 and ids[layer.name] <= freeze_blocks
        if frozen:
            layer.trainable = False


def layer_scales(model: keras_mlp.MLPTrunk, decay: float) -> dict[str, float]:
    """{variable path: learning-rate scale} for layer-wise decay `decay` (1.0: no decay)."""
    depth, ids = model.num_blocks, layer_ids(model)
    return {weight.path: decay ** (depth + 1 - ids[layer.name]) for layer in model.layers for weight in layer.weights}
